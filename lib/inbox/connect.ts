/**
 * Opens a box's POP3 or IMAP session from its stored connection settings. Certificate checks are always
 * on, except that a deployment (or the tests) may name an extra CA file or, for a local test
 * server only, turn verification off through the environment — never through the API.
 */
import { readFileSync } from 'node:fs';
import { splitDomainUser } from '#lib/auth-mech/ntlm';
import type { BoxConnection } from '#lib/domain/model';
import type { ImapSessionOptions } from '#lib/imap/client';
import { ImapError } from '#lib/imap/errors';
import { guardedLookup, type MailHostPolicy, refuseBlockedLiteral } from '#lib/net/guard';
import { Pop3Client, type Pop3ClientOptions } from '#lib/pop3/client';
import { fromSocketError } from '#lib/pop3/errors';
import { logIn, MissingTokenSourceError } from '#lib/pop3/login';
import type { MailSession } from './session.ts';

/** How an OAuth2 box gets its access token (lib/oauth/tokens.ts); absent for other boxes. */
export type AccessTokenSource = () => Promise<string>;

/** How long the poller waits for a connection, and for any one answer after that. */
export const POLL_LIMITS = { connectTimeoutMs: 15_000, timeoutMs: 60_000 };

export function pop3Options(
  conn: BoxConnection,
  env: NodeJS.ProcessEnv = process.env,
  policy?: MailHostPolicy,
): Pop3ClientOptions {
  return {
    ...(policy ? { lookup: guardedLookup(policy) } : {}),
    host: conn.server,
    port: conn.port,
    tls: conn.ssl ? 'implicit' : 'none',
    rejectUnauthorized: env.POP3_TLS_INSECURE !== 'true',
    ca: env.POP3_CA_FILE ? readFileSync(env.POP3_CA_FILE) : undefined,
    ...POLL_LIMITS,
  };
}

/**
 * Connects and logs in as the box says (USER/PASS, SPA = NTLM with its Domain, or XOAUTH2 with a
 * token from `accessToken`); the caller must quit() or close() the client. With a policy, the
 * server name must resolve to addresses it allows (lib/net/guard.ts).
 */
export async function openBox(
  conn: BoxConnection,
  password: string,
  overrides: Partial<Pop3ClientOptions> = {},
  policy?: MailHostPolicy,
  accessToken?: AccessTokenSource,
): Promise<Pop3Client> {
  if (policy) {
    try {
      refuseBlockedLiteral(conn.server, policy);
    } catch (error) {
      throw fromSocketError(error, 'connect', conn.server, conn.port);
    }
  }
  const client = await Pop3Client.connect({ ...pop3Options(conn, process.env, policy), ...overrides });
  try {
    await logIn(client, { ...conn, password, accessToken });
    return client;
  } catch (error) {
    client.close();
    throw error;
  }
}

/** The default port of a box's protocol: POP3 995/110, IMAP 993/143. */
export function defaultPort(type: BoxConnection['type'], ssl: boolean): number {
  if (type === 'imap') return ssl ? 993 : 143;
  return ssl ? 995 : 110;
}

/** The IMAP session options of a box (without the log-in), trust and limits as for POP3. */
export function imapOptions(
  conn: BoxConnection,
  env: NodeJS.ProcessEnv = process.env,
  policy?: MailHostPolicy,
): Omit<ImapSessionOptions, 'login'> {
  return {
    host: conn.server,
    port: conn.port,
    secure: conn.ssl,
    rejectUnauthorized: env.POP3_TLS_INSECURE !== 'true',
    ca: env.POP3_CA_FILE ? readFileSync(env.POP3_CA_FILE) : undefined,
    ...(policy ? { lookup: guardedLookup(policy) } : {}),
    folder: conn.folder,
    afterImport: afterImportOf(conn),
    moveToFolder: conn.moveToFolder,
    connectTimeoutMs: POLL_LIMITS.connectTimeoutMs,
    timeoutMs: POLL_LIMITS.timeoutMs,
  };
}

/** What an IMAP box does after import: its setting, else keep or delete as leaveOnServer says. */
export function afterImportOf(conn: Pick<BoxConnection, 'afterImport'>, leaveOnServer = true) {
  return conn.afterImport ?? (leaveOnServer ? 'keep' : 'delete');
}

/** The IMAP log-in a box asks for (password, SPA = NTLM with its Domain, or an OAuth2 token). */
export async function imapLogin(
  conn: Pick<BoxConnection, 'authentication' | 'domain' | 'userName'>,
  password: string,
  accessToken?: AccessTokenSource,
): Promise<ImapSessionOptions['login']> {
  switch (conn.authentication ?? 'password') {
    case 'password':
      return { method: 'password', userName: conn.userName, password };
    case 'ntlm':
      return {
        method: 'ntlm',
        credentials: { ...splitDomainUser(conn.domain ?? '', conn.userName), password },
      };
    case 'oauth2':
      if (!accessToken) throw new MissingTokenSourceError('This OAuth2 box has no access token source');
      return { method: 'oauth2', userName: conn.userName, accessToken: await accessToken() };
  }
}

/**
 * The poller's way in to any box: POP3 (openBox) or IMAP. An IMAP box's folder and afterImport
 * (from the box, with leaveOnServer deciding when afterImport is absent) go with its session.
 */
export async function openMailbox(
  box: { connection: BoxConnection; leaveOnServer: boolean },
  password: string,
  options: {
    policy?: MailHostPolicy | undefined;
    accessToken?: AccessTokenSource | undefined;
    pop3?: Partial<Pop3ClientOptions>;
    imap?: Partial<Omit<ImapSessionOptions, 'login'>>;
  } = {},
): Promise<MailSession> {
  const conn = box.connection;
  if (conn.type !== 'imap') return openBox(conn, password, options.pop3, options.policy, options.accessToken);
  if (options.policy) {
    try {
      refuseBlockedLiteral(conn.server, options.policy);
    } catch (error) {
      const p = fromSocketError(error, 'connect', conn.server, conn.port);
      throw new ImapError(p.kind, p.message, { code: p.code, phase: 'connect', cause: error });
    }
  }
  // imapflow (and pino, iconv-lite, … with it) is loaded by the first IMAP box, not at cold start.
  const { ImapSession } = await import('#lib/imap/client');
  return ImapSession.connect({
    ...imapOptions(conn, process.env, options.policy),
    afterImport: afterImportOf(conn, box.leaveOnServer),
    ...options.imap,
    login: await imapLogin(conn, password, options.accessToken),
  });
}
