import { type AddressInfo, createServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type SmtpOptions, smtpTransport } from '#lib/adapters/mail';
import type { TransportRecord } from '#lib/domain/model';
import { freePort } from '#local/ports';
import { type CallResult, captureOutput, type TestDeps, testDeps } from '#test/support/api';
import { type SmtpHarness, startSmtpServer } from '#test/support/smtp';
import {
  type Call,
  depsWithSes,
  PASSWORD,
  SID,
  seedCompany,
  seedUser,
  sendApi,
  smtpTransportRecord,
  trusting,
} from './fixtures.ts';
import { type SesStub, startSesStub } from './ses-stub.ts';

let ssl: SmtpHarness;
let starttls: SmtpHarness;
let plain: SmtpHarness;
let d: TestDeps;
let call: Call;

beforeAll(async () => {
  const users = { alice: PASSWORD };
  [ssl, starttls, plain] = await Promise.all([
    startSmtpServer({ mode: 'ssl', users }),
    startSmtpServer({ mode: 'starttls', users }),
    startSmtpServer({ mode: 'plain', users }),
  ]);
  d = await testDeps();
  // All three servers share the one test certificate.
  call = sendApi(d, { policy: trusting(ssl) });
});

afterAll(async () => {
  await Promise.all([ssl?.stop(), starttls?.stop(), plain?.stop()]);
});

beforeEach(() => {
  for (const s of [ssl, starttls, plain]) s.reset();
});

async function testCompany(transport: TransportRecord): Promise<CallResult> {
  await seedCompany(d, transport);
  return call('POST', '/settings/company/email/test', { body: {} });
}

