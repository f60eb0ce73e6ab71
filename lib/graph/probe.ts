/**
 * The connection test of an Exchange Online box: a token (app credentials or the sign-in), then
 * one read of the mailbox's inbox (and the move-to folder, when the box names one). A failure
 * names the field to fix (lib/graph/errors.ts); no token or secret is ever in the result.
 */
import { AppError } from '#lib/domain/errors';
import type { EmailBox } from '#lib/domain/model';
import type { ProbeResult } from '#lib/settings/connection-test';
import { type GraphSettings, graphClient, type SignInTokens } from './box.ts';
import type { GraphClient } from './client.ts';
import { diagnoseGraph, GraphError } from './errors.ts';
import { findFolder } from './session.ts';

/** A box test may wait this long in all (API Gateway gives a request 29 s). */
const PROBE_BUDGET_MS = 15_000;

export type GraphProbe = (box: EmailBox, secret: string, studioId: string) => Promise<ProbeResult>;

export function graphProbe(
  settings: GraphSettings,
  signIn?: (studioId: string, boxId: string, options?: { renew?: boolean }) => Promise<string>,
  fetchImpl?: typeof fetch,
): GraphProbe {
  return async (box, secret, studioId) => {
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    const mailbox = box.connection.emailAddress;
    const tokens: SignInTokens | undefined = signIn ? (o) => signIn(studioId, box.id, o) : undefined;
    let client: GraphClient | undefined;
    try {
      client = graphClient(box, secret, {
        settings,
        ...(tokens ? { signIn: tokens } : {}),
        deadline: Date.now() + PROBE_BUDGET_MS,
        ...(fetchImpl ? { fetch: fetchImpl } : {}),
      });
      const inbox = await client.json<{ totalItemCount?: number }>(
        `/users/${encodeURIComponent(mailbox)}/mailFolders/inbox?$select=id,totalItemCount`,
      );
      const folder = box.connection.moveToFolder;
      if (folder && !box.leaveOnServer) await findFolder(client, mailbox, folder);
      const count = inbox?.totalItemCount ?? 0;
      return {
        ok: true,
        message: `Read the inbox of ${mailbox} through Microsoft Graph; ${count} message(s) in it.`,
        greeting: 'Microsoft Graph',
        messageCount: count,
        ms: ms(),
      };
    } catch (error) {
      if (error instanceof GraphError) {
        const d = diagnoseGraph(error, mailbox);
        return {
          ok: false,
          field: d.field,
          kind: d.kind,
          message: `${d.problem} ${d.advice}`,
          ...(d.serverReply ? { serverReply: d.serverReply } : {}),
          ms: ms(),
        };
      }
      if (error instanceof AppError && error.field)
        return { ok: false, field: error.field, message: error.message, kind: error.code, ms: ms() };
      throw error;
    } finally {
      client?.close();
    }
  };
}
