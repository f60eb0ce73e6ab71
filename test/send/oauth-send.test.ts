// @vitest-environment node
/**
 * Sending with an OAuth2 sign-in: company send settings on SMTP with `authentication: oauth2`,
 * signed in at the local authorization server through GET /oauth/google/start?settings=company,
 * then XOAUTH2 against the smtp-server harness, which checks each bearer token by introspection.
 */
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { settingsFunction } from '#functions/settings/app';
import { settingsRoutes } from '#functions/settings/routes';
import { sesTransport } from '#lib/adapters/mail';
import type { OAuthSettings } from '#lib/oauth/providers';
import { OAuthService } from '#lib/oauth/service';
import { apiClient, type TestDeps, testDeps } from '#test/support/api';
import { type SmtpHarness, startSmtpServer } from '#test/support/smtp';
import {
  type AuthorizationServer,
  CLIENT_ID,
  CLIENT_SECRET,
  SCOPES,
  startAuthorizationServer,
} from '../oauth/authorization-server.ts';
import { type Call, SID, sendApi, sesClient, trusting } from './fixtures.ts';
import { type SesStub, startSesStub } from './ses-stub.ts';

const REDIRECT_BASE = 'https://api.studio-mail.test';
const MAILBOX = 'hello@lumen.test';

let as: AuthorizationServer;
let smtp: SmtpHarness;
let stub: SesStub;
let d: TestDeps;
let service: OAuthService;
let settings: Call;
let send: Call;
/** Tokens the SMTP server refuses from now on (as if revoked or expired early). */
const refused = new Set<string>();
const granted: string[] = [];

beforeAll(async () => {
  as = await startAuthorizationServer([`${REDIRECT_BASE}/oauth/google/callback`]);
  smtp = await startSmtpServer({
    mode: 'starttls',
    xoauth2: async (user, token) => {
      granted.push(token);
      if (refused.has(token)) return false;
      const claims = await as.introspect(token);
      return claims.active && claims.username === user;
    },
  });
  stub = await startSesStub();
  const notifications = sesTransport(sesClient(stub.endpoint, 1));
  d = await testDeps({ ses: () => notifications });
  const oauthSettings: OAuthSettings = {
    providers: {
      google: {
        id: 'google',
        issuer: new URL(as.issuer),
        clientId: CLIENT_ID,
        clientSecretRef: await d.secrets.create('oauth/client-secret', CLIENT_SECRET),
        scopes: SCOPES,
        authorizationParams: { prompt: 'consent' },
      },
    },
    redirectBase: REDIRECT_BASE,
    stateKeyRef: await d.secrets.create('oauth/state-key', 'state-key-for-tests-0123456789abcdefghij'),
    stateTtlSeconds: 600,
    warnBeforeSeconds: 86_400,
  };
  service = new OAuthService(
    {
      repos: d.repos,
      secrets: d.secrets,
      log: d.logger,
      now: d.now,
      mail: d.ses,
      notificationSender: 'notifications@studio-mail.test',
    },
    oauthSettings,
  );
  settings = apiClient(settingsFunction(d, { oauth: service }), settingsRoutes, 'settings');
  send = sendApi(d, { oauth: service, policy: trusting(smtp), probe: false });
}, 60_000);

afterAll(async () => {
  await Promise.all([smtp?.stop(), as?.stop(), stub?.stop()]);
});

beforeEach(() => smtp.reset());

async function saveAndSignIn() {
  const saved = await settings('PUT', '/settings/company/email', {
    body: {
      studioName: 'Lumen Photo Studio',
      displayName: 'Lumen Photo',
      emailAddress: MAILBOX,
      transport: {
        method: 'smtp',
        server: smtp.host,
        port: smtp.port,
        security: 'starttls',
        logonName: MAILBOX,
        authentication: 'oauth2',
        provider: 'google',
      },
    },
  });
  expect(saved.status).toBeLessThan(300);
  const start = await settings('GET', '/oauth/google/start?settings=company');
  expect(start.status).toBe(200);
  const query = await as.authorize(start.body.authorizationUrl, MAILBOX);
  return settings('GET', `/oauth/google/callback?${new URLSearchParams(query)}`, { token: null });
}

