import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Pop3Probe, Pop3Target } from '#lib/settings/connection-test';
import { tokens } from '#test/support/api';
import { fieldsOf, messageFor, type SettingsHarness, settingsHarness } from './harness.ts';

const PASSWORD = 'pw-Zebra-9137';
const NEW_PASSWORD = 'pw-Quokka-2604';
const EXCHANGE_PASSWORD = 'pw-Exchange-3319';

/** Stands in for the mail server here; the real POP3 paths are in connection-test.test.ts. */
const probeCalls: Pop3Target[] = [];
const probe: Pop3Probe = async (target) => {
  probeCalls.push(target);
  return { ok: true, message: 'Logged in', greeting: '+OK ready', messageCount: 2, ms: 1 };
};

let h: SettingsHarness;

beforeAll(async () => {
  h = await settingsHarness({ probePop3: probe });
  // Prepare: reference data the boxes point at.
  for (const [path, id] of [
    ['departments', 'sales'],
    ['departments', 'studio'],
    ['task-types', 'follow-up'],
    ['task-statuses', 'open'],
    ['email-types', 'inquiry'],
    ['email-statuses', 'unread'],
  ])
    await h.call('POST', `/${path}`, { body: { id, name: id } });
  await h.call('POST', '/users', {
    body: { id: 'ana', firstName: 'Ana', lastName: 'Ruiz', email: 'ana@lumen.test', departmentId: 'sales' },
  });
  await h.call('POST', '/form-letters', {
    body: { id: 'got-it', name: 'Got it', subject: 'Got it', text: 'Thanks' },
  });
});

afterAll(() => h.output.restore());

const box = (over: Record<string, unknown> = {}, connection: Record<string, unknown> = {}) => ({
  description: 'Sales',
  departmentId: 'sales',
  userId: 'ana',
  autoCreateTask: true,
  taskTypeId: 'follow-up',
  taskStatusId: 'open',
  sendAutoReply: true,
  autoReplyFormLetterId: 'got-it',
  autoReplyToAll: true,
  autoReplyFirstEmailOnly: true,
  excludeBefore: '2026-01-01',
  leaveOnServer: true,
  emailTypeId: 'inquiry',
  emailStatusId: 'unread',
  ...over,
  connection: {
    type: 'pop3',
    server: 'pop.gmail.com',
    emailAddress: 'sales@lumen.test',
    userName: 'sales@lumen.test',
    password: PASSWORD,
    ssl: true,
    spa: false,
    ...connection,
  },
});

async function passwordRefOf(id: string): Promise<string> {
  return (await h.d.repos.emailBoxes.require('studio-1', id)).connection.passwordRef!;
}

describe('POST /email-boxes', () => {
  it('creates a box with every field of the seed, tested first, the password only in the secret store', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box({ id: 'sales' }) });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      id: 'sales',
      description: 'Sales',
      departmentId: 'sales',
      userId: 'ana',
      autoCreateTask: true,
      taskTypeId: 'follow-up',
      taskStatusId: 'open',
      sendAutoReply: true,
      autoReplyFormLetterId: 'got-it',
      autoReplyToAll: true,
      autoReplyFirstEmailOnly: true,
      excludeBefore: '2026-01-01',
      leaveOnServer: true,
      emailTypeId: 'inquiry',
      emailStatusId: 'unread',
      connection: {
        type: 'pop3',
        server: 'pop.gmail.com',
        emailAddress: 'sales@lumen.test',
        userName: 'sales@lumen.test',
        ssl: true,
        spa: false,
        port: 995,
        passwordSet: true,
      },
      verification: { tested: true, ok: true, messageCount: 2 },
      version: 1,
    });
    expect(res.text).not.toContain('passwordRef');
    expect(probeCalls.at(-1)).toEqual({
      server: 'pop.gmail.com',
      port: 995,
      ssl: true,
      userName: 'sales@lumen.test',
      password: PASSWORD,
    });
    const ref = await passwordRefOf('sales');
    expect(ref).toMatch(/^local:secret:studio-mail\/studio-1\/boxes\/sales\/pop3-[0-9a-f]{8}$/);
    expect(await h.d.secrets.get(ref)).toBe(PASSWORD);
  });

  it('defaults the port to 110 without SSL, and makes an id when none is given', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes?verify=false', {
      body: box({ description: 'Plain' }, { ssl: false }),
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.connection.port).toBe(110);
    expect(res.body.verification).toEqual({ tested: false, note: expect.stringMatching(/verify=false/) });
  });

  it('refuses an id that is taken with 409 before storing a password', async () => {
    // Prepare
    const before = h.secretCount();
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box({ id: 'sales' }) });
    // Assess
    expect(res.status).toBe(409);
    expect(h.secretCount()).toBe(before);
  });

  it('schedules the new secret for deletion when the box cannot be written', async () => {
    // Prepare
    const before = h.secretCount();
    const create = vi.spyOn(h.d.repos.emailBoxes, 'create').mockRejectedValueOnce(new Error('throttled'));
    const retire = vi.spyOn(h.d.secrets, 'scheduleDeletion');
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box({ id: 'doomed' }) });
    // Assess
    expect(res.status).toBe(500);
    expect(retire).toHaveBeenCalledTimes(1);
    expect(retire.mock.calls[0]?.[0]).toMatch(/boxes\/doomed\/pop3-/);
    expect(h.secretCount()).toBe(before);
    expect((await h.call('GET', '/email-boxes/doomed')).status).toBe(404);
    create.mockRestore();
    retire.mockRestore();
  });

  it('refuses a non-admin with 403 and stores nothing', async () => {
    // Prepare
    const before = h.secretCount();
    // Act
    const res = await h.call('POST', '/email-boxes', { token: tokens.user, body: box({ id: 'mine' }) });
    // Assess
    expect(res.status).toBe(403);
    expect(h.secretCount()).toBe(before);
  });
});

