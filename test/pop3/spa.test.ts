// @vitest-environment node
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBox, openMailbox } from '#lib/inbox/connect';
import { Pop3Client, type Pop3ClientOptions, Pop3Error, SaslCode } from '#lib/pop3/client';
import { diagnosePop3 } from '#lib/pop3/diagnose';
import { type SettingsHarness, settingsHarness } from '#test/settings/harness';
import { type Dovecot, startDovecot, uniqueUser } from '#test/support/dovecot';

const DOMAIN = 'CORP';
const PASSWORD = 'pw-Spa-4821';
const WRONG_PASSWORD = 'pw-Spa-0000';
const LIMITS = { connectTimeoutMs: 5_000, timeoutMs: 10_000 };

let spa: Dovecot;
/** A server without NTLM, for "SPA on against a server that has none". */
let plain: Dovecot;
let h: SettingsHarness;
let user: string;

beforeAll(async () => {
  // Failed log-ins on purpose: no anvil penalty, or each later attempt would wait seconds.
  const noPenalty = 'service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}';
  [spa, plain] = await Promise.all([
    startDovecot({ ntlm: { domain: DOMAIN }, extraConfig: noPenalty }),
    startDovecot({ extraConfig: noPenalty }),
  ]);
  user = uniqueUser('spa');
  await spa.addUser(user, PASSWORD);
  await plain.addUser(user, PASSWORD);
  await spa.deliver(user, Buffer.from('From: a@example.com\r\nSubject: one\r\n\r\nHi\r\n'));
  const caFile = join(spa.dir, 'ca-for-spa-tests.pem');
  await writeFile(caFile, spa.caCertPem);
  h = await settingsHarness({
    env: { POP3_CA_FILE: caFile, POP3_CONNECT_TIMEOUT_MS: '3000', POP3_TIMEOUT_MS: '5000' },
  });
}, 60_000);

afterAll(async () => {
  h?.output.restore();
  await Promise.all([spa?.stop(), plain?.stop()]);
});

function options(server: Dovecot, log?: string[]): Pop3ClientOptions {
  return {
    host: server.host,
    port: server.pop3sPort,
    tls: 'implicit',
    ca: server.caCertPem,
    ...LIMITS,
    ...(log ? { onLog: (direction, line) => log.push(`${direction} ${line}`) } : {}),
  };
}

/** Logs in with NTLM; the error when it fails. */
async function ntlmLogin(
  credentials: { domain: string; userName: string; password: string },
  server = spa,
  log?: string[],
): Promise<{ count: number } | Pop3Error> {
  const client = await Pop3Client.connect(options(server, log));
  try {
    await client.ntlm(credentials);
    const { count } = await client.stat();
    await client.quit();
    return { count };
  } catch (error) {
    client.close();
    if (error instanceof Pop3Error) return error;
    throw error;
  }
}

const fieldOf = (error: Pop3Error) =>
  diagnosePop3(error, { server: spa.host, port: spa.pop3sPort, ssl: true, domain: DOMAIN }, LIMITS).field;

