/**
 * Opens a box's POP3 session from its stored connection settings. Certificate checks are always
 * on, except that a deployment (or the tests) may name an extra CA file or, for a local test
 * server only, turn verification off through the environment — never through the API.
 */
import { readFileSync } from 'node:fs';
import type { BoxConnection } from '#lib/domain/model';
import { guardedLookup, type MailHostPolicy, refuseBlockedLiteral } from '#lib/net/guard';
import { Pop3Client, type Pop3ClientOptions } from '#lib/pop3/client';
import { fromSocketError } from '#lib/pop3/errors';
import { logIn } from '#lib/pop3/login';

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
