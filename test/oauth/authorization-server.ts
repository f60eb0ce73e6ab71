/**
 * A local OAuth2 authorization server for the sign-in tests: `oidc-provider` (a certified OpenID
 * Provider from npm) on 127.0.0.1, with one confidential client (client_secret_post, PKCE), the
 * scopes `openid offline_access mail`, refresh tokens, revocation and RFC 7662 introspection
 * (which the test Dovecot's oauth2 passdb calls). `authorize()` plays the person at the
 * browser: it follows the authorization URL, signs in as the given account and consents, and
 * returns the query of the redirect back to us (code, state, iss).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export const CLIENT_ID = 'studio-mail';
export const CLIENT_SECRET = 'client-secret-for-tests-0123456789abcdef';
export const SCOPES = ['openid', 'offline_access', 'mail'];
/** The resource server's client (the test Dovecot, the test SMTP server): introspection only. */
export const RESOURCE_ID = 'mail-server';
export const RESOURCE_SECRET = 'resource-secret-for-tests-0123456789';

export interface AuthorizationServer {
  readonly issuer: string;
  readonly introspectionUrl: string;
  /** The same with the resource server's credentials in it (how Dovecot's oauth2 passdb takes them). */
  readonly introspectionUrlWithCredentials: string;
  /** RFC 7662 introspection as the resource server: the token's claims, or `{ active: false }`. */
  introspect(token: string): Promise<{ active: boolean; username?: string }>;
  /** Follows `authorizationUrl` as `accountId`; the redirect's query (what the callback gets). */
  authorize(authorizationUrl: string, accountId: string): Promise<Record<string, string>>;
  /** Revokes every refresh token of the account (a user removing the app's access). */
  revokeAll(accountId: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startAuthorizationServer(redirectUris: string[]): Promise<AuthorizationServer> {
  const server: Server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const refreshTokens = new Map<string, Set<string>>();
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
      {
        client_id: RESOURCE_ID,
        client_secret: RESOURCE_SECRET,
        redirect_uris: [],
        grant_types: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    scopes: SCOPES,
    features: {
      introspection: { enabled: true },
      revocation: { enabled: true },
      devInteractions: { enabled: false },
    },
    pkce: { required: () => true },
    issueRefreshToken: async () => true,
    findAccount: async (_ctx: unknown, id: string) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    // RFC 7662 gives no user name member; Dovecot's passdb reads `username` (the mailbox).
    extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) =>
      token.accountId ? { username: token.accountId } : undefined,
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      RefreshToken: 86_400,
      Interaction: 600,
      Session: 600,
      Grant: 86_400,
    },
  });
  provider.proxy = false;
  // Remember refresh tokens per account, so revokeAll can destroy them.
  provider.on('refresh_token.saved', (token: { accountId: string; jti: string }) => {
    const set = refreshTokens.get(token.accountId) ?? new Set<string>();
    set.add(token.jti);
    refreshTokens.set(token.accountId, set);
  });
  provider.on('grant.success', () => {});
  const callback = provider.callback();
  server.on('request', callback);

  return {
    issuer,
    introspectionUrl: `${issuer}/token/introspection`,
    introspectionUrlWithCredentials: `http://${RESOURCE_ID}:${RESOURCE_SECRET}@${issuer.slice('http://'.length)}/token/introspection`,
    async introspect(token) {
      const response = await fetch(`${issuer}/token/introspection`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${RESOURCE_ID}:${RESOURCE_SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token }),
      });
      return (await response.json()) as { active: boolean; username?: string };
    },
    async authorize(authorizationUrl, accountId) {
      const first = await fetch(authorizationUrl, { redirect: 'manual' });
      const interaction = first.headers.get('location');
      if (first.status !== 303 || !interaction)
        throw new Error(`authorization request refused: ${first.status} ${await first.text()}`);
      const uid = interaction.split('/').pop()!;
      const cookies = first.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ');
      const details = await provider.Interaction.find(uid);
      const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
      grant.addOIDCScope(String(details.params.scope));
      details.result = { login: { accountId }, consent: { grantId: await grant.save() } };
      await details.save(60);
      const resumed = await fetch(new URL(details.returnTo, issuer), {
        redirect: 'manual',
        headers: { cookie: cookies },
      });
      const back = resumed.headers.get('location');
      if (!back) throw new Error(`resume refused: ${resumed.status} ${await resumed.text()}`);
      return Object.fromEntries(new URL(back).searchParams);
    },
    async revokeAll(accountId) {
      for (const jti of refreshTokens.get(accountId) ?? []) {
        const token = await provider.RefreshToken.find(jti);
        await token?.destroy();
      }
      refreshTokens.delete(accountId);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
