/**
 * The OAuth2 providers a box can sign in with, and where their endpoints are: each provider is an
 * issuer URL whose `/.well-known/openid-configuration` names the authorization and token
 * endpoints (RFC 8414 / OIDC Discovery). Google and Microsoft by default; the tests point the
 * issuers at a local `oidc-provider` on loopback. Client secrets stay in the secret store.
 */
import type { OAuthProvider } from '#lib/domain/model';

export interface ProviderSettings {
  readonly id: OAuthProvider;
  /** The issuer identifier; discovery is read from it. */
  readonly issuer: URL;
  readonly clientId: string;
  /** Secret store reference of the client secret. */
  readonly clientSecretRef: string;
  /** Scopes asked for: mail access over POP3/IMAP/SMTP, and offline access (a refresh token). */
  readonly scopes: readonly string[];
  /** Scopes asked for when the box reads its mailbox through Microsoft Graph (Exchange Online). */
  readonly graphScopes?: readonly string[] | undefined;
  /** Extra authorization request parameters (Google needs `access_type=offline` for a refresh token). */
  readonly authorizationParams: Readonly<Record<string, string>>;
  /**
   * Days a refresh token is known to live when the token response does not say
   * (`refresh_token_expires_in`): Google's apps in "Testing" status, 7; unset = not known.
   */
  readonly refreshTokenDays?: number | undefined;
}

export interface OAuthSettings {
  readonly providers: Partial<Record<OAuthProvider, ProviderSettings>>;
  /** The API's public base URL; the callback is `<base>/oauth/<provider>/callback`. */
  readonly redirectBase: string;
  /** Secret store reference of the key that signs sign-in states (and derives PKCE verifiers). */
  readonly stateKeyRef: string;
  /** How long a sign-in may take from start to callback. */
  readonly stateTtlSeconds: number;
  /** Warn this long before a refresh token is known to expire. */
  readonly warnBeforeSeconds: number;
}

const DEFAULTS: Record<OAuthProvider, { issuer: string; scopes: string[]; params: Record<string, string> }> =
  {
    google: {
      issuer: 'https://accounts.google.com',
      // The one scope Gmail's POP3, IMAP and SMTP accept for XOAUTH2.
      scopes: ['https://mail.google.com/'],
      // offline + consent: Google only hands out a refresh token on a consent screen.
      params: { access_type: 'offline', prompt: 'consent' },
    },
    microsoft: {
      // Multi-tenant ("organizations"); a single-tenant app gives https://login.microsoftonline.com/<tenant>/v2.0.
      issuer: 'https://login.microsoftonline.com/organizations/v2.0',
      scopes: [
        'offline_access',
        'https://outlook.office.com/POP.AccessAsUser.All',
        'https://outlook.office.com/SMTP.Send',
      ],
      params: { prompt: 'select_account' },
    },
  };

/** A Graph box's sign-in: one token audience (Graph) for reading, marking, moving and sending. */
const GRAPH_SCOPES = [
  'offline_access',
  'https://graph.microsoft.com/Mail.ReadWrite',
  'https://graph.microsoft.com/Mail.Send',
];

/**
 * Reads `OAUTH_<PROVIDER>_CLIENT_ID`, `_CLIENT_SECRET_REF`, and optionally `_ISSUER`, `_SCOPES`
 * (space-separated), `_GRAPH_SCOPES` (Microsoft, for Graph boxes) and `_REFRESH_TOKEN_DAYS`; a provider without a client id is not offered.
 * `OAUTH_REDIRECT_BASE` and `OAUTH_STATE_KEY_REF` are needed once any provider is.
 */
export function oauthSettingsFromEnv(env: Record<string, string | undefined>): OAuthSettings | undefined {
  const providers: Partial<Record<OAuthProvider, ProviderSettings>> = {};
  for (const id of Object.keys(DEFAULTS) as OAuthProvider[]) {
    const prefix = `OAUTH_${id.toUpperCase()}_`;
    const clientId = env[`${prefix}CLIENT_ID`];
    const clientSecretRef = env[`${prefix}CLIENT_SECRET_REF`];
    if (!clientId || !clientSecretRef) continue;
    const days = Number(env[`${prefix}REFRESH_TOKEN_DAYS`]);
    providers[id] = {
      id,
      issuer: new URL(env[`${prefix}ISSUER`] || DEFAULTS[id].issuer),
      clientId,
      clientSecretRef,
      scopes: env[`${prefix}SCOPES`]?.split(/\s+/).filter(Boolean) ?? DEFAULTS[id].scopes,
      authorizationParams: DEFAULTS[id].params,
      ...(id === 'microsoft'
        ? { graphScopes: env[`${prefix}GRAPH_SCOPES`]?.split(/\s+/).filter(Boolean) ?? GRAPH_SCOPES }
        : {}),
      refreshTokenDays: Number.isFinite(days) && days > 0 ? days : undefined,
    };
  }
  if (Object.keys(providers).length === 0) return undefined;
  const redirectBase = env.OAUTH_REDIRECT_BASE;
  const stateKeyRef = env.OAUTH_STATE_KEY_REF;
  if (!redirectBase || !stateKeyRef)
    throw new Error('OAuth2 providers are configured but OAUTH_REDIRECT_BASE or OAUTH_STATE_KEY_REF is not');
  return {
    providers,
    redirectBase: redirectBase.replace(/\/+$/, ''),
    stateKeyRef,
    stateTtlSeconds: 600,
    warnBeforeSeconds: 3 * 86_400,
  };
}

export function redirectUri(settings: OAuthSettings, provider: OAuthProvider): string {
  return `${settings.redirectBase}/oauth/${provider}/callback`;
}

/** An http:// issuer is allowed only on loopback (a local test server), never in production. */
export function isLoopbackHttp(url: URL): boolean {
  return url.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
}
