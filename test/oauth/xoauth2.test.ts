// @vitest-environment node
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPorts } from '#functions/inbox-poll/app';
import { settingsFunction } from '#functions/settings/app';
import { settingsRoutes } from '#functions/settings/routes';
import { smtpTransport } from '#lib/adapters/mail';
import type { EmailBox } from '#lib/domain/model';
import { ImapError } from '#lib/imap/errors';
import { openBox, openMailbox } from '#lib/inbox/connect';
import { describeFailure } from '#lib/inbox/failures';
import { pollBox } from '#lib/inbox/poll';
import type { OAuthSettings } from '#lib/oauth/providers';
import { OAuthService } from '#lib/oauth/service';
import { Pop3Client, SaslCode } from '#lib/pop3/client';
import { diagnosePop3 } from '#lib/pop3/diagnose';
import { apiClient, type TestDeps, testDeps } from '#test/support/api';
import { type Dovecot, startDovecot, uniqueUser } from '#test/support/dovecot';
import {
  type AuthorizationServer,
  CLIENT_ID,
  CLIENT_SECRET,
  SCOPES,
  startAuthorizationServer,
} from './authorization-server.ts';

const SID = 'studio-1';
const REDIRECT_BASE = 'https://api.studio-mail.test';

let as: AuthorizationServer;
let dovecot: Dovecot;
let d: TestDeps;
let service: OAuthService;
let call: ReturnType<typeof apiClient>;
let user: string;
let box: EmailBox;
/** The OAuth2 service's clock: moved forward to make the access token due for renewal. */
let clock = Date.now();

beforeAll(async () => {
  as = await startAuthorizationServer([`${REDIRECT_BASE}/oauth/google/callback`]);
  dovecot = await startDovecot({
    oauth2: { introspectionUrl: as.introspectionUrlWithCredentials },
    extraConfig: 'service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}',
  });
  user = uniqueUser('oauth');
  await dovecot.addUser(user, 'a-password-nobody-uses-here');
  await dovecot.deliver(user, Buffer.from('From: a@example.com\r\nSubject: via oauth\r\n\r\nHi\r\n'));
  const caFile = join(dovecot.dir, 'ca-for-oauth-tests.pem');
  await writeFile(caFile, dovecot.caCertPem);
  d = await testDeps({ now: () => new Date(clock) });
  const settings: OAuthSettings = {
    providers: {
      google: {
        id: 'google',
        issuer: new URL(as.issuer),
        clientId: CLIENT_ID,
        clientSecretRef: await d.secrets.create('oauth/client-secret', CLIENT_SECRET),
        scopes: SCOPES,
        authorizationParams: {},
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
      notificationSender: 'n@x.test',
    },
    settings,
  );
  call = apiClient(
    settingsFunction(d, {
      oauth: service,
      env: { POP3_CA_FILE: caFile, POP3_CONNECT_TIMEOUT_MS: '3000', POP3_TIMEOUT_MS: '5000' },
    }),
    settingsRoutes,
    'settings',
  );
  // A Gmail-like box on the test Dovecot, signed in at the local authorization server as the mailbox.
  const created = await call('POST', '/email-boxes', {
    body: {
      id: 'xoauth',
      description: 'XOAUTH2 box',
      connection: {
        server: dovecot.host,
        port: dovecot.pop3sPort,
        ssl: true,
        emailAddress: 'sales@lumen.test',
        userName: user,
        authentication: 'oauth2',
        provider: 'google',
      },
    },
  });
  expect(created.status).toBe(201);
  const start = await call('GET', '/oauth/google/start?boxId=xoauth');
  const query = await as.authorize(start.body.authorizationUrl, user);
  const back = await call('GET', `/oauth/google/callback?${new URLSearchParams(query)}`, { token: null });
  expect(back.status).toBe(200);
  box = await d.repos.emailBoxes.require(SID, 'xoauth');
}, 60_000);

afterAll(async () => {
  await Promise.all([dovecot?.stop(), as?.stop()]);
});

describe('IMAP AUTHENTICATE XOAUTH2/OAUTHBEARER against the same Dovecot', () => {
  const imapBox = () => ({
    leaveOnServer: true,
    connection: { ...box.connection, type: 'imap' as const, port: dovecot.imapsPort },
  });

  it('logs in with the access token of the sign-in, as a poll of an IMAP box does', async () => {
    // Act
    const session = await openMailbox(imapBox(), '', {
      imap: { ca: dovecot.caCertPem },
      accessToken: () => service.accessToken(SID, 'xoauth'),
    });
    const listed = await session.uidl();
    await session.quit();
    // Assess
    expect(listed).toHaveLength(1);
    expect(listed[0]?.uid).toMatch(/^\d+:1$/);
  });

  it('is refused with a token the authorization server does not know, naming the sign-in to redo', async () => {
    // Act
    const error = await openMailbox(imapBox(), '', {
      imap: { ca: dovecot.caCertPem },
      accessToken: async () => 'not-a-token-the-server-issued',
    }).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ImapError);
    expect(error).toMatchObject({ kind: 'auth', code: SaslCode.OAUTH_REJECTED });
    expect(describeFailure(error, imapBox().connection).field).toBe('connection.authentication');
  });
});

