/**
 * Opens an Exchange Online box as a Graph session: where Graph and its token service are (from
 * the environment, so tests point them at a local server), which tokens the box uses (its app
 * credentials, or its OAuth2 sign-in with Microsoft), and its delta link on the box state record.
 */
import type { Repositories } from '#lib/data/repositories';
import { AppError } from '#lib/domain/errors';
import type { BoxState, EmailBox } from '#lib/domain/model';
import { GraphClient } from './client.ts';
import { GraphError } from './errors.ts';
import { type DeltaCursor, GraphSession } from './session.ts';
import type { GraphSettings } from './settings.ts';
import { type AccessTokens, appTokens } from './tokens.ts';

/** A signed-in box's tokens (lib/oauth/service.ts): `renew` skips the cached one. */
export type SignInTokens = (options?: { renew?: boolean }) => Promise<string>;

/** The box's access tokens: its sign-in's when it signs in with OAuth2, else its app credentials. */
export function boxTokens(
  box: EmailBox,
  secret: string,
  settings: GraphSettings,
  signIn?: SignInTokens,
): AccessTokens {
  const c = box.connection;
  if (c.authentication === 'oauth2') {
    if (!signIn)
      throw new GraphError('token-revoked', 'OAuth2 sign-in is not configured in this deployment.');
    let renew = false;
    return {
      get: async () => {
        const r = renew;
        renew = false;
        try {
          return await signIn(r ? { renew: true } : {});
        } catch (error) {
          // Never signed in, or Microsoft refused the refresh (the OAuth2 service has alerted).
          if (error instanceof AppError && error.field === 'connection.authentication')
            throw new GraphError('token-revoked', error.message, {}, { cause: error });
          throw error;
        }
      },
      expire: () => {
        renew = true;
      },
    };
  }
  if (!c.tenantId || !c.clientId)
    throw new GraphError(
      !c.tenantId ? 'tenant' : 'client',
      'The box has no app credentials (tenantId, clientId).',
    );
  return appTokens({
    loginBase: settings.loginBase,
    tenantId: c.tenantId,
    clientId: c.clientId,
    clientSecret: secret,
  });
}

/**
 * The delta link on the box state, kept for one mailbox identity and exclude-before date: a box
 * pointed elsewhere, or judged against another cut-off, lists its whole inbox again.
 */
export function stateCursor(
  repos: Pick<Repositories, 'boxState' | 'importMarkers'>,
  sid: string,
  box: EmailBox,
  identity: string,
  now: () => Date = () => new Date(),
): DeltaCursor {
  const matches = (d: BoxState['graphDelta']) =>
    d !== undefined && d.identity === identity && d.excludeBefore === box.excludeBefore;
  return {
    async load() {
      const { graphDelta } = await repos.boxState.get(sid, box.id);
      return matches(graphDelta) ? graphDelta?.link : undefined;
    },
    async save(link) {
      await repos.boxState.setGraphDelta(sid, box.id, {
        identity,
        ...(box.excludeBefore ? { excludeBefore: box.excludeBefore } : {}),
        link,
        at: now().toISOString(),
      });
    },
    async reset() {
      await repos.boxState.setGraphDelta(sid, box.id, undefined);
    },
    async markers(uids) {
      return repos.importMarkers.findUidls(sid, box.id, identity, uids);
    },
  };
}

export interface OpenGraphOptions {
  readonly settings: GraphSettings;
  readonly repos: Pick<Repositories, 'boxState' | 'importMarkers'>;
  readonly studioId: string;
  /** The mailbox identity the import markers are kept under (lib/inbox/poll.ts mailboxIdentity). */
  readonly identity: string;
  readonly signIn?: SignInTokens;
  /** Epoch ms: the run's budget (throttling waits end before it). */
  readonly deadline?: number;
  readonly fetch?: typeof fetch;
  readonly maxListed?: number;
  readonly pageSize?: number;
}

export function graphClient(
  box: EmailBox,
  secret: string,
  o: Pick<OpenGraphOptions, 'settings' | 'signIn' | 'deadline' | 'fetch'>,
): GraphClient {
  return new GraphClient({
    baseUrl: o.settings.apiBase,
    tokens: boxTokens(box, secret, o.settings, o.signIn),
    ...(o.deadline !== undefined ? { deadline: o.deadline } : {}),
    ...(o.fetch ? { fetch: o.fetch } : {}),
  });
}

/** Opens the box's Graph session (the first delta pages are read: a login fault shows here). */
export function openGraphBox(box: EmailBox, secret: string, o: OpenGraphOptions): Promise<GraphSession> {
  const c = box.connection;
  // As for IMAP: absent, afterImport is keep or delete as leaveOnServer says.
  const after = c.afterImport ?? (box.leaveOnServer ? 'keep' : 'delete');
  return GraphSession.open({
    client: graphClient(box, secret, o),
    mailbox: c.emailAddress,
    cursor: stateCursor(o.repos, o.studioId, box, o.identity),
    leaveOnServer: after === 'keep' || after === 'mark-read',
    markRead: after === 'mark-read',
    moveToFolder: after === 'move' ? c.moveToFolder : undefined,
    ...(o.maxListed ? { maxListed: o.maxListed } : {}),
    ...(o.pageSize ? { pageSize: o.pageSize } : {}),
  });
}

export { type GraphSettings, graphSettingsFromEnv } from './settings.ts';