describe('POST /settings/company/email/test diagnoses', () => {
  it('a refused logon as the password field, with the server reply', async () => {
    // Prepare
    const transport = await smtpTransportRecord(d, starttls, 'starttls', {
      logonName: 'alice',
      password: 'wrong',
    });
    // Act
    const res = await testCompany(transport);
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.ok).toBe(false);
    expect(res.body.diagnosis).toMatchObject({
      field: 'transport.password',
      settings: 'company',
      kind: 'auth',
      serverCode: 535,
      serverReply: '535 5.7.8 Authentication credentials invalid',
    });
    expect(res.body.diagnosis.problem).toContain('"alice"');
    expect(starttls.messages).toHaveLength(0);
  });

  it('SSL on connect against a STARTTLS port as a TLS mismatch of the security field', async () => {
    // Act
    const res = await testCompany(await smtpTransportRecord(d, starttls, 'ssl'));
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.security', kind: 'tls' });
    expect(res.body.diagnosis.problem).toContain('does not start with SSL');
    expect(res.body.diagnosis.advice).toContain('STARTTLS');
  });

  it('SSL on connect against a plain port, advising that the port offers no STARTTLS', async () => {
    // Act
    const res = await testCompany(await smtpTransportRecord(d, plain, 'ssl'));
    // Assess
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.security', kind: 'tls' });
    expect(res.body.diagnosis.advice).toContain('offers no STARTTLS');
  });

  it('STARTTLS against an SSL-on-connect port as a TLS mismatch, found by probing the port', async () => {
    // Act
    const res = await testCompany(await smtpTransportRecord(d, ssl, 'starttls'));
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.security', kind: 'tls' });
    expect(res.body.diagnosis.problem).toContain('expects SSL from the first byte');
    expect(res.body.diagnosis.advice).toContain('Set security to SSL');
  });

  it('no encryption against an SSL-on-connect port the same way', async () => {
    // Act
    const res = await testCompany(await smtpTransportRecord(d, ssl, 'none'));
    // Assess
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.security', kind: 'tls' });
  });

  it('STARTTLS against a server that does not offer it', async () => {
    // Act
    const res = await testCompany(await smtpTransportRecord(d, plain, 'starttls'));
    // Assess
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.security', kind: 'tls', serverCode: 500 });
    expect(res.body.diagnosis.problem).toContain('does not offer it');
  });

  it('a logon over an unencrypted connection that the server refuses', async () => {
    // Act
    const res = await testCompany(await smtpTransportRecord(d, starttls, 'none'));
    // Assess
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.security', kind: 'tls', serverCode: 538 });
  });

  it('a port nothing listens on as the port field', async () => {
    // Prepare
    const port = await freePort();
    // Act
    const res = await testCompany(await smtpTransportRecord(d, { host: '127.0.0.1', port }, 'starttls'));
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.port', kind: 'connect' });
    expect(res.body.diagnosis.problem).toContain(`127.0.0.1:${port}`);
  });

  it('a server name that does not exist as the server field', async () => {
    // Act
    const res = await testCompany(
      await smtpTransportRecord(d, { host: 'nonexistent.invalid', port: 587 }, 'starttls'),
    );
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.server', kind: 'dns' });
    expect(res.body.diagnosis.problem).toContain('nonexistent.invalid');
  });

  it('a refused sender as the email address field', async () => {
    // Prepare
    starttls.fail({
      rejectSender: { code: 553, message: '5.7.1 Sender address rejected: not owned by user alice' },
    });
    // Act
    const res = await testCompany(await smtpTransportRecord(d, starttls, 'starttls'));
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({
      field: 'emailAddress',
      kind: 'sender',
      serverCode: 553,
      serverReply: '553 5.7.1 Sender address rejected: not owned by user alice',
    });
    expect(res.body.diagnosis.problem).toContain('hello@lumen.test');
  });

  it('a certificate the server presents that is not trusted, as the server field', async () => {
    // Prepare: the same SSL server, but without trusting its self-signed certificate.
    await seedCompany(d, await smtpTransportRecord(d, ssl, 'ssl'));
    const untrusting = sendApi(d, {
      policy: { rejectUnauthorized: true, connectionTimeoutMs: 1_500 },
      probe: false,
    });
    // Act
    const res = await untrusting('POST', '/settings/company/email/test', { body: {} });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({
      field: 'transport.server',
      kind: 'certificate',
      retryable: false,
    });
    expect(res.body.diagnosis.advice).toContain('self-signed certificate');
    expect(ssl.authAttempts).toHaveLength(0);
  });

  it('a server that accepts the connection but never greets, as the port field', async () => {
    // Prepare: a TCP listener that says nothing; the probe finds no SSL either.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const noSsl = async () => ({ implicitTls: false, plainGreeting: false, offersStartTls: false });
    const quick = sendApi(d, {
      policy: { rejectUnauthorized: true, connectionTimeoutMs: 300 },
      probe: noSsl,
    });
    try {
      await seedCompany(d, await smtpTransportRecord(d, { host: '127.0.0.1', port }, 'starttls'));
      // Act
      const res = await quick('POST', '/settings/company/email/test', { body: {} });
      // Assess
      expect(res.status).toBe(422);
      expect(res.body.diagnosis).toMatchObject({ field: 'transport.port', kind: 'timeout', retryable: true });
      expect(res.body.diagnosis.problem).toContain(
        `127.0.0.1:${port} accepted the connection but never greeted`,
      );
    } finally {
      silent.close();
    }
  });

  it('a server that wants a logon when none is set', async () => {
    // Act
    const res = await testCompany(await smtpTransportRecord(d, starttls, 'starttls', null));
    // Assess
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.logonName', kind: 'auth', serverCode: 530 });
  });
});

