// @vitest-environment node
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settingsFunction } from '#functions/settings/app';
import { settingsRoutes } from '#functions/settings/routes';
import { sesTransport } from '#lib/adapters/mail';
import { readGrant } from '#lib/oauth/grant';
import type { OAuthSettings } from '#lib/oauth/providers';
import { OAuthService, OAuthSignInRequiredError } from '#lib/oauth/service';
import { sesClient } from '#test/send/fixtures';
import { type SesStub, startSesStub } from '#test/send/ses-stub';
import { unreachableProbe } from '#test/settings/harness';
import { apiClient, type TestDeps, testDeps } from '#test/support/api';
import {
  type AuthorizationServer,
  CLIENT_ID,
  CLIENT_SECRET,
  SCOPES,
  startAuthorizationServer,
} from './authorization-server.ts';

const SID = 'studio-1';
const REDIRECT_BASE = 'https://api.studio-mail.test';
const STATE_KEY = 'state-key-for-tests-0123456789abcdefghij';
const MAILBOX = 'sales@lumen.test';

let as: AuthorizationServer;
let stub: SesStub;
let d: TestDeps;
let service: OAuthService;
let call: ReturnType<typeof apiClient>;
/** The service's clock: moved forward to make tokens "expire" without waiting. */
let clock = Date.parse('2026-12-02T09:00:00Z');

beforeAll(async () => {
  as = await startAuthorizationServer([
    `${REDIRECT_BASE}/oauth/google/callback`,
    `${REDIRECT_BASE}/oauth/microsoft/callback`,
  ]);
  stub = await startSesStub();
  const transport = sesTransport(sesClient(stub.endpoint, 1));
  d = await testDeps({ ses: () => transport, now: () => new Date(clock) });
  const clientSecretRef = await d.secrets.create('oauth/client-secret', CLIENT_SECRET);
  const stateKeyRef = await d.secrets.create('oauth/state-key', STATE_KEY);
  const provider = (id: 'google' | 'microsoft') => ({
    id,
    issuer: new URL(as.issuer),
    clientId: CLIENT_ID,
    clientSecretRef,
    scopes: SCOPES,
    authorizationParams: { prompt: 'consent' },
    ...(id === 'google' ? { refreshTokenDays: 7 } : {}),
  });
  const settings: OAuthSettings = {
    providers: { google: provider('google'), microsoft: provider('microsoft') },
    redirectBase: REDIRECT_BASE,
    stateKeyRef,
    stateTtlSeconds: 600,
    warnBeforeSeconds: 3 * 86_400,
  };
  service = new OAuthService(
    {
      repos: d.repos,
      secrets: d.secrets,
      log: d.logger,
      now: d.now,
      mail: d.ses,
      notificationSender: d.config.notificationSender,
    },
    settings,
  );
  call = apiClient(
    settingsFunction(d, { oauth: service, probePop3: unreachableProbe }),
    settingsRoutes,
    'settings',
  );
}, 60_000);

afterAll(async () => {
  await Promise.all([as?.stop(), stub?.stop()]);
});

/** An OAuth2 box, saved without a test (it cannot be tested before its sign-in). */
async function oauthBox(
  id: string,
  provider: 'google' | 'microsoft' = 'google',
  notifyEmail = 'owner@lumen.test',
) {
  const res = await call('POST', '/email-boxes', {
    body: {
      id,
      description: `OAuth box ${id}`,
      connection: {
        server: 'pop.gmail.com',
        emailAddress: MAILBOX,
        userName: MAILBOX,
        authentication: 'oauth2',
        provider,
      },
      schedule: { startTime: '08:00', endTime: '18:00', intervalMinutes: 30, weekdays: ['MON'], notifyEmail },
    },
  });
  expect(res.status).toBe(201);
  return res;
}

/** Start → the provider (sign in, consent) → the redirect's query. */
async function signIn(boxId: string, provider: 'google' | 'microsoft' = 'google') {
  const start = await call('GET', `/oauth/${provider}/start?boxId=${boxId}`);
  expect(start.status).toBe(200);
  return as.authorize(start.body.authorizationUrl, MAILBOX);
}

/** The email a SendEmail request to the SES stub carried. */
async function parsed(request: SesStub['requests'][number]) {
  const raw = Buffer.from((request.Content as { Raw: { Data: string } }).Raw.Data, 'base64');
  const mail = await simpleParser(raw);
  return { subject: mail.subject ?? '', text: mail.text ?? '' };
}

const callback = (provider: string, query: Record<string, string>) =>
  call('GET', `/oauth/${provider}/callback?${new URLSearchParams(query)}`, { token: null });

