/**
 * OAuth2 for mailboxes (Gmail, Microsoft 365), on `oauth4webapi`:
 * - sign-in: authorization code with PKCE (S256); the state binds the studio, box and user and
 *   is signed and short-lived (./state.ts); the callback stores the refresh token in the box's
 *   secret (its `passwordRef`, as JSON: ./grant.ts) and the sign-in facts on the box;
 * - access tokens: refreshed when the stored one is within a margin of its expiry, reused until
 *   then (in this process, and across invocations through the secret);
 * - alerts: an email to the box's notification address before the refresh token is known to
 *   expire, and as soon as a refresh is refused (revoked, expired), saying what to do.
 */
import * as oauth from 'oauth4webapi';
import type { Repositories, Stored } from '#lib/data/repositories';
import { AppError, ValidationError } from '#lib/domain/errors';
import type { BoxOAuth, EmailBox, OAuthProvider, TransportRecord } from '#lib/domain/model';
import type { TransportOwner } from '#lib/domain/settings';
import { isGraphConnection } from '#lib/graph/detect';
import { notificationMime } from '#lib/notify/compose';
import type { MailTransport, SecretStore } from '#lib/ports/index';
import { ProviderNotConfiguredError } from './errors.ts';
import { type Grant, readGrant } from './grant.ts';
import { isLoopbackHttp, type OAuthSettings, type ProviderSettings, redirectUri } from './providers.ts';
import { codeVerifierOf, InvalidStateError, signState, verifyState } from './state.ts';

/** An access token is refreshed when it has less than this left. */
const REFRESH_MARGIN_MS = 5 * 60_000;

export interface OAuthLog {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
}

export interface OAuthDeps {
  repos: Repositories;
  secrets: SecretStore;
  log: OAuthLog;
  now: () => Date;
  /** The notification mail path (SES; the local SES under npm start and in tests). */
  mail: () => MailTransport;
  notificationSender: string;
}

export { ProviderNotConfiguredError };

/** A callback the service refuses: bad or expired state, or the provider said no. 400. */
export class OAuthCallbackError extends AppError {
  override readonly name = 'OAuthCallbackError';
  override readonly status = 400;
  override readonly code = 'oauth_callback_refused';
}

/** The box has no usable sign-in: never signed in, or its refresh was refused. */
export class OAuthSignInRequiredError extends AppError {
  override readonly name = 'OAuthSignInRequiredError';
  override readonly status = 409;
  override readonly code = 'oauth_sign_in_required';
}

/** The provider could not be reached or answered oddly; nothing about the sign-in is known to be wrong. */
export class OAuthUpstreamError extends AppError {
  override readonly name = 'OAuthUpstreamError';
  override readonly status = 502;
  override readonly code = 'oauth_provider_unavailable';
}

export interface StartResult {
  authorizationUrl: string;
  expiresAt: string;
}

