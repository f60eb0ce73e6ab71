// @vitest-environment node
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dovecot, startDovecot, uniqueUser } from '#test/support/dovecot';
import { type SettingsHarness, settingsHarness } from './harness.ts';

const PASSWORD = 'pw-Zebra-9137';
const WRONG_PASSWORD = 'pw-Wrong-6402';

let dovecot: Dovecot;
let h: SettingsHarness;
let user: string;
/** Trust the test Dovecot's self-signed certificate the only way the API allows: configuration. */
let env: Record<string, string>;

beforeAll(async () => {
  // Dovecot delays log-ins from an IP after failed ones; this file fails on purpose several times.
  dovecot = await startDovecot({
    extraConfig: 'service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}',
  });
  user = uniqueUser('box');
  await dovecot.addUser(user, PASSWORD);
  for (const n of [1, 2])
    await dovecot.deliver(user, Buffer.from(`From: a@example.com\r\nSubject: hello ${n}\r\n\r\nHi\r\n`));
  const caFile = join(dovecot.dir, 'ca-for-settings-tests.pem');
  await writeFile(caFile, dovecot.caCertPem);
  env = { POP3_CA_FILE: caFile, POP3_CONNECT_TIMEOUT_MS: '1500', POP3_TIMEOUT_MS: '3000' };
  h = await settingsHarness({ env });
}, 60_000);

afterAll(async () => {
  h?.output.restore();
  await dovecot?.stop();
});

async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const box = (id: string, connection: Record<string, unknown>) => ({
  id,
  description: `Box ${id}`,
  connection: {
    type: 'pop3',
    server: dovecot.host,
    emailAddress: 'sales@lumen.test',
    userName: user,
    password: PASSWORD,
    ssl: true,
    port: dovecot.pop3sPort,
    ...connection,
  },
});

describe('saving a box logs in to its POP3 server first', () => {
  it('saves a box whose POP3S login works, reporting the greeting and the messages waiting', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box('pop3s', {}) });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.verification).toMatchObject({ tested: true, ok: true, messageCount: 2 });
    expect(res.body.verification.greeting).toMatch(/Dovecot/);
    expect(
      await h.d.secrets.get(
        (await h.d.repos.emailBoxes.require('studio-1', 'pop3s')).connection.passwordRef!,
      ),
    ).toBe(PASSWORD);
  });

  it('saves a box whose plain POP3 login works (SSL off)', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', {
      body: box('plain', { ssl: false, port: dovecot.pop3Port }),
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.verification).toMatchObject({ tested: true, ok: true });
  });

  it.each([
    [
      'a wrong password',
      () => ({ password: WRONG_PASSWORD }),
      'connection.password',
      /rejected the user name or password/,
      'auth',
    ],
    [
      'a port nobody listens on',
      async () => ({ port: await unusedPort() }),
      'connection.port',
      /refused the connection.*SSL/,
      'refused',
    ],
    [
      'SSL on against the plain POP3 port',
      () => ({ ssl: true, port: dovecot.pop3Port }),
      'connection.ssl',
      /handshake .* failed.*Turn SSL off/,
      'tls',
    ],
    [
      'SSL off against the POP3S port',
      () => ({ ssl: false, port: dovecot.pop3sPort }),
      'connection.ssl',
      /no POP3 greeting.*probably expects SSL/,
      'timeout',
    ],
    [
      'a server name that does not exist',
      () => ({ server: 'no-such-mail-server.invalid' }),
      'connection.server',
      /"no-such-mail-server.invalid" was not found/,
      'dns',
    ],
  ])(
    'answers 422 for %s, naming the field, and saves nothing',
    async (_case, connection, field, message, kind) => {
      // Prepare
      const before = h.secretCount();
      const id = `bad-${kind}`;
      // Act
      const res = await h.call('POST', '/email-boxes', { body: box(id, await connection()) });
      // Assess
      expect(res.status).toBe(422);
      expect(res.body.error).toMatchObject({
        code: 'connection_failed',
        field,
        details: { kind },
        message: expect.stringMatching(message),
      });
      expect(res.body.error.fields).toEqual([{ field, message: res.body.error.message }]);
      expect(h.secretCount()).toBe(before);
      expect(await h.d.repos.emailBoxes.get('studio-1', id)).toBeUndefined();
    },
  );

  it("passes on the server's own reply to a rejected login", async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box('reply', { password: WRONG_PASSWORD }) });
    // Assess
    expect(res.body.error.details.serverReply).toMatch(/^-ERR \[AUTH\] /);
  });

  it('saves without logging in when asked with ?verify=false', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes?verify=false', {
      body: box('unverified', { port: await unusedPort() }),
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.verification.tested).toBe(false);
  });

  it('verifies a PUT with the stored password and refuses one the server rejects, keeping the old password', async () => {
    // Act
    const good = await h.call('PUT', '/email-boxes/pop3s', {
      body: { ...box('pop3s', {}), connection: { ...box('pop3s', {}).connection, password: undefined } },
    });
    const bad = await h.call('PUT', '/email-boxes/pop3s', {
      body: box('pop3s', { password: WRONG_PASSWORD }),
    });
    // Assess
    expect(good.status).toBe(200);
    expect(good.body.verification.ok).toBe(true);
    expect(bad.status).toBe(422);
    expect(bad.body.error.field).toBe('connection.password');
    const ref = (await h.d.repos.emailBoxes.require('studio-1', 'pop3s')).connection.passwordRef;
    expect(await h.d.secrets.get(ref!)).toBe(PASSWORD);
  });
});