describe('POP3 AUTH XOAUTH2 against Dovecot with an oauth2 passdb (token introspection)', () => {
  it('logs in with the access token of the sign-in, as a poll does, and reads the mailbox', async () => {
    // Act
    const client = await openBox(box.connection, '', { ca: dovecot.caCertPem }, undefined, () =>
      service.accessToken(SID, 'xoauth'),
    );
    const { count } = await client.stat();
    await client.quit();
    // Assess
    expect(count).toBe(1);
  });

  it('is refused with a token the authorization server does not know, naming the sign-in to redo', async () => {
    // Prepare
    const client = await Pop3Client.connect({
      host: dovecot.host,
      port: dovecot.pop3sPort,
      ca: dovecot.caCertPem,
    });
    // Act
    const error = await client.xoauth2(user, 'not-a-token-the-server-issued').catch((e: unknown) => e);
    client.close();
    // Assess
    expect(error).toMatchObject({ kind: 'auth', code: SaslCode.OAUTH_REJECTED });
    const diagnosis = diagnosePop3(
      error as never,
      { server: dovecot.host, port: 995, ssl: true },
      {
        connectTimeoutMs: 1,
        timeoutMs: 1,
      },
    );
    expect(diagnosis.field).toBe('connection.authentication');
    expect(diagnosis.advice).toMatch(/Sign in again/);
  });

  it('is refused with a valid token presented for another mailbox', async () => {
    // Prepare
    const token = await service.accessToken(SID, 'xoauth');
    const client = await Pop3Client.connect({
      host: dovecot.host,
      port: dovecot.pop3sPort,
      ca: dovecot.caCertPem,
    });
    // Act
    const error = await client.xoauth2('someone-else', token).catch((e: unknown) => e);
    client.close();
    // Assess
    expect(error).toMatchObject({ kind: 'auth', code: SaslCode.OAUTH_REJECTED });
  });

  it('is what the connection test uses for an OAuth2 box (POST /email-boxes/{id}/test)', async () => {
    // Act
    const res = await call('POST', '/email-boxes/xoauth/test');
    // Assess
    expect(res.body).toMatchObject({ ok: true, messageCount: 1 });
  });

  it('never shows the access token in the protocol trace', async () => {
    // Prepare
    const token = await service.accessToken(SID, 'xoauth');
    const log: string[] = [];
    const client = await Pop3Client.connect({
      host: dovecot.host,
      port: dovecot.pop3sPort,
      ca: dovecot.caCertPem,
      onLog: (direction, line) => log.push(`${direction} ${line}`),
    });
    // Act
    await client.xoauth2(user, token);
    await client.quit();
    // Assess
    expect(log).toContain('C AUTH XOAUTH2');
    expect(log.join('\n')).not.toContain(token);
    expect(log.join('\n')).not.toContain(Buffer.from(`auth=Bearer ${token}`).toString('base64').slice(0, 20));
  });
});