export interface CallbackResult {
  ok: true;
  /** The box signed in (absent for send settings). */
  boxId?: string;
  /** The send settings signed in: `company`, or `user` with `userId`. */
  settings?: 'company' | 'user';
  userId?: string;
  provider: OAuthProvider;
  message: string;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export class OAuthService {
  readonly #d: OAuthDeps;
  readonly #settings: OAuthSettings;
  readonly #servers = new Map<OAuthProvider, Promise<oauth.AuthorizationServer>>();
  readonly #tokens = new Map<string, CachedToken>();
  readonly #refreshing = new Map<string, Promise<string>>();
  #stateKey: Promise<Buffer> | undefined;

  constructor(deps: OAuthDeps, settings: OAuthSettings) {
    this.#d = deps;
    this.#settings = settings;
  }

  /** Where to send the admin's browser to sign the box (or send settings) in with `provider`. */
  async start(
    studioId: string,
    userId: string,
    provider: OAuthProvider,
    target: string | SignInTarget,
  ): Promise<StartResult> {
    const p = this.#provider(provider);
    const t: SignInTarget = typeof target === 'string' ? { kind: 'box', boxId: target } : target;
    const subject = await this.#subject(studioId, t);
    if (!subject.signsIn || subject.provider !== provider)
      throw ValidationError.field(
        subject.startField,
        `${subject.label} does not sign in with ${provider}: ${subject.setUp(provider)} first.`,
      );
    const as = await this.#server(p);
    if (!as.authorization_endpoint)
      throw new OAuthUpstreamError(`${provider} names no authorization endpoint.`);
    const key = await this.#key();
    const expiresAt = Math.floor(this.#d.now().getTime() / 1000) + this.#settings.stateTtlSeconds;
    const { state, claims } = signState(key, {
      provider,
      studioId,
      boxId: t.kind === 'box' ? t.boxId : '',
      ...(t.kind === 'send' ? { send: t.owner } : {}),
      userId,
      expiresAt,
    });
    const url = new URL(as.authorization_endpoint);
    const params: Record<string, string> = {
      client_id: p.clientId,
      redirect_uri: redirectUri(this.#settings, provider),
      response_type: 'code',
      // Graph needs Graph's scopes (a Microsoft token has one audience); SMTP needs the Outlook ones.
      scope: (subject.graph && p.graphScopes ? p.graphScopes : p.scopes).join(' '),
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifierOf(key, claims)),
      code_challenge_method: 'S256',
      ...(subject.loginHint ? { login_hint: subject.loginHint } : {}),
      ...p.authorizationParams,
    };
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    return { authorizationUrl: url.href, expiresAt: new Date(expiresAt * 1000).toISOString() };
  }

  /** The provider's redirect back: checks the state, redeems the code, stores the tokens. */
  async callback(
    provider: OAuthProvider,
    query: Record<string, string | undefined>,
  ): Promise<CallbackResult> {
    const p = this.#provider(provider);
    if (!query.state) throw new OAuthCallbackError('The callback has no state.', { field: 'state' });
    let claims: ReturnType<typeof verifyState>;
    try {
      claims = verifyState(
        await this.#key(),
        query.state,
        provider,
        Math.floor(this.#d.now().getTime() / 1000),
      );
    } catch (error) {
      if (error instanceof InvalidStateError || error instanceof SyntaxError)
        throw new OAuthCallbackError(
          error instanceof InvalidStateError ? error.message : 'The sign-in state is malformed.',
          { field: 'state' },
        );
      throw error;
    }
    const { studioId, boxId } = claims;
    const target: SignInTarget = claims.send ? { kind: 'send', owner: claims.send } : { kind: 'box', boxId };
    if (query.error) {
      const consent = query.error === 'access_denied' || query.error === 'consent_required';
      throw new OAuthCallbackError(
        consent
          ? `The sign-in was not allowed (${query.error}): sign in again and accept the requested mail access; a Microsoft 365 tenant may need an admin's consent for the app first.`
          : `${provider} refused the sign-in: ${query.error}${query.error_description ? ` (${query.error_description})` : ''}.`,
        { field: 'error', details: { error: query.error } },
      );
    }
    const subject = await this.#subject(studioId, target);
    if (!subject.signsIn || subject.provider !== provider || !subject.grantRef)
      throw new OAuthCallbackError(`${capital(subject.label)} no longer signs in with ${provider}.`, {
        field: 'state',
      });
    const as = await this.#server(p);
    const client = this.#client(p);
    const params = new URLSearchParams(
      Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
    let tokens: oauth.TokenEndpointResponse;
    try {
      const checked = oauth.validateAuthResponse(as, client, params, query.state);
      const response = await oauth.authorizationCodeGrantRequest(
        as,
        client,
        oauth.ClientSecretPost(await this.#d.secrets.get(p.clientSecretRef)),
        checked,
        redirectUri(this.#settings, provider),
        codeVerifierOf(await this.#key(), claims),
        this.#requestOptions(p),
      );
      tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
    } catch (error) {
      throw this.#callbackError(provider, error);
    }
    if (!tokens.refresh_token)
      throw new OAuthCallbackError(
        `${provider} gave no refresh token, so ${subject.label} could not stay signed in: sign in again and allow offline access.`,
        { field: 'code' },
      );
    const now = this.#d.now();
    const grant: Grant = {
      kind: 'oauth2',
      refreshToken: tokens.refresh_token,
      accessToken: tokens.access_token,
      ...(tokens.expires_in
        ? { accessExpiresAt: new Date(now.getTime() + tokens.expires_in * 1000).toISOString() }
        : {}),
    };
    await this.#d.secrets.update(subject.grantRef, JSON.stringify(grant));
    const refreshExpiresAt = this.#refreshExpiry(p, tokens, now);
    await subject.update(() => ({
      signedInAt: now.toISOString(),
      ...(tokens.scope ? { scope: tokens.scope } : {}),
      ...(refreshExpiresAt ? { refreshExpiresAt } : {}),
    }));
    this.#d.log.info('signed in with OAuth2', { ...subject.logFields, provider, userId: claims.userId });
    return {
      ok: true,
      ...(target.kind === 'box'
        ? { boxId }
        : target.owner.kind === 'company'
          ? { settings: 'company' as const }
          : { settings: 'user' as const, userId: target.owner.userId }),
      provider,
      message: `${capital(subject.label)} is signed in with ${provider}.`,
    };
  }

  /**
   * A current access token for the box: the cached one while it has more than a few minutes
   * left, else a refreshed one. Refusals alert the box's notification address once. `renew`:
   * the resource server refused the current token (401), so it is refreshed whatever its expiry.
   */
  accessToken(studioId: string, boxId: string, options: { renew?: boolean } = {}): Promise<string> {
    return this.tokenFor(studioId, { kind: 'box', boxId }, options);
  }

  /** The same for a send transport signing in with OAuth2 (the company's or a user's). */
  sendAccessToken(
    studioId: string,
    owner: TransportOwner,
    options: { renew?: boolean } = {},
  ): Promise<string> {
    return this.tokenFor(studioId, { kind: 'send', owner }, options);
  }

  async tokenFor(studioId: string, target: SignInTarget, options: { renew?: boolean } = {}): Promise<string> {
    // Keyed by the sign-in and the account it is for: a box or transport moved to another server
    // or signed in again never gets a token cached for what it was before.
    const subject = await this.#subject(studioId, target);
    const k = subject.key;
    const cached = this.#tokens.get(k);
    if (options.renew) this.#tokens.delete(k);
    else if (cached && cached.expiresAt - this.#d.now().getTime() > REFRESH_MARGIN_MS) return cached.token;
    // One refresh at a time per sign-in: a rotating refresh token must not be spent twice.
    const running = this.#refreshing.get(k);
    if (running) return running;
    const work = this.#fresh(subject, options.renew === true).finally(() => this.#refreshing.delete(k));
    this.#refreshing.set(k, work);
    return work;
  }

  /** Sends the "sign in again before …" email when a box's refresh token is close to its known end. */
  async checkExpiry(studioId: string, boxId: string | SignInTarget): Promise<boolean> {
    const subject = await this.#subject(studioId, typeof boxId === 'string' ? { kind: 'box', boxId } : boxId);
    return this.#checkExpiry(subject);
  }

  async #checkExpiry(subject: Subject): Promise<boolean> {
    const o = subject.oauth;
    if (!o?.refreshExpiresAt || o.expiryWarnedAt || o.failedAt) return false;
    const left = Date.parse(o.refreshExpiresAt) - this.#d.now().getTime();
    if (left > this.#settings.warnBeforeSeconds * 1000) return false;
    const sent = await this.#alert(subject, 'expiring', o.refreshExpiresAt);
    await subject.update((current) => ({ ...current, expiryWarnedAt: this.#d.now().toISOString() }));
    return sent;
  }

  async #fresh(subject: Subject, renew: boolean): Promise<string> {
    const k = subject.key;
    const provider = subject.provider;
    const fields = subject.logFields;
    if (!subject.signsIn || !provider)
      throw new OAuthSignInRequiredError(`${capital(subject.label)} does not sign in with OAuth2.`, {
        field: subject.field,
      });
    const p = this.#provider(provider);
    if (!subject.grantRef)
      throw new OAuthSignInRequiredError(`${capital(subject.label)} has no sign-in stored; sign in again.`, {
        field: subject.field,
      });
    const grant = readGrant(await this.#d.secrets.get(subject.grantRef));
    if (!subject.oauth || !grant.refreshToken)
      throw new OAuthSignInRequiredError(
        `${capital(subject.label)} is not signed in with ${provider} yet: sign in (GET /oauth/${provider}/start?${subject.startQuery}).`,
        { field: subject.field },
      );
    if (subject.oauth.failedAt)
      throw new OAuthSignInRequiredError(
        `The sign-in of ${subject.label} with ${provider} stopped working (${subject.oauth.failure ?? 'refused'}): sign in again (GET /oauth/${provider}/start?${subject.startQuery}).`,
        { field: subject.field },
      );
    await this.#checkExpiry(subject).catch((error: unknown) =>
      this.#d.log.warn('could not send the OAuth2 expiry warning', {
        ...fields,
        errorMessage: String(error),
      }),
    );
    const now = this.#d.now().getTime();
    const stored = grant.accessToken && grant.accessExpiresAt ? Date.parse(grant.accessExpiresAt) : 0;
    if (!renew && grant.accessToken && stored - now > REFRESH_MARGIN_MS) {
      this.#tokens.set(k, { token: grant.accessToken, expiresAt: stored });
      return grant.accessToken;
    }
    const as = await this.#server(p);
    const client = this.#client(p);
    let tokens: oauth.TokenEndpointResponse;
    try {
      const response = await oauth.refreshTokenGrantRequest(
        as,
        client,
        oauth.ClientSecretPost(await this.#d.secrets.get(p.clientSecretRef)),
        grant.refreshToken,
        this.#requestOptions(p),
      );
      tokens = await oauth.processRefreshTokenResponse(as, client, response);
    } catch (error) {
      // The provider's "no" (invalid_grant: revoked, expired, password changed) needs a person; a
      // network failure or a 5xx does not, and the next poll tries again.
      if (error instanceof oauth.ResponseBodyError && error.status >= 400 && error.status < 500) {
        const why = `${error.error}${error.error_description ? `: ${error.error_description}` : ''}`;
        await subject.update((current) => ({
          ...current,
          failedAt: this.#d.now().toISOString(),
          failure: why.slice(0, 500),
        }));
        this.#tokens.delete(k);
        await this.#alert(subject, 'refresh-failed', why).catch((alertError: unknown) =>
          this.#d.log.warn('could not send the OAuth2 failure alert', {
            ...fields,
            errorMessage: String(alertError),
          }),
        );
        throw new OAuthSignInRequiredError(
          `${provider} refused to renew the sign-in of ${subject.label} (${why}): sign in again (GET /oauth/${provider}/start?${subject.startQuery}).`,
          { field: subject.field },
        );
      }
      throw new OAuthUpstreamError(
        `${provider} could not renew the access token just now (${error instanceof Error ? error.message : String(error)}); the next run tries again.`,
      );
    }
    const expiresAt = now + (tokens.expires_in ?? 3600) * 1000;
    const next: Grant = {
      kind: 'oauth2',
      // Providers that rotate refresh tokens send a new one; the old one may already be spent.
      refreshToken: tokens.refresh_token ?? grant.refreshToken,
      accessToken: tokens.access_token,
      accessExpiresAt: new Date(expiresAt).toISOString(),
    };
    try {
      await this.#d.secrets.update(subject.grantRef, JSON.stringify(next));
    } catch (error) {
      // The token works all the same; only the next invocation must refresh again (and a rotated
      // refresh token is kept in this process alone). The poller needs PutSecretValue for this.
      this.#d.log.warn('could not store the renewed OAuth2 tokens', {
        ...fields,
        errorMessage: String(error),
      });
    }
    this.#tokens.set(k, { token: tokens.access_token, expiresAt });
    const refreshExpiresAt = tokens.refresh_token ? this.#refreshExpiry(p, tokens, new Date(now)) : undefined;
    if (refreshExpiresAt) await subject.update((current) => ({ ...current, refreshExpiresAt }));
    this.#d.log.info('OAuth2 access token renewed', { ...fields, provider });
    return tokens.access_token;
  }

  /** When the refresh token is known to stop working: the response's own word, else the provider's policy. */
  #refreshExpiry(p: ProviderSettings, tokens: oauth.TokenEndpointResponse, now: Date): string | undefined {
    const seconds = Number(tokens.refresh_token_expires_in);
    if (Number.isFinite(seconds) && seconds > 0)
      return new Date(now.getTime() + seconds * 1000).toISOString();
    if (p.refreshTokenDays) return new Date(now.getTime() + p.refreshTokenDays * 86_400_000).toISOString();
    return undefined;
  }

  /** What signs in: a box, or the company's or a user's send settings (their transport). */
  async #subject(studioId: string, target: SignInTarget): Promise<Subject> {
    if (target.kind === 'box') return this.#boxSubject(studioId, target.boxId);
    return this.#sendSubject(studioId, target.owner);
  }

  async #boxSubject(studioId: string, boxId: string): Promise<Subject> {
    const repos = this.#d.repos;
    const box = await repos.emailBoxes.require(studioId, boxId);
    const c = box.connection;
    const name = box.description || box.id;
    return {
      key: cacheKey(studioId, box),
      label: `the email box "${boxId}"`,
      field: 'connection.authentication',
      startField: 'boxId',
      whom: 'the box',
      setUp: (provider) =>
        `set its connection.authentication to "oauth2" and connection.provider to "${provider}"`,
      signsIn: c.authentication === 'oauth2',
      provider: c.provider,
      grantRef: c.passwordRef,
      oauth: c.oauth,
      loginHint: c.emailAddress,
      graph: isGraphConnection(c),
      startQuery: `boxId=${encodeURIComponent(boxId)}`,
      logFields: { boxId },
      alert: {
        to: box.schedule?.notifyEmail,
        subjectName: `Email box ${name}`,
        what: `the email box "${name}" (${c.emailAddress})`,
        where: (provider) =>
          `Settings → Email boxes → "${name}" → Sign in with ${providerName(provider)} (GET /oauth/${provider}/start?boxId=${box.id})`,
        stops:
          'Mail is not being collected from this box until it is signed in again; nothing has been lost on the server.',
        idPart: box.id,
      },
      update: async (change) => {
        // The box may be saved by an admin at the same moment: read again and retry once.
        for (let attempt = 0; ; attempt++) {
          const now = await repos.emailBoxes.require(studioId, boxId);
          const current = now.connection.oauth ?? { signedInAt: this.#d.now().toISOString() };
          const { id: _id, version, createdAt: _c, updatedAt: _u, ...record } = now;
          try {
            await repos.emailBoxes.replace(
              studioId,
              boxId,
              { ...record, id: boxId, connection: { ...now.connection, oauth: change(current) } },
              version,
            );
            return;
          } catch (error) {
            if (attempt >= 1) throw error;
          }
        }
      },
    };
  }

  async #sendSubject(studioId: string, owner: TransportOwner): Promise<Subject> {
    const repos = this.#d.repos;
    const company = await repos.companyEmail.get(studioId, 'company');
    const user = owner.kind === 'user' ? await repos.userEmail.get(studioId, owner.userId) : undefined;
    const record = owner.kind === 'company' ? company : user;
    const label =
      owner.kind === 'company' ? 'the company send settings' : `the send settings of user "${owner.userId}"`;
    const startQuery =
      owner.kind === 'company'
        ? 'settings=company'
        : `settings=user&userId=${encodeURIComponent(owner.userId)}`;
    const t: TransportRecord | undefined = record?.transport;
    // Gmail and Graph sign in as the sending address (lib/domain/settings.ts resolveSending).
    const address =
      owner.kind === 'user' ? (user?.emailAddress ?? company?.emailAddress) : company?.emailAddress;
    const signsIn =
      t !== undefined &&
      (t.method === 'graph'
        ? t.authentication === 'oauth2'
        : t.method !== 'ses' && t.authentication === 'oauth2');
    const provider: OAuthProvider | undefined =
      !t || t.method === 'ses'
        ? undefined
        : t.method === 'gmail'
          ? 'google'
          : t.method === 'graph'
            ? 'microsoft'
            : t.provider;
    const logonName = t?.method === 'smtp' ? t.logonName : address;
    const where = (p: OAuthProvider) =>
      // The start route is for admins: a user's own settings are signed in by an admin for them.
      `${owner.kind === 'company' ? 'Settings → Company email' : `an admin, at Settings → Users → ${owner.userId} → Email`} → Sign in with ${providerName(p)} (GET /oauth/${p}/start?${startQuery}, as an admin)`;
    return {
      key: JSON.stringify([
        studioId,
        'send',
        owner,
        t?.method,
        provider,
        t && t.method !== 'ses' ? [t.oauth?.signedInAt, t.oauth?.failedAt, t.passwordRef] : undefined,
        t?.method === 'smtp' ? [t.server, t.port] : undefined,
        logonName,
      ]),
      label,
      field: 'transport.authentication',
      startField: 'settings',
      whom: 'these settings',
      setUp: (p) =>
        `save its transport with authentication "oauth2"${p === 'google' ? ' (method gmail, or smtp with provider "google")' : ' (method graph, or smtp with provider "microsoft")'}`,
      signsIn,
      provider,
      grantRef: t && t.method !== 'ses' ? t.passwordRef : undefined,
      oauth: t && t.method !== 'ses' ? t.oauth : undefined,
      loginHint: logonName,
      graph: t?.method === 'graph',
      startQuery,
      logFields: { settings: owner.kind, ...(owner.kind === 'user' ? { userId: owner.userId } : {}) },
      alert: {
        // The sending address hears of it (through the notification path, not its own transport).
        to: address,
        subjectName: owner.kind === 'company' ? 'Company email' : `Email of ${address ?? owner.userId}`,
        what: `${label} (${logonName ?? address ?? ''})`,
        where,
        stops:
          'Email sent with these settings fails until they are signed in again; nothing was sent in the meantime.',
        idPart: owner.kind === 'company' ? 'send.company' : `send.${owner.userId}`,
      },
      update: async (change) => {
        // The settings may be saved by an admin at the same moment: read again and retry once.
        const withOAuth = <T extends { transport?: TransportRecord | undefined }>(r: T): T | undefined => {
          const st = r.transport;
          if (!st || st.method === 'ses') return undefined;
          return {
            ...r,
            transport: { ...st, oauth: change(st.oauth ?? { signedInAt: this.#d.now().toISOString() }) },
          };
        };
        for (let attempt = 0; ; attempt++) {
          try {
            if (owner.kind === 'company') {
              const stored = await repos.companyEmail.get(studioId, 'company');
              const { version, createdAt: _c, updatedAt: _u, ...rest } = stored ?? ({} as never);
              const next = stored && withOAuth(rest);
              if (next) await repos.companyEmail.replace(studioId, 'company', next, version);
            } else {
              const stored = await repos.userEmail.get(studioId, owner.userId);
              const { version, createdAt: _c, updatedAt: _u, ...rest } = stored ?? ({} as never);
              const next = stored && withOAuth(rest);
              if (next) await repos.userEmail.replace(studioId, owner.userId, next, version);
            }
            return;
          } catch (error) {
            if (attempt >= 1) throw error;
          }
        }
      },
    };
  }

  /** One email to the subject's notification address; false when it has none. */
  async #alert(subject: Subject, kind: 'expiring' | 'refresh-failed', detail: string): Promise<boolean> {
    const a = subject.alert;
    const to = a.to;
    const provider = subject.provider ?? 'google';
    const where = a.where(provider);
    if (!to) {
      this.#d.log.warn('OAuth2 alert not sent: no notification address', { ...subject.logFields, kind });
      return false;
    }
    const content =
      kind === 'expiring'
        ? {
            subject: `${a.subjectName}: sign in with ${providerName(provider)} again before ${detail.slice(0, 10)}`,
            text: [
              `The sign-in of ${a.what} with ${providerName(provider)} expires on ${detail}.`,
              'After that, its mail can no longer be collected (or sent) until someone signs in again.',
              '',
              `What to do: an administrator signs ${subject.whom} in again before then: ${where}.`,
            ].join('\n'),
          }
        : {
            subject: `${a.subjectName} cannot log in: sign in with ${providerName(provider)} again`,
            text: [
              `${providerName(provider)} refused to renew the sign-in of ${a.what}: ${detail}.`,
              'This happens when the access was revoked, the password of the account changed, or the sign-in expired.',
              a.stops,
              '',
              `What to do: an administrator signs ${subject.whom} in again: ${where}.`,
            ].join('\n'),
          };
    const sender = this.#d.notificationSender;
    const domain = sender.split('@').pop() || 'studio-mail.invalid';
    const messageId = `<oauth.${a.idPart.replace(/[^A-Za-z0-9.-]/g, '')}.${kind}.${this.#d.now().getTime()}@${domain}>`;
    const mail = await notificationMime(content, { from: sender, to, messageId, date: this.#d.now() });
    await this.#d.mail().send(mail);
    this.#d.log.info('OAuth2 alert sent', { ...subject.logFields, kind });
    return true;
  }

  #provider(provider: OAuthProvider): ProviderSettings {
    const p = this.#settings.providers[provider];
    if (!p) throw new ProviderNotConfiguredError(provider);
    return p;
  }

  #client(p: ProviderSettings): oauth.Client {
    return { client_id: p.clientId };
  }

  #requestOptions(p: ProviderSettings) {
    return isLoopbackHttp(p.issuer) ? { [oauth.allowInsecureRequests]: true } : {};
  }

  #server(p: ProviderSettings): Promise<oauth.AuthorizationServer> {
    let server = this.#servers.get(p.id);
    if (!server) {
      server = discover(p);
      // A failed discovery is not kept: the next request tries again.
      server.catch(() => this.#servers.delete(p.id));
      this.#servers.set(p.id, server);
    }
    return server;
  }

  #key(): Promise<Buffer> {
    this.#stateKey ??= this.#d.secrets.get(this.#settings.stateKeyRef).then((value) => {
      if (value.length < 32) throw new Error('The OAuth2 state key must be at least 32 characters long.');
      return Buffer.from(value, 'utf8');
    });
    this.#stateKey.catch(() => {
      this.#stateKey = undefined;
    });
    return this.#stateKey;
  }

  #callbackError(provider: OAuthProvider, error: unknown): AppError {
    if (error instanceof oauth.ResponseBodyError)
      return new OAuthCallbackError(
        `${provider} refused the sign-in code (${error.error}${error.error_description ? `: ${error.error_description}` : ''}): start the sign-in again.`,
        { field: 'code' },
      );
    if (error instanceof oauth.AuthorizationResponseError)
      return new OAuthCallbackError(`${provider} refused the sign-in: ${error.error}.`, { field: 'error' });
    if (error instanceof oauth.OperationProcessingError)
      return new OAuthCallbackError(`The sign-in answer could not be used: ${error.message}`, {
        field: 'code',
      });
    return new OAuthUpstreamError(
      `${provider} could not be reached to finish the sign-in (${error instanceof Error ? error.message : String(error)}); try again.`,
    );
  }
}