describe('Gmail', () => {
  let gmail: Call;
  let gd: TestDeps;

  beforeAll(async () => {
    // smtp.gmail.com is out of reach here; the factory sends Gmail's connection to the local STARTTLS
    // server instead, which refuses the way Gmail does for a normal account password.
    const toLocal = (o: SmtpOptions) => smtpTransport({ ...o, host: starttls.host, port: starttls.port });
    gd = await testDeps({ smtp: toLocal });
    gmail = sendApi(gd, { policy: trusting(starttls), probe: false });
  });

  it('explains that Gmail needs an app password when it refuses the password', async () => {
    // Prepare
    starttls.fail({ rejectAuth: { code: 534, message: '5.7.9 Application-specific password required.' } });
    const passwordRef = await gd.secrets.create(`${SID}/gmail`, 'my-normal-password');
    await seedCompany(gd, { method: 'gmail', passwordRef }, { emailAddress: 'lumen.photo@gmail.com' });
    // Act
    const res = await gmail('POST', '/settings/company/email/test', { body: {} });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.transport).toMatchObject({ method: 'gmail', server: 'smtp.gmail.com', port: 587 });
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.password', kind: 'auth', serverCode: 534 });
    expect(res.body.diagnosis.advice).toContain(
      'Gmail needs an app password: turn on 2-Step Verification and create one',
    );
    expect(starttls.authAttempts[0]?.username).toBe('lumen.photo@gmail.com');
  });

  it('says so before connecting when no app password is saved', async () => {
    // Prepare
    await seedCompany(gd, { method: 'gmail' }, { emailAddress: 'lumen.photo@gmail.com' });
    // Act
    const res = await gmail('POST', '/settings/company/email/test', { body: {} });
    // Assess
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.password', kind: 'password-missing' });
    expect(starttls.mailFromCount()).toBe(0);
  });
});

describe('SES', () => {
  let stub: SesStub;
  let sd: TestDeps;
  let sesCall: Call;

  beforeAll(async () => {
    stub = await startSesStub();
    sd = await depsWithSes(stub.endpoint, 1);
    await seedCompany(sd, { method: 'ses' });
    sesCall = sendApi(sd, { probe: false });
  });

  afterAll(async () => {
    await stub?.stop();
  });

  it('names the sending address when SES has not verified it (MessageRejected)', async () => {
    // Prepare
    stub.answer({
      status: 400,
      type: 'MessageRejected',
      message:
        'Email address is not verified. The following identities failed the check in region US-EAST-1: hello@lumen.test',
    });
    // Act
    const res = await sesCall('POST', '/settings/company/email/test', {
      body: { to: 'someone@example.test' },
    });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({ field: 'emailAddress', kind: 'identity', serverCode: 400 });
    expect(res.body.diagnosis.serverReply).toContain('MessageRejected: Email address is not verified');
    expect(res.body.diagnosis.advice).toContain('Verify the address or its domain in Amazon SES');
  });

  it('names the recipient when the SES sandbox has not verified it, whatever its letter case', async () => {
    // Prepare
    stub.answer({
      status: 400,
      type: 'MessageRejected',
      message:
        'Email address is not verified. The following identities failed the check in region US-EAST-1: ann@example.test',
    });
    // Act
    const res = await sesCall('POST', '/settings/company/email/test', { body: { to: 'Ann@Example.test' } });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({ field: 'to', kind: 'identity' });
    expect(res.body.diagnosis.problem).toContain('sandbox');
  });

  it('does the same for NotFoundException', async () => {
    // Prepare
    stub.answer({ status: 404, type: 'NotFoundException', message: 'Email address is not verified.' });
    // Act
    const res = await sesCall('POST', '/settings/company/email/test', { body: {} });
    // Assess
    expect(res.body.diagnosis).toMatchObject({ field: 'emailAddress', kind: 'identity', serverCode: 404 });
  });

  it('sends once SES accepts', async () => {
    // Act
    const res = await sesCall('POST', '/settings/company/email/test', { body: {} });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.providerMessageId).toMatch(/^<stub-\d+@email\.amazonses\.com>$/);
    expect(stub.requests.at(-1)?.FromEmailAddress).toBe('hello@lumen.test');
  });
});