describe('email box validation', () => {
  it.each([
    ['description', box({ description: '' }), /must not be empty/],
    ['departmentId', box({ departmentId: 'nope' }), /names no department that exists \("nope"\)/],
    ['userId', box({ userId: 'nobody' }), /names no user that exists/],
    ['userId', box({ departmentId: 'studio' }), /not in department "studio"/],
    ['taskTypeId', box({ taskTypeId: undefined }), /required when autoCreateTask is on/],
    ['taskStatusId', box({ taskStatusId: undefined }), /required when autoCreateTask is on/],
    ['taskStatusId', box({ taskStatusId: 'closed' }), /names no task status that exists/],
    ['emailTypeId', box({ emailTypeId: 'spam' }), /names no email type that exists/],
    ['emailStatusId', box({ emailStatusId: 'gone' }), /names no email status that exists/],
    ['autoReplyFormLetterId', box({ autoReplyFormLetterId: undefined }), /required when sendAutoReply is on/],
    ['autoReplyFormLetterId', box({ autoReplyFormLetterId: 'nope' }), /names no form letter that exists/],
    [
      'autoReplyToAll',
      box({ sendAutoReply: false, autoReplyFormLetterId: undefined }),
      /only applies when sendAutoReply/,
    ],
    ['excludeBefore', box({ excludeBefore: '01/31/2026' }), /YYYY-MM-DD/],
    ['excludeBefore', box({ excludeBefore: '2026-02-30' }), /YYYY-MM-DD/],
    ['connection.port', box({}, { port: 0 }), /whole number from 1 to 65535.*995 with SSL/],
    ['connection.port', box({}, { port: 'pop' }), /whole number from 1 to 65535/],
    ['connection.ssl', box({}, { ssl: 'yes' }), /true or false/],
    ['connection.type', box({}, { type: 'smtp' }), /"pop3", "exchange", "imap"/],
    [
      'connection.server',
      box({}, { server: 'pop3://pop.gmail.com:995' }),
      /server name such as pop.gmail.com/,
    ],
    ['connection.emailAddress', box({}, { emailAddress: 'sales' }), /email address such as/],
    ['connection.userName', box({}, { userName: '' }), /log-on name/],
    ['connection.domain', box({}, { domain: 'LUMEN' }), /Exchange only; leave it out for a POP3 box/],
    ['connection.domain', box({}, { type: 'exchange' }), /required for Exchange/],
    ['connection.password', box({}, { password: undefined }), /required for a new box/],
    ['connection.password', box({}, { password: '' }), /must not be empty/],
    ['connection.pasword', box({}, { pasword: 'x' }), /Did you mean "password"/],
    ['schedule.startTime', box({ schedule: { enabled: true } }), /is required/],
  ])('names %s and says what to do', async (field, body, message) => {
    // Prepare
    const before = h.secretCount();
    const calls = probeCalls.length;
    // Act
    const res = await h.call('POST', '/email-boxes', { body });
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toContain(field);
    expect(messageFor(res, field)).toMatch(message);
    expect(h.secretCount()).toBe(before);
    expect(probeCalls.length).toBe(calls);
  });

  it('lists every problem at once', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', {
      body: box({ taskTypeId: undefined, autoReplyFormLetterId: 'nope', departmentId: 'gone' }),
    });
    // Assess
    expect(fieldsOf(res).sort()).toEqual(['autoReplyFormLetterId', 'departmentId', 'taskTypeId']);
  });

  it('answers ?verify=maybe with a 400 naming verify', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes?verify=maybe', { body: box() });
    // Assess
    expect(messageFor(res, 'verify')).toMatch(/true or false/);
  });
});

