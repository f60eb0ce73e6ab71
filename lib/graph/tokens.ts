/**
 * Access tokens for Microsoft Graph. A box reads its mailbox either with app credentials (the
 * client-credentials grant of its tenant's token endpoint, `oauth4webapi`) or with the tokens of
 * an OAuth2 sign-in with Microsoft (lib/oauth/service.ts). Either way a token is reused until a
 * few minutes before it expires, and dropped when Graph says it is no longer good (401).
 */
import { createHash } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { isLoopbackHttp } from '#lib/oauth/providers';
import { GraphError, tokenErrorKind } from './errors.ts';

/** What the Graph client needs of a token source. */
export interface AccessTokens {
  /** A current access token. */
  get(): Promise<string>;
  /** Graph refused the last token (expired early, revoked): the next get() must not return it. */
  expire(): void;
}

/** Tokens are renewed when less than this is left, so none expires in the middle of a run's request. */
export const RENEW_MARGIN_MS = 5 * 60_000;

export interface AppCredentials {
  /** The token service, e.g. https://login.microsoftonline.com (tests: a local server). */
  readonly loginBase: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Default `https://graph.microsoft.com/.default`: the app's granted application permissions. */
  readonly scope?: string;
}

interface Cached {
  token: string;
  expiresAt: number;
}

/** Per process (a warm Lambda reuses a token across runs), keyed by a hash that includes the secret. */
const appCache = new Map<string, Cached>();

/** Client-credentials tokens for one app in one tenant. */
export function appTokens(
  creds: AppCredentials,
  options: { now?: () => number; fetch?: typeof fetch } = {},
): AccessTokens {
  const now = options.now ?? Date.now;
  const key = createHash('sha256')
    .update(
      JSON.stringify([creds.loginBase, creds.tenantId, creds.clientId, creds.clientSecret, creds.scope]),
    )
    .digest('hex');
  let pending: Promise<string> | undefined;
  return {
    async get() {
      const cached = appCache.get(key);
      if (cached && cached.expiresAt - now() > RENEW_MARGIN_MS) return cached.token;
      // One request at a time: concurrent callers share it.
      pending ??= requestAppToken(creds, now, options.fetch).then(
        (fresh) => {
          appCache.set(key, fresh);
          pending = undefined;
          return fresh.token;
        },
        (error: unknown) => {
          pending = undefined;
          throw error;
        },
      );
      return pending;
    },
    expire() {
      appCache.delete(key);
    },
  };
}

async function requestAppToken(
  creds: AppCredentials,
  now: () => number,
  customFetch?: typeof fetch,
): Promise<Cached> {
  const base = new URL(creds.loginBase);
  const tenant = encodeURIComponent(creds.tenantId);
  const as: oauth.AuthorizationServer = {
    issuer: new URL(`${base.pathname.replace(/\/+$/, '')}/${tenant}/v2.0`, base).href,
    token_endpoint: new URL(`${base.pathname.replace(/\/+$/, '')}/${tenant}/oauth2/v2.0/token`, base).href,
  };
  const client: oauth.Client = { client_id: creds.clientId };
  const requestOptions = {
    ...(isLoopbackHttp(base) ? { [oauth.allowInsecureRequests]: true } : {}),
    ...(customFetch ? { [oauth.customFetch]: customFetch } : {}),
    signal: AbortSignal.timeout(20_000),
  };
  const started = now();
  let response: Response;
  try {
    response = await oauth.clientCredentialsGrantRequest(
      as,
      client,
      oauth.ClientSecretPost(creds.clientSecret),
      { scope: creds.scope ?? 'https://graph.microsoft.com/.default' },
      requestOptions,
    );
  } catch (error) {
    throw new GraphError(
      'network',
      `The Microsoft token service could not be reached: ${errorText(error)}`,
      {},
      { cause: error },
    );
  }
  try {
    const tokens = await oauth.processClientCredentialsResponse(as, client, response);
    return { token: tokens.access_token, expiresAt: started + (tokens.expires_in ?? 3600) * 1000 };
  } catch (error) {
    throw tokenError(error);
  }
}

/** A token endpoint refusal as a GraphError naming what is wrong (never the secret). */
export function tokenError(error: unknown): GraphError {
  if (error instanceof oauth.ResponseBodyError) {
    const description = error.error_description ?? '';
    return new GraphError(
      tokenErrorKind(error.error, description),
      `The Microsoft token service refused: ${error.error}`,
      { status: error.status, code: error.error, serverReply: firstLine(description) },
      { cause: error },
    );
  }
  return new GraphError(
    'server',
    `The Microsoft token service answered oddly: ${errorText(error)}`,
    {},
    { cause: error },
  );
}

/** AADSTS descriptions run on with trace and correlation ids: the first line says what matters. */
function firstLine(text: string): string {
  return text.split(/\r?\n/)[0]!.slice(0, 300);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