/** Discovery, tolerating Microsoft's multi-tenant metadata, whose issuer is a `{tenantid}` template. */
async function discover(p: ProviderSettings): Promise<oauth.AuthorizationServer> {
  const options = isLoopbackHttp(p.issuer) ? { [oauth.allowInsecureRequests]: true } : {};
  const response = await oauth.discoveryRequest(p.issuer, { ...options, algorithm: 'oidc' });
  if (p.id === 'microsoft') {
    const metadata = (await response.clone().json()) as oauth.AuthorizationServer;
    if (metadata.issuer.includes('{tenantid}')) return { ...metadata, issuer: p.issuer.href };
  }
  return oauth.processDiscoveryResponse(p.issuer, response);
}

function cacheKey(studioId: string, box: Stored<EmailBox>): string {
  const c = box.connection;
  return JSON.stringify([
    studioId,
    box.id,
    c.provider,
    c.oauth?.signedInAt,
    c.oauth?.failedAt,
    c.server,
    c.port,
    c.userName,
  ]);
}

function capital(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** What signs in: a box, or send settings (lib/domain/settings.ts TransportOwner). */
export type SignInTarget = { kind: 'box'; boxId: string } | { kind: 'send'; owner: TransportOwner };

interface Subject {
  /** Token cache key: the sign-in and the account it is for. */
  key: string;
  /** "the email box …", "the company send settings": for messages. */
  label: string;
  /** The field a refusal names. */
  field: string;
  /** The field a refused start names. */
  startField: string;
  /** "the box": who signs in again, in alerts. */
  whom: string;
  setUp(provider: OAuthProvider): string;
  signsIn: boolean;
  provider: OAuthProvider | undefined;
  grantRef: string | undefined;
  oauth: BoxOAuth | undefined;
  loginHint: string | undefined;
  /** Tokens for Microsoft Graph rather than POP3/IMAP/SMTP. */
  graph: boolean;
  /** The start route's query for this subject. */
  startQuery: string;
  logFields: Record<string, string>;
  alert: {
    to: string | undefined;
    subjectName: string;
    what: string;
    where(provider: OAuthProvider): string;
    stops: string;
    idPart: string;
  };
  update(change: (current: BoxOAuth) => BoxOAuth): Promise<void>;
}

function providerName(provider: string): string {
  return provider === 'google' ? 'Google' : provider === 'microsoft' ? 'Microsoft' : provider;
}