describe('OAuth2 sign-in of an email box (authorization code + PKCE)', () => {
  it('saves an OAuth2 box without a password, untested until it is signed in', async () => {
    // Act
    const res = await oauthBox('gmail');
    // Assess
    expect(res.body.connection).toMatchObject({ authentication: 'oauth2', provider: 'google', spa: false });
    expect(res.body.verification).toMatchObject({
      tested: false,
      note: expect.stringMatching(/sign in with google/),
    });
    expect(res.body.connection.oauth).toBeUndefined();
    expect(res.body.connection.passwordSet).toBe(false);
  });

  it('sends the browser to the provider with PKCE (S256), a signed state and the mailbox as login hint', async () => {
    // Act
    const res = await call('GET', '/oauth/google/start?boxId=gmail');
    const redirect = await call('GET', '/oauth/google/start?boxId=gmail&redirect=true');
    // Assess
    const url = new URL(res.body.authorizationUrl);
    expect(url.origin).toBe(as.issuer);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: CLIENT_ID,
      response_type: 'code',
      redirect_uri: `${REDIRECT_BASE}/oauth/google/callback`,
      code_challenge_method: 'S256',
      login_hint: MAILBOX,
    });
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toMatch(new RegExp(`^${as.issuer}/auth\\?`));
  });

  it('stores the refresh token in the secret store at the callback, and the sign-in on the box', async () => {
    // Prepare
    const query = await signIn('gmail');
    // Act
    const res = await callback('google', query);
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, boxId: 'gmail', provider: 'google' });
    const box = await d.repos.emailBoxes.require(SID, 'gmail');
    const grant = readGrant(await d.secrets.get(box.connection.passwordRef!));
    expect(grant.refreshToken).toEqual(expect.any(String));
    expect(box.connection.oauth).toMatchObject({
      signedInAt: new Date(clock).toISOString(),
      refreshExpiresAt: new Date(clock + 7 * 86_400_000).toISOString(), // the provider's known policy
    });
    expect(res.text).not.toContain(grant.refreshToken!);
    expect((await call('GET', '/email-boxes/gmail')).body.connection.passwordSet).toBe(true);
  });

  it('takes a merge patch of a signed-in box and keeps its sign-in', async () => {
    // Prepare
    const read = await call('GET', '/email-boxes/gmail');
    // Act
    const res = await call('PATCH', '/email-boxes/gmail?verify=false', {
      body: { description: 'Patched' },
      headers: { 'content-type': 'application/merge-patch+json', 'if-match': read.headers.etag ?? '' },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.description).toBe('Patched');
    expect(res.body.connection.oauth).toBeDefined();
  });

  it('keeps the sign-in through a save to the same mailbox, and drops it when the box points elsewhere', async () => {
    // Prepare
    const read = await call('GET', '/email-boxes/gmail');
    const { passwordSet: _p, oauth: _o, spa: _s, ...connection } = read.body.connection;
    const body = { id: 'gmail', description: 'Renamed', connection };
    // Act
    const same = await call('PUT', '/email-boxes/gmail?verify=false', { body });
    const moved = await call('PUT', '/email-boxes/gmail?verify=false', {
      body: { ...body, connection: { ...connection, server: 'pop.elsewhere.test' } },
    });
    // Assess
    expect(same.status).toBe(200);
    expect(same.body.connection.oauth).toBeDefined();
    expect(moved.status).toBe(200); // no password asked for: there is none
    expect(moved.body.connection).toMatchObject({ passwordSet: false, server: 'pop.elsewhere.test' });
    expect(moved.body.connection.oauth).toBeUndefined();
    const box = await d.repos.emailBoxes.require(SID, 'gmail');
    expect(readGrant(await d.secrets.get(box.connection.passwordRef!)).refreshToken).toBeUndefined();
    await expect(service.accessToken(SID, 'gmail')).rejects.toBeInstanceOf(OAuthSignInRequiredError);
  });

  it.each([
    [
      'a forged state',
      (q: Record<string, string>) => ({ ...q, state: `${q.state!.split('.')[0]}.${'A'.repeat(43)}` }),
    ],
    ['no state', ({ state: _state, ...q }: Record<string, string>) => q],
    ['a state for another provider', (q: Record<string, string>) => q, 'microsoft'],
  ])('refuses a callback with %s (400), storing nothing', async (_case, change, provider = 'google') => {
    // Prepare
    await oauthBox(`refused-${_case.length}`);
    const query = await signIn(`refused-${_case.length}`);
    // Act
    const res = await callback(provider, change(query));
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'oauth_callback_refused', field: 'state' });
    expect(
      (await d.repos.emailBoxes.require(SID, `refused-${_case.length}`)).connection.oauth,
    ).toBeUndefined();
  });

  it('refuses an expired state (the sign-in took longer than 10 minutes)', async () => {
    // Prepare
    await oauthBox('slow');
    const query = await signIn('slow');
    clock += 11 * 60_000;
    // Act
    const res = await callback('google', query);
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/expired/);
  });

  it('refuses the provider\'s "no" (consent missing) with what to do', async () => {
    // Prepare
    await oauthBox('denied');
    const query = await signIn('denied');
    // Act
    const res = await callback('google', { state: query.state!, iss: query.iss!, error: 'access_denied' });
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      field: 'error',
      message: expect.stringMatching(/accept the requested mail access/),
    });
  });

  it('refuses to start for a box that does not sign in with that provider, and for an unknown box', async () => {
    // Act
    const wrong = await call('GET', '/oauth/microsoft/start?boxId=gmail');
    const missing = await call('GET', '/oauth/google/start?boxId=no-such-box');
    const anonymous = await call('GET', '/oauth/google/start?boxId=gmail', { token: null });
    // Assess
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.fields[0].field).toBe('boxId');
    expect(missing.status).toBe(404);
    expect(anonymous.status).toBe(401);
  });
});