describe('POST /email-boxes/{id}/test against Dovecot', () => {
  it('answers ok with the stored password', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes/pop3s/test');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, boxId: 'pop3s', ssl: true, messageCount: 2 });
    expect(res.body.message).toMatch(/Logged in/);
  });

  it('reports a box that cannot connect as ok: false with the field to fix', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes/unverified/test');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: false, field: 'connection.port', kind: 'refused' });
  });

  it('reports a stored password the server rejects, quoting the server', async () => {
    // Prepare
    await h.call('POST', '/email-boxes?verify=false', {
      body: box('rejected', { password: WRONG_PASSWORD }),
    });
    // Act
    const res = await h.call('POST', '/email-boxes/rejected/test');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      ok: false,
      field: 'connection.password',
      kind: 'auth',
      message: expect.stringMatching(/user name or password/),
      serverReply: expect.stringMatching(/^-ERR \[AUTH\] /),
    });
  });
});

describe('trusting the mail server certificate is configuration, never the request', () => {
  it('refuses a self-signed certificate that the configuration does not trust', async () => {
    // Prepare
    const strict = await settingsHarness({ env: { POP3_CONNECT_TIMEOUT_MS: '1500' } }, { capture: false });
    // Act
    const res = await strict.call('POST', '/email-boxes', { body: box('untrusted', {}) });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({
      field: 'connection.ssl',
      details: { kind: 'tls' },
      message: expect.stringMatching(/not trusted/),
    });
  });

  it('accepts it with POP3_TLS_INSECURE=true (development only)', async () => {
    // Prepare
    const insecure = await settingsHarness({ env: { POP3_TLS_INSECURE: 'true' } }, { capture: false });
    // Act
    const res = await insecure.call('POST', '/email-boxes', { body: box('insecure', {}) });
    // Assess
    expect(res.status).toBe(201);
  });

  it('refuses a request that tries to switch certificate checks off', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', {
      body: {
        ...box('sneaky', {}),
        connection: { ...box('sneaky', {}).connection, rejectUnauthorized: false },
      },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].field).toBe('connection.rejectUnauthorized');
  });
});

describe('secrets in connection tests', () => {
  it('never shows a password in any response or log line of this file', () => {
    h.assertNeverLeaked([PASSWORD, WRONG_PASSWORD]);
    expect(h.output.lines.join('\n')).toMatch(/connection/);
  });
});