describe('SPA: AUTH NTLM against Dovecot with a Windows domain', () => {
  it('logs in with the right domain, user name and password and reads the mailbox', async () => {
    // Act
    const result = await ntlmLogin({ domain: DOMAIN, userName: user, password: PASSWORD });
    // Assess
    expect(result).toEqual({ count: 1 });
  });

  it('logs in with the domain in any case, its DNS name, or a DOMAIN\\user user name', async () => {
    // Act
    const results = [
      await ntlmLogin({ domain: 'corp', userName: user, password: PASSWORD }),
      await ntlmLogin({ domain: 'corp.test', userName: user, password: PASSWORD }),
    ];
    // Assess
    expect(results).toEqual([{ count: 1 }, { count: 1 }]);
  });

  it('refuses a wrong domain and names the domain field', async () => {
    // Act
    const error = await ntlmLogin({ domain: 'WRONG', userName: user, password: PASSWORD });
    // Assess
    expect(error).toBeInstanceOf(Pop3Error);
    expect(error).toMatchObject({ kind: 'auth', code: SaslCode.NTLM_DOMAIN });
    expect(fieldOf(error as Pop3Error)).toBe('connection.domain');
  });

  it.each([
    ['a wrong password', { domain: DOMAIN, userName: 'USER', password: WRONG_PASSWORD }],
    ['an unknown user name', { domain: DOMAIN, userName: 'nobody-here', password: PASSWORD }],
  ])(
    'refuses %s and names the password field, saying any of the three may be wrong',
    async (_case, creds) => {
      // Prepare
      const credentials = { ...creds, userName: creds.userName === 'USER' ? user : creds.userName };
      // Act
      const error = await ntlmLogin(credentials);
      // Assess
      expect(error).toBeInstanceOf(Pop3Error);
      expect(error).toMatchObject({ kind: 'auth', code: undefined });
      const diagnosis = diagnosePop3(
        error as Pop3Error,
        { server: spa.host, port: 995, ssl: true, domain: DOMAIN },
        LIMITS,
      );
      expect(diagnosis.field).toBe('connection.password');
      expect(diagnosis.advice).toMatch(/Domain, the user name .* and the password/);
    },
  );

  it('names the SPA switch when the server offers no NTLM, sending nothing', async () => {
    // Prepare
    const log: string[] = [];
    // Act
    const error = await ntlmLogin({ domain: DOMAIN, userName: user, password: PASSWORD }, plain, log);
    // Assess
    expect(error).toMatchObject({ kind: 'auth', code: SaslCode.UNAVAILABLE });
    expect(fieldOf(error as Pop3Error)).toBe('connection.spa');
    expect(log.some((line) => line.startsWith('C AUTH'))).toBe(false);
  });

  it('never shows the password or the NTLM messages in the protocol trace', async () => {
    // Prepare
    const log: string[] = [];
    // Act
    await ntlmLogin({ domain: DOMAIN, userName: user, password: PASSWORD }, spa, log);
    // Assess
    expect(log).toContain('C AUTH NTLM');
    const sent = log.filter((line) => line.startsWith('C '));
    expect(sent.filter((line) => line === 'C ****')).toHaveLength(2);
    expect(log.join('\n')).not.toContain(PASSWORD);
    expect(sent.join('\n')).not.toMatch(/TlRMTVNTUA/); // base64 of "NTLMSSP"
  });
});

/** A stored SPA connection to the test server's POP3S port, as a poll reads it. */
const spaConnection = (type: 'pop3' | 'exchange') => ({
  type,
  server: spa.host,
  port: spa.pop3sPort,
  ssl: true,
  emailAddress: 'sales@lumen.test',
  userName: user,
  passwordRef: 'local:secret:unused',
  spa: true,
  authentication: 'ntlm' as const,
  domain: DOMAIN,
});

describe('the poller opens an SPA box with NTLM', () => {
  it("logs in with the box's domain through openBox, as a poll does", async () => {
    // Prepare
    const conn = spaConnection('pop3');
    // Act
    const client = await openBox(conn, PASSWORD, { ca: spa.caCertPem });
    const { count } = await client.stat();
    await client.quit();
    const refused = await openBox({ ...conn, domain: 'WRONG' }, PASSWORD, { ca: spa.caCertPem }).catch(
      (error: unknown) => error,
    );
    // Assess
    expect(count).toBe(1);
    expect(refused).toMatchObject({ kind: 'auth', code: SaslCode.NTLM_DOMAIN });
  });
});