describe('a deployment without OAuth2 configured', () => {
  it('answers 404 naming the provider, at start and at the callback', async () => {
    // Prepare
    const bare = apiClient(
      settingsFunction(d, { probePop3: unreachableProbe, env: {} }),
      settingsRoutes,
      'settings',
    );
    // Act
    const start = await bare('GET', '/oauth/google/start?boxId=gmail');
    const back = await bare('GET', '/oauth/microsoft/callback?code=x&state=y', { token: null });
    // Assess
    expect(start.status).toBe(404);
    expect(start.body.error).toMatchObject({
      field: 'provider',
      message: expect.stringMatching(/"google" is not configured/),
    });
    expect(back.status).toBe(404);
  });
});

describe('access tokens: cached until near expiry, then refreshed', () => {
  it('reuses the access token while it is valid and refreshes it near its expiry', async () => {
    // Prepare
    await oauthBox('refresh');
    await callback('google', await signIn('refresh'));
    // Act
    const first = await service.accessToken(SID, 'refresh');
    const again = await service.accessToken(SID, 'refresh');
    clock += 3600_000 - 60_000; // one minute left of the hour
    const renewed = await service.accessToken(SID, 'refresh');
    // Assess
    expect(again).toBe(first);
    expect(renewed).not.toBe(first);
    const box = await d.repos.emailBoxes.require(SID, 'refresh');
    expect(readGrant(await d.secrets.get(box.connection.passwordRef!)).accessToken).toBe(renewed);
  });

  it('emails the notification address as soon as a refresh is refused, naming what to do, and once', async () => {
    // Prepare
    await oauthBox('revoked');
    await callback('google', await signIn('revoked'));
    await as.revokeAll(MAILBOX);
    clock += 2 * 3600_000;
    const before = stub.requests.length;
    // Act
    const failure = await service.accessToken(SID, 'revoked').catch((error: unknown) => error);
    const second = await service.accessToken(SID, 'revoked').catch((error: unknown) => error);
    // Assess
    expect(failure).toBeInstanceOf(OAuthSignInRequiredError);
    expect(second).toBeInstanceOf(OAuthSignInRequiredError);
    const mails = stub.requests
      .slice(before)
      .filter((r) => r.Destination?.ToAddresses?.includes('owner@lumen.test'));
    expect(mails).toHaveLength(1);
    const mail = await parsed(mails[0]!);
    expect(mail.subject).toMatch(/cannot log in: sign in with Google again/);
    expect(mail.text).toMatch(/What to do: an administrator signs the box in again/);
    const box = await d.repos.emailBoxes.require(SID, 'revoked');
    expect(box.connection.oauth?.failedAt).toBeDefined();
  });

  it('emails a warning before the refresh token is known to expire, once', async () => {
    // Prepare
    await oauthBox('expiring');
    await callback('google', await signIn('expiring'));
    clock += 5 * 86_400_000; // 2 days left of Google's 7
    const before = stub.requests.length;
    // Act
    await service.accessToken(SID, 'expiring');
    clock += 3600_000;
    await service.accessToken(SID, 'expiring');
    // Assess
    const mails = stub.requests.slice(before);
    expect(mails).toHaveLength(1);
    const mail = await parsed(mails[0]!);
    expect(mail.subject).toMatch(/sign in with Google again before 2026-12-09/);
    expect(mail.text).toMatch(/What to do: an administrator signs the box in again before then/);
    expect(
      (await d.repos.emailBoxes.require(SID, 'expiring')).connection.oauth?.expiryWarnedAt,
    ).toBeDefined();
  });

  it('refuses a token for a box that never signed in, saying how to sign in', async () => {
    // Prepare
    await oauthBox('never');
    // Act
    const error = await service.accessToken(SID, 'never').catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(OAuthSignInRequiredError);
    expect((error as Error).message).toMatch(/GET \/oauth\/google\/start\?boxId=never/);
  });
});
