/**
 * Poll failures in plain words — what failed and what to check — for the run record and the
 * failure notification. POP3 failures are explained by lib/pop3/diagnose.ts (IMAP: lib/imap/diagnose.ts,
 * Graph: lib/graph/errors.ts), the same words the connection test uses. Nothing here repeats a password.
 */
import { diagnoseGraph, GraphError } from '#lib/graph/errors';
import { diagnoseImap } from '#lib/imap/diagnose';
import { ImapError, type ImapErrorKind } from '#lib/imap/errors';
import { Pop3Error } from '#lib/pop3/client';
import { diagnosePop3 } from '#lib/pop3/diagnose';
import { POLL_LIMITS } from './connect.ts';

/**
 * Our own storage (blob store, DynamoDB) failed: not the message's fault, so the run fails and
 * the next one retries. Keeps the cause's message.
 */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

export interface Failure {
  /** Stable name for alert de-duplication, e.g. `login-rejected`. */
  kind: string;
  /** What went wrong, in a sentence. */
  message: string;
  /** What to check. */
  advice: string;
  /** The setting most likely at fault. */
  field?: string;
  serverReply?: string;
}

/** Alert kinds: several POP3 error kinds are the same problem for the person reading the alert. */
const ALERT_KIND: Record<ImapErrorKind, string> = {
  dns: 'server-unknown',
  unreachable: 'server-unreachable',
  refused: 'server-unreachable',
  timeout: 'timeout',
  tls: 'ssl-mismatch',
  auth: 'login-rejected',
  protocol: 'not-pop3',
  closed: 'connection-lost',
  server: 'server-refused',
  aborted: 'aborted',
  folder: 'folder-not-found',
};

export function describeFailure(
  error: unknown,
  box: { server: string; port: number; ssl: boolean; emailAddress?: string },
): Failure {
  const mailbox = box.emailAddress;
  if (error instanceof Pop3Error || error instanceof ImapError) {
    const d =
      error instanceof ImapError
        ? diagnoseImap(error, box, POLL_LIMITS)
        : diagnosePop3(error, box, POLL_LIMITS);
    return {
      kind: error instanceof ImapError && error.kind === 'protocol' ? 'not-imap' : ALERT_KIND[error.kind],
      message: d.problem,
      advice: d.advice,
      field: d.field,
      ...(d.serverReply ? { serverReply: d.serverReply } : {}),
    };
  }
  if (error instanceof GraphError) {
    const d = diagnoseGraph(error, mailbox ?? 'of this box');
    return {
      kind: d.kind,
      message: d.problem,
      advice: d.advice,
      field: d.field,
      ...(d.serverReply ? { serverReply: d.serverReply } : {}),
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof StorageError) {
    return {
      kind: 'storage',
      message: `The poll could not store mail: ${message}`,
      advice:
        'Nothing was lost or deleted from the server; the next run retries. If this repeats, report it with the run id.',
    };
  }
  return {
    kind: 'internal',
    message: `The poll failed: ${message}`,
    advice: 'If this repeats, report it with the run id.',
  };
}