describe('PUT /email-boxes/{id}', () => {
  it('keeps the stored password when it is left out, and tests with it', async () => {
    // Prepare
    const ref = await passwordRefOf('sales');
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', {
      body: box({ description: 'Sales & bookings' }, { password: undefined }),
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      description: 'Sales & bookings',
      version: 2,
      connection: { passwordSet: true },
    });
    expect(probeCalls.at(-1)?.password).toBe(PASSWORD);
    expect(await passwordRefOf('sales')).toBe(ref);
    expect(await h.d.secrets.get(ref)).toBe(PASSWORD);
  });

  it('stores a changed password as a new secret and retires the old one (never written over)', async () => {
    // Prepare
    const ref = await passwordRefOf('sales');
    const update = vi.spyOn(h.d.secrets, 'update');
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', { body: box({}, { password: NEW_PASSWORD }) });
    // Assess
    expect(res.status).toBe(200);
    expect(update).not.toHaveBeenCalled();
    update.mockRestore();
    expect(probeCalls.at(-1)?.password).toBe(NEW_PASSWORD);
    const after = await passwordRefOf('sales');
    expect(after).not.toBe(ref);
    expect(await h.d.secrets.get(after)).toBe(NEW_PASSWORD);
    await expect(h.d.secrets.get(ref)).rejects.toThrow();
  });

  it('keeps the schedule that the schedule routes own', async () => {
    // Prepare
    const stored = await h.d.repos.emailBoxes.require('studio-1', 'sales');
    const schedule = {
      enabled: true,
      startTime: '08:00',
      endTime: '18:00',
      intervalMinutes: 20,
      weekdays: ['MON' as const],
      timeZone: 'Europe/Madrid',
      notifyOn: 'failures' as const,
    };
    const { version: _v, createdAt: _c, updatedAt: _u, ...record } = stored;
    await h.d.repos.emailBoxes.replace('studio-1', 'sales', { ...record, schedule });
    // Act
    const res = await h.call('PUT', '/email-boxes/sales?verify=false', {
      body: box({}, { password: undefined }),
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.schedule).toEqual(schedule);
  });

  it('refuses a stale version with 409 and leaves the password as it was', async () => {
    // Act
    const res = await h.call('PUT', '/email-boxes/sales?verify=false', {
      body: box({ version: 1 }, { password: 'pw-Stale-0001' }),
    });
    // Assess
    expect(res.status).toBe(409);
    expect(await h.d.secrets.get(await passwordRefOf('sales'))).toBe(NEW_PASSWORD);
  });

  it('answers 404 for a box that does not exist, and 400 for a body id that differs', async () => {
    // Act
    const missing = await h.call('PUT', '/email-boxes/nope', { body: box() });
    const other = await h.call('PUT', '/email-boxes/sales', { body: box({ id: 'other' }) });
    // Assess
    expect(missing.status).toBe(404);
    expect(messageFor(other, 'id')).toMatch(/must match the id in the path/);
  });

  it('refuses a non-admin with 403', async () => {
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', { token: tokens.user, body: box() });
    // Assess
    expect(res.status).toBe(403);
  });
});

describe('reading email boxes', () => {
  it('lists and reads boxes for any user of the studio, without passwords', async () => {
    // Act
    const list = await h.call('GET', '/email-boxes', { token: tokens.user });
    const one = await h.call('GET', '/email-boxes/sales', { token: tokens.user });
    // Assess
    expect(list.status).toBe(200);
    expect(list.body.items.map((b: { id: string }) => b.id)).toContain('sales');
    expect(one.body.connection.passwordSet).toBe(true);
    expect(`${list.text}${one.text}`).not.toMatch(/passwordRef|local:secret/);
  });

  it('answers 404 to another studio', async () => {
    // Act
    const res = await h.call('GET', '/email-boxes/sales', { token: tokens.otherStudioAdmin });
    // Assess
    expect(res.status).toBe(404);
  });
});