describe('send settings signed in with OAuth2 (SMTP XOAUTH2)', () => {
  it('refuses a password with oauth2 and an oauth2 SMTP transport without provider, naming the fields', async () => {
    // Act
    const res = await settings('PUT', '/settings/company/email', {
      body: {
        studioName: 'Lumen',
        displayName: 'Lumen',
        emailAddress: MAILBOX,
        transport: {
          method: 'smtp',
          server: smtp.host,
          port: smtp.port,
          security: 'starttls',
          logonName: MAILBOX,
          password: 'not-with-oauth2',
          authentication: 'oauth2',
        },
      },
    });
    // Assess
    expect(res.status).toBe(400);
    const fields = res.body.error.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['transport.password', 'transport.provider']));
  });

  it('signs the company send settings in and delivers a test email with the access token', async () => {
    // Act
    const back = await saveAndSignIn();
    const res = await send('POST', '/settings/company/email/test', { body: { to: 'client@example.com' } });
    const view = await settings('GET', '/settings/company/email');
    // Assess
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ ok: true, settings: 'company', provider: 'google' });
    expect(res.status).toBe(200);
    expect(res.body.transport).toMatchObject({
      method: 'smtp',
      authentication: 'oauth2',
      provider: 'google',
    });
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]!.envelope.to).toEqual(['client@example.com']);
    expect(view.body.transport).toMatchObject({ authentication: 'oauth2', passwordSet: true });
    expect(view.body.transport.oauth.signedInAt).toBeTruthy();
    // No token in any answer.
    for (const body of [back.body, res.body, view.body])
      for (const token of granted) expect(JSON.stringify(body)).not.toContain(token);
  });

  it('renews a token the server refuses once, and delivers on the second try', async () => {
    // Prepare: the current token stops working at the server
    await send('POST', '/settings/company/email/test', { body: {} });
    const current = granted.at(-1)!;
    refused.add(current);
    smtp.reset();
    const before = granted.length;
    // Act
    const res = await send('POST', '/settings/company/email/test', { body: {} });
    // Assess
    expect(res.status).toBe(200);
    expect(smtp.messages).toHaveLength(1);
    const presented = granted.slice(before);
    expect(presented).toHaveLength(2);
    expect(presented[0]).toBe(current);
    expect(presented[1]).not.toBe(current);
  });

  it('answers a refused renewal with a diagnosis naming the sign-in to redo, and emails the sending address', async () => {
    // Prepare: the account's refresh tokens are revoked and the current token is refused
    await send('POST', '/settings/company/email/test', { body: {} });
    refused.add(granted.at(-1)!);
    await as.revokeAll(MAILBOX);
    smtp.reset();
    const before = stub.requests.length;
    // Act
    const res = await send('POST', '/settings/company/email/test', { body: {} });
    const again = await send('POST', '/settings/company/email/test', { body: {} });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({
      field: 'transport.authentication',
      settings: 'company',
      kind: 'sign-in',
      retryable: false,
    });
    expect(res.body.diagnosis.advice).toContain('GET /oauth/google/start?settings=company');
    expect(again.body.diagnosis.field).toBe('transport.authentication');
    expect(smtp.messages).toHaveLength(0);
    const alerts = stub.requests.slice(before);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.Destination?.ToAddresses).toEqual([MAILBOX]);
    const raw = Buffer.from((alerts[0]!.Content as { Raw: { Data: string } }).Raw.Data, 'base64');
    const mail = await simpleParser(raw);
    expect(mail.subject).toMatch(/Company email cannot log in: sign in with Google again/);
    expect(mail.text).toMatch(/What to do: an administrator signs these settings in again/);
    const stored = await d.repos.companyEmail.get(SID, 'company');
    expect(stored?.transport.method === 'smtp' && stored.transport.oauth?.failedAt).toBeTruthy();
  });
});