describe('who may test which settings', () => {
  beforeAll(async () => {
    await seedCompany(d, await smtpTransportRecord(d, plain, 'none'));
  });

  it('refuses the company test to a user who is not an admin', async () => {
    // Act
    const res = await call('POST', '/settings/company/email/test', {
      token: 'dev:studio-1:user-1:',
      body: {},
    });
    // Assess
    expect(res.status).toBe(403);
    expect(plain.mailFromCount()).toBe(0);
  });

  it("refuses a user the test of another user's settings", async () => {
    // Act
    const res = await call('POST', '/users/user-2/email-settings/test', {
      token: 'dev:studio-1:user-1:',
      body: {},
    });
    // Assess
    expect(res.status).toBe(403);
  });

  it("tests a user's own effective settings (their transport, their address) through `me`", async () => {
    // Prepare
    const own = await smtpTransportRecord(d, starttls, 'starttls');
    await seedUser(d, 'user-1', { emailAddress: 'maya@lumen.test', transport: own });
    // Act
    const res = await call('POST', '/users/me/email-settings/test', {
      token: 'dev:studio-1:user-1:',
      body: {},
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, from: 'maya@lumen.test', to: 'maya@lumen.test' });
    expect(starttls.messages[0]?.envelope.to).toEqual(['maya@lumen.test']);
    expect(plain.messages).toHaveLength(0);
  });

  it("lets an admin test a user's settings, naming the user's record in the diagnosis", async () => {
    // Prepare
    const own = await smtpTransportRecord(d, starttls, 'starttls', { logonName: 'alice', password: 'stale' });
    await seedUser(d, 'user-3', { transport: own });
    // Act
    const res = await call('POST', '/users/user-3/email-settings/test', { body: { to: 'it@lumen.test' } });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({ field: 'transport.password', settings: 'user' });
  });

  it('answers 409 when the studio has no company email settings', async () => {
    // Act
    const res = await call('POST', '/settings/company/email/test', { token: 'dev:studio-9:admin-1:admins' });
    // Assess
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('email_not_set_up');
  });
});

describe('secrets', () => {
  it('never puts the password in a response or a log line, whether the logon works or not', async () => {
    // Prepare
    const good = await smtpTransportRecord(d, starttls, 'starttls');
    const output = captureOutput();
    const answers: string[] = [];
    try {
      // Act
      answers.push((await testCompany(good)).text);
      starttls.fail({ rejectAuth: true });
      answers.push((await testCompany(good)).text);
      answers.push(
        (
          await call('POST', '/emails', {
            token: 'dev:studio-1:user-9:',
            body: { to: ['a@example.test'], subject: 'x', text: 'y' },
          })
        ).text,
      );
    } finally {
      output.restore();
    }
    // Assess
    expect(starttls.authAttempts.length).toBeGreaterThanOrEqual(2);
    expect(answers[0]).toContain('"ok":true');
    expect(answers[1]).toContain('"kind":"auth"');
    expect(output.lines.length).toBeGreaterThan(0);
    // AUTH PLAIN and AUTH LOGIN carry the password base64-encoded: a leaked command would show that.
    const encoded = [`\0alice\0${PASSWORD}`, PASSWORD].map((v) => Buffer.from(v).toString('base64'));
    for (const text of [...answers, output.text()]) {
      expect(text).not.toContain(PASSWORD);
      for (const e of encoded) expect(text).not.toContain(e);
      expect(text).not.toContain('passwordRef');
      expect(text).not.toContain('local:secret:');
    }
  });

  it('uses a changed password for a send after one refused logon, though the old one was cached', async () => {
    // Prepare
    const transport = await smtpTransportRecord(d, starttls, 'starttls', {
      logonName: 'alice',
      password: 'old-one',
    });
    await seedCompany(d, transport);
    const email = { body: { to: ['a@example.test'], subject: 'x', text: 'y' } };
    const before = await call('POST', '/emails', email);
    await d.secrets.update((transport as { passwordRef: string }).passwordRef, PASSWORD);
    // Act
    const after = await call('POST', '/emails', email);
    // Assess
    expect(before.status).toBe(422);
    expect(after.status).toBe(200);
    expect(starttls.authAttempts).toHaveLength(3);
    expect(starttls.messages).toHaveLength(1);
  });

  it('reads the password fresh for a test email, right after it was changed', async () => {
    // Prepare
    const transport = await smtpTransportRecord(d, starttls, 'starttls', {
      logonName: 'alice',
      password: 'old-one',
    });
    await seedCompany(d, transport);
    const before = await call('POST', '/settings/company/email/test', { body: {} });
    await d.secrets.update((transport as { passwordRef: string }).passwordRef, PASSWORD);
    // Act
    const after = await call('POST', '/settings/company/email/test', { body: {} });
    // Assess
    expect(before.status).toBe(422);
    expect(after.status).toBe(200);
    expect(starttls.authAttempts).toHaveLength(2);
  });
});