describe('Exchange boxes', () => {
  it('stores an on-premises Exchange box with its domain after an SPA log-in to its POP3 endpoint', async () => {
    // Prepare
    const calls = probeCalls.length;
    // Act
    const res = await h.call('POST', '/email-boxes', {
      body: box(
        { id: 'exchange', description: 'Exchange' },
        {
          type: 'exchange',
          domain: 'LUMEN',
          server: 'mail.lumen.test',
          spa: true,
          password: EXCHANGE_PASSWORD,
        },
      ),
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.connection).toMatchObject({
      type: 'exchange',
      domain: 'LUMEN',
      spa: true,
      passwordSet: true,
    });
    expect(res.body.verification).toMatchObject({ tested: true, ok: true });
    expect(probeCalls.length).toBe(calls + 1);
    expect(probeCalls.at(-1)).toMatchObject({
      server: 'mail.lumen.test',
      authentication: 'ntlm',
      domain: 'LUMEN',
      password: EXCHANGE_PASSWORD,
    });
  });

  it('answers the on-demand test with the SPA log-in to its POP3 endpoint', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes/exchange/test');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, messageCount: 2 });
    expect(probeCalls.at(-1)).toMatchObject({ authentication: 'ntlm', domain: 'LUMEN' });
  });
});

describe('POST /email-boxes/{id}/test', () => {
  it('tests with the stored password and reports the outcome', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes/sales/test');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      ok: true,
      boxId: 'sales',
      server: 'pop.gmail.com',
      port: 995,
      messageCount: 2,
    });
    expect(probeCalls.at(-1)?.password).toBe(NEW_PASSWORD);
  });

  it('refuses a non-admin (403) and answers 404 for an unknown box', async () => {
    // Act
    const forbidden = await h.call('POST', '/email-boxes/sales/test', { token: tokens.user });
    const missing = await h.call('POST', '/email-boxes/nope/test');
    // Assess
    expect(forbidden.status).toBe(403);
    expect(missing.status).toBe(404);
  });
});

describe('GET /email-boxes/{id}/schedule', () => {
  it('answers a box without a schedule with nothing stored, nothing deployed and no drift', async () => {
    // Prepare
    await h.call('POST', '/email-boxes?verify=false', {
      body: box({ id: 'no-schedule', description: 'Plain' }),
    });
    // Act
    const res = await h.call('GET', '/email-boxes/no-schedule/schedule');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ stored: null, deployed: null, drift: [] });
    expect((await h.call('GET', '/email-boxes/nope/schedule')).status).toBe(404);
  });
});

describe('DELETE /email-boxes/{id}', () => {
  it('deletes the box and schedules its password for deletion', async () => {
    // Prepare
    const ref = await passwordRefOf('sales');
    // Act
    const res = await h.call('DELETE', '/email-boxes/sales');
    // Assess
    expect(res.status).toBe(204);
    await expect(h.d.secrets.get(ref)).rejects.toThrow();
    expect((await h.call('GET', '/email-boxes/sales')).status).toBe(404);
    expect((await h.call('DELETE', '/email-boxes/sales')).status).toBe(404);
  });

  it('refuses a non-admin with 403', async () => {
    // Act
    const res = await h.call('DELETE', '/email-boxes/exchange', { token: tokens.user });
    // Assess
    expect(res.status).toBe(403);
  });
});

describe('secrets in email boxes', () => {
  it('never shows a password in any response or log line of this file', () => {
    h.assertNeverLeaked([PASSWORD, NEW_PASSWORD, EXCHANGE_PASSWORD, 'pw-Stale-0001']);
  });
});

describe('a new password on PUT', () => {
  it('is a new secret created with the studio tags IAM requires of every new secret', async () => {
    // Prepare
    await h.call('POST', '/email-boxes', { body: box({ id: 'retagged' }) });
    const create = vi.spyOn(h.d.secrets, 'create');
    // Act
    const res = await h.call('PUT', '/email-boxes/retagged', { body: box({}, { password: NEW_PASSWORD }) });
    // Assess
    expect(res.status).toBe(200);
    expect(create).toHaveBeenCalledTimes(1);
    expect(create.mock.calls[0]?.[2]).toEqual({
      studioId: 'studio-1',
      credential: 'email-box',
      boxId: 'retagged',
    });
    create.mockRestore();
  });
});