describe('an on-premises Exchange box (type exchange) is read through its POP3 endpoint with SPA', () => {
  it('logs in with NTLM and its domain as a poll opens it, and refuses the wrong domain', async () => {
    // Prepare
    const conn = spaConnection('exchange');
    // Act
    const session = await openMailbox({ connection: conn, leaveOnServer: true }, PASSWORD, {
      pop3: { ca: spa.caCertPem },
    });
    const listed = await session.uidl();
    await session.quit();
    const refused = await openMailbox(
      { connection: { ...conn, domain: 'WRONG' }, leaveOnServer: true },
      PASSWORD,
      { pop3: { ca: spa.caCertPem } },
    ).catch((error: unknown) => error);
    // Assess
    expect(listed).toHaveLength(1);
    expect(refused).toMatchObject({ kind: 'auth', code: SaslCode.NTLM_DOMAIN });
  });
});

describe('the settings API logs in with SPA on save and on test', () => {
  const box = (id: string, connection: Record<string, unknown>) => ({
    id,
    description: `SPA box ${id}`,
    connection: {
      type: 'pop3',
      server: spa.host,
      port: spa.pop3sPort,
      ssl: true,
      emailAddress: 'sales@lumen.test',
      userName: user,
      password: PASSWORD,
      spa: true,
      domain: DOMAIN,
      ...connection,
    },
  });

  it('saves a box whose SPA log-in works, storing authentication "ntlm" and its domain', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box('spa-ok', {}) });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.verification).toMatchObject({ tested: true, ok: true, messageCount: 1 });
    expect(res.body.connection).toMatchObject({ spa: true, authentication: 'ntlm', domain: DOMAIN });
  });

  it.each([
    ['a wrong domain', 'domain', { domain: 'WRONG' }, 'connection.domain'],
    ['a wrong password', 'password', { password: WRONG_PASSWORD }, 'connection.password'],
    ['a wrong user name', 'user', { userName: 'nobody-here' }, 'connection.password'],
  ])('answers 422 for %s, naming the field to fix', async (_case, id, connection, field) => {
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box(`spa-bad-${id}`, connection) });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.error.field).toBe(field);
  });

  it('saves an on-premises Exchange box after the same SPA log-in to its POP3 endpoint', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box('exch-onprem', { type: 'exchange' }) });
    const wrong = await h.call('POST', '/email-boxes', {
      body: box('exch-wrong', { type: 'exchange', domain: 'WRONG' }),
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.verification).toMatchObject({ tested: true, ok: true, messageCount: 1 });
    expect(res.body.connection).toMatchObject({ type: 'exchange', authentication: 'ntlm', domain: DOMAIN });
    expect(wrong.status).toBe(422);
    expect(wrong.body.error.field).toBe('connection.domain');
  });

  it('tests a saved SPA box with NTLM (POST /email-boxes/{id}/test)', async () => {
    // Prepare
    await h.call('POST', '/email-boxes?verify=false', { body: box('spa-test', { domain: 'WRONG' }) });
    // Act
    const bad = await h.call('POST', '/email-boxes/spa-test/test');
    const good = await h.call('POST', '/email-boxes/spa-ok/test');
    // Assess
    expect(bad.body).toMatchObject({ ok: false, field: 'connection.domain', kind: 'auth' });
    expect(good.body).toMatchObject({ ok: true, messageCount: 1 });
  });

  it('refuses SPA together with another authentication, and a domain on a POP3 box without SPA', async () => {
    // Act
    const both = await h.call('POST', '/email-boxes?verify=false', {
      body: box('spa-both', { authentication: 'password' }),
    });
    const domainOnly = await h.call('POST', '/email-boxes?verify=false', {
      body: box('spa-domain', { spa: false }),
    });
    // Assess
    expect(both.status).toBe(400);
    expect(both.body.error.fields.map((f: { field: string }) => f.field)).toContain('connection.spa');
    expect(domainOnly.status).toBe(400);
    expect(domainOnly.body.error.fields.map((f: { field: string }) => f.field)).toEqual([
      'connection.domain',
    ]);
  });

  it('never shows the password in any response or log line', () => {
    // Assess
    h.assertNeverLeaked([PASSWORD, WRONG_PASSWORD]);
  });
});
