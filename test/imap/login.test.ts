/**
 * IMAP log-ins against Dovecot (password, SPA = NTLM with a Windows domain) and the settings API
 * for IMAP boxes: validation naming the field, the log-in on save, and POST /email-boxes/{id}/test
 * naming the field to fix (wrong password, folder not found, NTLM domain wrong).
 * XOAUTH2 over IMAP is in test/oauth/xoauth2.test.ts, next to the sign-in it needs.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImapSession, type ImapSessionOptions } from '#lib/imap/client';
import { diagnoseImap } from '#lib/imap/diagnose';
import { ImapError } from '#lib/imap/errors';
import { SaslCode } from '#lib/pop3/client';
import { type SettingsHarness, settingsHarness } from '#test/settings/harness';
import { type Dovecot, startDovecot, uniqueUser } from '#test/support/dovecot';

const DOMAIN = 'CORP';
const PASSWORD = 'pw-Imap-7310';
const WRONG_PASSWORD = 'pw-Imap-0000';
const LIMITS = { connectTimeoutMs: 5_000, timeoutMs: 10_000 };

let spa: Dovecot;
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
  user = uniqueUser('imapspa');
  await spa.addUser(user, PASSWORD);
  await plain.addUser(user, PASSWORD);
  await spa.deliver(user, Buffer.from('From: a@example.com\r\nSubject: one\r\n\r\nHi\r\n'));
  const caFile = join(spa.dir, 'ca-for-imap-tests.pem');
  await writeFile(caFile, spa.caCertPem);
  h = await settingsHarness({
    env: { POP3_CA_FILE: caFile, POP3_CONNECT_TIMEOUT_MS: '3000', POP3_TIMEOUT_MS: '5000' },
  });
}, 60_000);

afterAll(async () => {
  h?.output.restore();
  await Promise.all([spa?.stop(), plain?.stop()]);
});

async function logIn(login: ImapSessionOptions['login'], server = spa): Promise<number | ImapError> {
  try {
    const session = await ImapSession.connect({
      host: server.host,
      port: server.imapsPort,
      secure: true,
      ca: server.caCertPem,
      login,
      ...LIMITS,
    });
    const count = (await session.uidl()).length;
    await session.quit();
    return count;
  } catch (error) {
    if (error instanceof ImapError) return error;
    throw error;
  }
}

const ntlm = (domain: string, userName: string, password: string) =>
  ({ method: 'ntlm', credentials: { domain, userName, password } }) as const;
const fieldOf = (error: ImapError) =>
  diagnoseImap(
    error,
    { server: spa.host, port: spa.imapsPort, ssl: true, domain: DOMAIN, authentication: 'ntlm' },
    LIMITS,
  ).field;

describe('IMAP log-in against Dovecot', () => {
  it('logs in with the password (AUTHENTICATE PLAIN) and refuses a wrong one, naming the password', async () => {
    // Act
    const good = await logIn({ method: 'password', userName: user, password: PASSWORD });
    const bad = await logIn({ method: 'password', userName: user, password: WRONG_PASSWORD });
    // Assess
    expect(good).toBe(1);
    expect(bad).toMatchObject({ kind: 'auth' });
    expect(diagnoseImap(bad as ImapError, { server: spa.host, port: 993, ssl: true }, LIMITS).field).toBe(
      'connection.password',
    );
  });

  it('logs in on the plain port after STARTTLS, checking the certificate', async () => {
    // Act
    const session = await ImapSession.connect({
      host: spa.host,
      port: spa.imapPort,
      secure: false,
      ca: spa.caCertPem,
      login: { method: 'password', userName: user, password: PASSWORD },
      ...LIMITS,
    });
    const listed = await session.uidl();
    await session.quit();
    const untrusted = await ImapSession.connect({
      host: spa.host,
      port: spa.imapPort,
      secure: false,
      login: { method: 'password', userName: user, password: PASSWORD },
      ...LIMITS,
    }).catch((e: unknown) => e);
    // Assess
    expect(listed).toHaveLength(1);
    expect(untrusted).toMatchObject({ kind: 'tls' });
  });

  it('logs in with SPA (AUTHENTICATE NTLM): the right domain in any case, its DNS name, or DOMAIN\\user', async () => {
    // Act
    const results = [
      await logIn(ntlm(DOMAIN, user, PASSWORD)),
      await logIn(ntlm('corp', user, PASSWORD)),
      await logIn(ntlm('corp.test', user, PASSWORD)),
      await logIn(ntlm('', `${DOMAIN}\\${user}`, PASSWORD)),
    ];
    // Assess: the last splits DOMAIN\user only in connect.ts (openMailbox); ImapSession takes the parts.
    expect(results.slice(0, 3)).toEqual([1, 1, 1]);
  });

  it('refuses SPA with a wrong domain and names connection.domain', async () => {
    // Act
    const error = await logIn(ntlm('WRONG', user, PASSWORD));
    // Assess
    expect(error).toBeInstanceOf(ImapError);
    expect(error).toMatchObject({ kind: 'auth', code: SaslCode.NTLM_DOMAIN });
    expect(fieldOf(error as ImapError)).toBe('connection.domain');
  });

  it.each([
    ['a wrong password', 'USER', WRONG_PASSWORD],
    ['an unknown user name', 'nobody-here', PASSWORD],
  ])(
    'refuses SPA with %s and names the password field, saying any of the three may be wrong',
    async (_c, name, pw) => {
      // Act
      const error = await logIn(ntlm(DOMAIN, name === 'USER' ? user : name, pw));
      // Assess
      expect(error).toMatchObject({ kind: 'auth', code: undefined, commandLine: 'AUTH NTLM' });
      const d = diagnoseImap(
        error as ImapError,
        { server: spa.host, port: 993, ssl: true, domain: DOMAIN },
        LIMITS,
      );
      expect(d.field).toBe('connection.password');
      expect(d.advice).toMatch(/Domain, the user name .* and the password/);
    },
  );

  it('names the SPA switch when the server offers no NTLM', async () => {
    // Act
    const error = await logIn(ntlm(DOMAIN, user, PASSWORD), plain);
    // Assess
    expect(error).toMatchObject({ kind: 'auth', code: SaslCode.UNAVAILABLE });
    expect(fieldOf(error as ImapError)).toBe('connection.spa');
  });
});

describe('the settings API with IMAP boxes', () => {
  const box = (id: string, connection: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    id,
    description: `IMAP box ${id}`,
    ...extra,
    connection: {
      type: 'imap',
      server: spa.host,
      port: spa.imapsPort,
      ssl: true,
      emailAddress: 'sales@lumen.test',
      userName: user,
      password: PASSWORD,
      ...connection,
    },
  });
  const fields = (res: { body: { error: { fields?: { field: string }[]; field?: string } } }) =>
    res.body.error.fields?.map((f) => f.field) ?? [res.body.error.field];

  it('saves an IMAP box whose log-in works, with port 993 by default and afterImport from leaveOnServer', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box('imap-ok', {}) });
    const ssl = await h.call('POST', '/email-boxes?verify=false', {
      body: box('imap-993', { port: undefined }),
    });
    const noSsl = await h.call('POST', '/email-boxes?verify=false', {
      body: box('imap-plain', { port: undefined, ssl: false }, { leaveOnServer: false }),
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.verification).toMatchObject({ tested: true, ok: true, messageCount: 1 });
    expect(res.body.connection).toMatchObject({ type: 'imap', afterImport: 'keep' });
    expect(ssl.body.connection).toMatchObject({ port: 993 });
    expect(noSsl.body.connection).toMatchObject({ port: 143, afterImport: 'delete' });
    expect(noSsl.body.leaveOnServer).toBe(false);
  });

  it('saves an SPA IMAP box, and answers 422 naming the field for a wrong domain, password or folder', async () => {
    // Act
    const good = await h.call('POST', '/email-boxes', {
      body: box('imap-spa', { spa: true, domain: DOMAIN }),
    });
    const domain = await h.call('POST', '/email-boxes', {
      body: box('imap-spa-d', { spa: true, domain: 'WRONG' }),
    });
    const password = await h.call('POST', '/email-boxes', {
      body: box('imap-pw', { password: WRONG_PASSWORD }),
    });
    const folder = await h.call('POST', '/email-boxes', { body: box('imap-folder', { folder: 'Clients' }) });
    // Assess
    expect(good.status).toBe(201);
    expect(good.body.connection).toMatchObject({ authentication: 'ntlm', domain: DOMAIN, spa: true });
    expect([domain.status, password.status, folder.status]).toEqual([422, 422, 422]);
    expect(domain.body.error.field).toBe('connection.domain');
    expect(password.body.error.field).toBe('connection.password');
    expect(folder.body.error.field).toBe('connection.folder');
    expect(folder.body.error.message).toMatch(/"Clients" does not exist/);
  });

  it('tests saved IMAP boxes (POST /email-boxes/{id}/test), naming the field to fix', async () => {
    // Prepare
    const save = (id: string, c: Record<string, unknown>, extra?: Record<string, unknown>) =>
      h.call('POST', '/email-boxes?verify=false', { body: box(id, c, extra) });
    await save('t-ok', {});
    await save('t-pw', { password: WRONG_PASSWORD });
    await save('t-folder', { folder: 'Nope' });
    await save('t-move', { afterImport: 'move', moveToFolder: 'Imported' }, { leaveOnServer: false });
    await save('t-domain', { spa: true, domain: 'WRONG' });
    // Act
    const results = await Promise.all(
      ['t-ok', 't-pw', 't-folder', 't-move', 't-domain'].map((id) =>
        h.call('POST', `/email-boxes/${id}/test`),
      ),
    );
    // Assess
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(results[0]!.body).toMatchObject({ ok: true, messageCount: 1 });
    expect(results.slice(1).map((r) => [r.body.ok, r.body.field])).toEqual([
      [false, 'connection.password'],
      [false, 'connection.folder'],
      [false, 'connection.moveToFolder'],
      [false, 'connection.domain'],
    ]);
  });

  it('refuses IMAP fields that contradict each other or the box type, naming each', async () => {
    // Act
    const keepButDelete = await h.call('POST', '/email-boxes?verify=false', {
      body: box('v1', { afterImport: 'mark-read' }, { leaveOnServer: false }),
    });
    const moveNowhere = await h.call('POST', '/email-boxes?verify=false', {
      body: box('v2', { afterImport: 'move' }),
    });
    const moveStray = await h.call('POST', '/email-boxes?verify=false', {
      body: box('v3', { moveToFolder: 'X' }),
    });
    const onPop3 = await h.call('POST', '/email-boxes?verify=false', {
      body: box('v4', { type: 'pop3', folder: 'INBOX', afterImport: 'delete' }),
    });
    // Said both ways: an explicit leaveOnServer true never lets mail be deleted or moved away.
    const leaveButDelete = await h.call('POST', '/email-boxes?verify=false', {
      body: box('v6', { afterImport: 'delete' }, { leaveOnServer: true }),
    });
    // Assess
    expect(fields(keepButDelete)).toEqual(['connection.afterImport']);
    expect(fields(moveNowhere)).toEqual(['connection.moveToFolder']);
    expect(fields(moveStray)).toEqual(['connection.moveToFolder']);
    expect(fields(onPop3)).toEqual(['connection.folder', 'connection.afterImport']);
    expect(fields(leaveButDelete)).toEqual(['connection.afterImport']);
    expect([keepButDelete, moveNowhere, moveStray, onPop3, leaveButDelete].map((r) => r.status)).toEqual([
      400, 400, 400, 400, 400,
    ]);
  });

  it('works the other of afterImport and leaveOnServer out again when a PATCH names only one', async () => {
    // Prepare
    const saved = await h.call('POST', '/email-boxes?verify=false', { body: box('v7', {}) });
    const patch = (body: unknown, etag: string) =>
      h.call('PATCH', '/email-boxes/v7?verify=false', {
        body,
        headers: { 'content-type': 'application/merge-patch+json', 'if-match': etag },
      });
    // Act
    const toDelete = await patch({ connection: { afterImport: 'delete' } }, `"${saved.body.version}"`);
    const backToLeave = await patch({ leaveOnServer: true }, `"${toDelete.body.version}"`);
    // Assess
    expect(saved.body).toMatchObject({ leaveOnServer: true, connection: { afterImport: 'keep' } });
    expect(toDelete.status).toBe(200);
    expect(toDelete.body).toMatchObject({ leaveOnServer: false, connection: { afterImport: 'delete' } });
    expect(backToLeave.status).toBe(200);
    expect(backToLeave.body).toMatchObject({ leaveOnServer: true, connection: { afterImport: 'keep' } });
  });

  it('stores leaveOnServer false for move and delete, whatever the default said', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes?verify=false', {
      body: box('v5', { afterImport: 'move', moveToFolder: 'Imported' }),
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.leaveOnServer).toBe(false);
    expect(res.body.connection).toMatchObject({ afterImport: 'move', moveToFolder: 'Imported' });
  });

  it('never shows the password in any response or log line', () => {
    // Assess
    h.assertNeverLeaked([PASSWORD, WRONG_PASSWORD]);
  });
});