describe('a poll of an OAuth2 box', () => {
  it("imports the mailbox with XOAUTH2 through the poller's own ports", async () => {
    // Prepare: plain POP3 here, so the poller's default TLS trust needs no test CA
    const polled = await call('POST', '/email-boxes?verify=false', {
      body: {
        id: 'xoauth-poll',
        description: 'Polled over XOAUTH2',
        connection: {
          ...box.connection,
          passwordRef: undefined,
          oauth: undefined,
          spa: undefined,
          ssl: false,
          port: dovecot.pop3Port,
        },
      },
    });
    expect(polled.status).toBe(201);
    const start = await call('GET', '/oauth/google/start?boxId=xoauth-poll');
    await call(
      'GET',
      `/oauth/google/callback?${new URLSearchParams(await as.authorize(start.body.authorizationUrl, user))}`,
      {
        token: null,
      },
    );
    // Act
    const outcome = await pollBox(
      d,
      { studioId: SID, boxId: 'xoauth-poll', trigger: 'manual', budgetMs: 60_000 },
      defaultPorts(d, service),
    );
    // Assess
    expect(outcome.failure).toBeUndefined();
    expect(outcome.run?.counts).toMatchObject({ imported: 1 });
  });
});

describe('SMTP XOAUTH2 for sending', () => {
  let smtp: SMTPServer;
  let port: number;
  const received: { user: string | undefined; method: string }[] = [];

  beforeAll(async () => {
    // A submission server that accepts XOAUTH2 only, checking the token at the authorization server.
    smtp = new SMTPServer({
      authMethods: ['XOAUTH2'],
      authOptional: false,
      disabledCommands: ['STARTTLS'],
      onAuth(auth, _session, done) {
        as.introspect(auth.accessToken ?? '').then(
          (claims) => {
            if (auth.method !== 'XOAUTH2' || !claims.active || claims.username !== auth.username)
              return done(null, { data: { status: '401', schemes: 'bearer', scope: 'mail' } });
            received.push({ user: auth.username, method: auth.method });
            done(null, { user: auth.username });
          },
          (error: Error) => done(error),
        );
      },
      onData(stream, _session, done) {
        stream.on('error', done);
        stream.resume();
        stream.on('end', () => done());
      },
    });
    smtp.on('error', () => {});
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    port = (smtp.server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => smtp?.close(() => resolve()));
  });

  const mail = {
    envelope: { from: 'sales@lumen.test', to: ['client@example.test'] },
    raw: Buffer.from('From: sales@lumen.test\r\nTo: client@example.test\r\nSubject: hi\r\n\r\nHello\r\n'),
    messageId: '<xoauth2-test@lumen.test>',
  };

  it("sends with nodemailer's OAuth2 auth (user + access token)", async () => {
    // Prepare
    const accessToken = await service.accessToken(SID, 'xoauth');
    const transport = smtpTransport({ host: '127.0.0.1', port, security: 'none', user, accessToken });
    // Act
    const result = await transport.send(mail);
    transport.close();
    // Assess
    expect(result.accepted).toEqual(['client@example.test']);
    expect(received.at(-1)).toEqual({ user, method: 'XOAUTH2' });
  });

  it('is refused with a token the authorization server does not know', async () => {
    // Prepare
    const transport = smtpTransport({
      host: '127.0.0.1',
      port,
      security: 'none',
      user,
      accessToken: 'forged',
    });
    // Act
    const error = await transport.send(mail).catch((e: unknown) => e);
    transport.close();
    // Assess
    expect(error).toMatchObject({ code: 'EAUTH' });
  });
});

describe('a sign-in the provider has revoked', () => {
  it('makes the connection test answer ok: false naming the sign-in, without reaching the mail server', async () => {
    // Prepare
    await as.revokeAll(user);
    clock += 2 * 3600_000; // the access token is due for renewal
    // Act
    const res = await call('POST', '/email-boxes/xoauth/test');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      ok: false,
      field: 'connection.authentication',
      kind: 'oauth_sign_in_required',
      message: expect.stringMatching(/sign in again/),
    });
  });
});
