import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pop3Probe, Pop3Target } from '#lib/settings/connection-test';
import { tokens } from '#test/support/api';
import { fieldsOf, messageFor, type SettingsHarness, settingsHarness } from './harness.ts';

const SMTP_PASSWORD = 'pw-Marten-4410';
const NEW_SMTP_PASSWORD = 'pw-Osprey-7702';
const BOX_PASSWORD = 'pw-Heron-5521';
const sid = 'studio-1';

const probeCalls: Pop3Target[] = [];
const probe: Pop3Probe = async (target) => {
  probeCalls.push(target);
  return { ok: true, message: 'Logged in', greeting: '+OK ready', messageCount: 0, ms: 1 };
};

let h: SettingsHarness;

/** A PATCH as a client sends it: merge-patch content type and the ETag it read. */
const patch = (path: string, body: unknown, etag: string | undefined, token?: string) =>
  h.call('PATCH', path, {
    body,
    ...(token ? { token } : {}),
    headers: { 'content-type': 'application/merge-patch+json', ...(etag ? { 'if-match': etag } : {}) },
  });

beforeAll(async () => {
  h = await settingsHarness({ probePop3: probe });
});

afterAll(() => h.output.restore());

describe('PATCH /settings/company/email', () => {
  beforeAll(async () => {
    await h.call('PUT', '/settings/company/email', {
      body: {
        studioName: 'Lumen Studio',
        displayName: 'Lumen Studio',
        emailAddress: 'hello@lumen.test',
        timeZone: 'Europe/Madrid',
        phone: '+34 910 000 000',
        transport: {
          method: 'smtp',
          server: 'smtp.lumen.test',
          port: 587,
          security: 'starttls',
          logonName: 'hello@lumen.test',
          password: SMTP_PASSWORD,
        },
      },
    });
  });

  it('changes the named field and keeps the ones left out, the time zone and the stored password included', async () => {
    // Prepare
    const read = await h.call('GET', '/settings/company/email');
    const storedBefore = await h.d.repos.companyEmail.require(sid, 'company');
    // Act
    const res = await patch('/settings/company/email', { displayName: 'Lumen' }, read.headers.etag);
    // Assess
    expect(read.headers.etag).toBe(`"${read.body.version}"`);
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe(`"${read.body.version + 1}"`);
    expect(res.body).toMatchObject({
      displayName: 'Lumen',
      studioName: 'Lumen Studio',
      timeZone: 'Europe/Madrid',
      transport: { method: 'smtp', server: 'smtp.lumen.test', passwordSet: true },
    });
    const stored = await h.d.repos.companyEmail.require(sid, 'company');
    expect(stored.transport).toEqual(storedBefore.transport);
    const ref = (stored.transport as { passwordRef: string }).passwordRef;
    expect(await h.d.secrets.get(ref)).toBe(SMTP_PASSWORD);
  });

  it('merges a nested transport change, asks for the password again when the port changes, and changes the password only when the patch names it', async () => {
    // Prepare
    const read = await h.call('GET', '/settings/company/email');
    // Act
    const redirect = await patch(
      '/settings/company/email',
      { transport: { port: 465, security: 'ssl' } },
      read.headers.etag,
    );
    const port = await patch(
      '/settings/company/email',
      { transport: { port: 465, security: 'ssl', password: SMTP_PASSWORD } },
      read.headers.etag,
    );
    const password = await patch(
      '/settings/company/email',
      { transport: { password: NEW_SMTP_PASSWORD } },
      port.headers.etag,
    );
    // Assess
    // The stored password is never sent to a changed server unless it is given again (issue 12).
    expect(redirect.status).toBe(400);
    expect(JSON.stringify(redirect.body.error)).toContain('transport.password');
    expect(port.status).toBe(200);
    expect(port.body.transport).toMatchObject({ port: 465, security: 'ssl', logonName: 'hello@lumen.test' });
    expect(password.status).toBe(200);
    const stored = await h.d.repos.companyEmail.require(sid, 'company');
    const ref = (stored.transport as { passwordRef: string }).passwordRef;
    expect(await h.d.secrets.get(ref)).toBe(NEW_SMTP_PASSWORD);
  });

  it('removes an optional field named with null', async () => {
    // Prepare
    const read = await h.call('GET', '/settings/company/email');
    // Act
    const res = await patch('/settings/company/email', { phone: null }, read.headers.etag);
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.phone).toBeUndefined();
    expect((await h.d.repos.companyEmail.require(sid, 'company')).phone).toBeUndefined();
  });

  it('refuses a stale If-Match with 412 and changes nothing', async () => {
    // Prepare
    const read = await h.call('GET', '/settings/company/email');
    // Act
    const res = await patch(
      '/settings/company/email',
      { displayName: 'Stale' },
      `"${read.body.version - 1}"`,
    );
    // Assess
    expect(res.status).toBe(412);
    expect(res.body.error.code).toBe('precondition_failed');
    expect(res.body.error.message).toContain(`version ${read.body.version} now`);
    expect((await h.call('GET', '/settings/company/email')).body).toEqual(read.body);
  });

  it('refuses a patch that would make the settings invalid with 400 naming each field, and changes nothing', async () => {
    // Prepare
    const read = await h.call('GET', '/settings/company/email');
    // Act
    const topLevel = await patch(
      '/settings/company/email',
      { studioName: null, emailAddress: 'not-an-address' },
      read.headers.etag,
    );
    const nested = await patch(
      '/settings/company/email',
      { transport: { port: 0, security: 'tls13' } },
      read.headers.etag,
    );
    // Assess
    expect(topLevel.status).toBe(400);
    expect(fieldsOf(topLevel).sort()).toEqual(['emailAddress', 'studioName']);
    expect(nested.status).toBe(400);
    expect(fieldsOf(nested).sort()).toEqual(['transport.port', 'transport.security']);
    expect((await h.call('GET', '/settings/company/email')).body).toEqual(read.body);
  });

  it('answers 428 without If-Match, 415 for another content type and 400 for a version in the body', async () => {
    // Prepare
    const read = await h.call('GET', '/settings/company/email');
    // Act
    const noIfMatch = await patch('/settings/company/email', { displayName: 'X' }, undefined);
    const json = await h.call('PATCH', '/settings/company/email', {
      body: { displayName: 'X' },
      headers: { 'if-match': read.headers.etag as string },
    });
    const version = await patch('/settings/company/email', { version: 1 }, read.headers.etag);
    // Assess
    expect(noIfMatch.status).toBe(428);
    expect(noIfMatch.body.error.message).toContain('If-Match');
    expect(json.status).toBe(415);
    expect(json.body.error.message).toContain('application/merge-patch+json');
    expect(version.status).toBe(400);
    expect(fieldsOf(version)).toEqual(['version']);
    expect((await h.call('GET', '/settings/company/email')).body).toEqual(read.body);
  });

  it('switches to SES when the patch removes the SMTP members, as the README shows', async () => {
    // Prepare
    const read = await h.call('GET', '/settings/company/email');
    const switchToSes = { method: 'ses', server: null, port: null, security: null, logonName: null };
    // Act
    const merged = await patch(
      '/settings/company/email',
      { transport: { method: 'ses' } },
      read.headers.etag,
    );
    const res = await patch('/settings/company/email', { transport: switchToSes }, read.headers.etag);
    // Assess
    expect(merged.status).toBe(400);
    expect(fieldsOf(merged)).toContain('transport.server');
    expect(res.status).toBe(200);
    expect(res.body.transport).toEqual({ method: 'ses' });
    expect(res.body.timeZone).toBe('Europe/Madrid');
  });

  it('lets only an admin patch the studio settings', async () => {
    // Prepare
    const read = await h.call('GET', '/settings/company/email');
    // Act
    const res = await patch('/settings/company/email', { displayName: 'X' }, read.headers.etag, tokens.user);
    // Assess
    expect(res.status).toBe(403);
  });
});

describe('PATCH /users/{id}/email-settings', () => {
  it('lets a user change one override and drop another, keeping the rest', async () => {
    // Prepare
    await h.call('PUT', '/users/me/email-settings', {
      token: tokens.user,
      body: { displayName: 'Ana Ruiz', emailAddress: 'ana@lumen.test', replyTo: 'bookings@lumen.test' },
    });
    const read = await h.call('GET', '/users/me/email-settings', { token: tokens.user });
    // Act
    const res = await patch(
      '/users/me/email-settings',
      { displayName: 'Ana', replyTo: null },
      read.headers.etag,
      tokens.user,
    );
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ displayName: 'Ana', emailAddress: 'ana@lumen.test' });
    expect(res.body.replyTo).toBeUndefined();
  });
});

describe('PATCH /email-boxes/{id}', () => {
  beforeAll(async () => {
    await h.call('POST', '/email-boxes?verify=false', {
      body: {
        id: 'sales',
        description: 'Sales',
        excludeBefore: '2026-01-01',
        connection: {
          server: 'pop.lumen.test',
          emailAddress: 'sales@lumen.test',
          userName: 'sales@lumen.test',
          password: BOX_PASSWORD,
        },
        schedule: {
          startTime: '08:00',
          endTime: '17:00',
          intervalMinutes: 20,
          weekdays: ['MON', 'WED'],
          timeZone: 'Europe/Madrid',
        },
      },
    });
  });

  it('merges connection and schedule changes, re-syncs the schedule and logs in with the password given again for the new port', async () => {
    // Prepare
    const read = await h.call('GET', '/email-boxes/sales');
    probeCalls.length = 0;
    // Act
    const redirect = await patch('/email-boxes/sales', { connection: { port: 1995 } }, read.headers.etag);
    const res = await patch(
      '/email-boxes/sales',
      { connection: { port: 1995, password: BOX_PASSWORD }, schedule: { intervalMinutes: 30 } },
      read.headers.etag,
    );
    // Assess
    expect(redirect.status).toBe(400);
    expect(JSON.stringify(redirect.body.error)).toContain('connection.password');
    expect(res.status).toBe(200);
    expect(res.body.connection).toMatchObject({ server: 'pop.lumen.test', port: 1995, passwordSet: true });
    expect(res.body.schedule).toMatchObject({
      intervalMinutes: 30,
      startTime: '08:00',
      weekdays: ['MON', 'WED'],
    });
    expect(res.body.excludeBefore).toBe('2026-01-01');
    expect(probeCalls).toEqual([expect.objectContaining({ port: 1995, password: BOX_PASSWORD })]);
    const [definition] = h.d.scheduler.list();
    expect(definition?.expression).toContain('0/30');
  });

  it('removes the schedule and its Scheduler schedule with schedule: null', async () => {
    // Prepare
    const read = await h.call('GET', '/email-boxes/sales');
    // Act
    const res = await patch('/email-boxes/sales?verify=false', { schedule: null }, read.headers.etag);
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.schedule).toBeUndefined();
    expect(h.d.scheduler.list()).toEqual([]);
  });

  it('refuses a patch that breaks a rule between fields (400) and changes nothing', async () => {
    // Prepare
    const read = await h.call('GET', '/email-boxes/sales');
    // Act
    const res = await patch('/email-boxes/sales?verify=false', { autoCreateTask: true }, read.headers.etag);
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toEqual(['taskTypeId', 'taskStatusId']);
    expect((await h.call('GET', '/email-boxes/sales')).body).toEqual(read.body);
  });
});

describe('PATCH on reference data', () => {
  it("changes a client's phone, keeping its addresses, and refuses a stale If-Match", async () => {
    // Prepare
    const created = await h.call('POST', '/clients', {
      body: {
        id: 'jose',
        firstName: 'José',
        lastName: 'Núñez',
        phone: '1',
        emails: [{ address: 'jose@example.com' }],
      },
    });
    // Act
    const res = await patch('/clients/jose', { phone: '2' }, created.body.version.toString());
    const stale = await patch('/clients/jose', { phone: '3' }, `"${created.body.version}"`);
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ phone: '2', emails: [{ address: 'jose@example.com', primary: true }] });
    expect(stale.status).toBe(412);
    expect((await h.call('GET', '/clients/jose')).body.phone).toBe('2');
  });

  it("re-derives a form letter's merge fields and refuses an unknown one without saving", async () => {
    // Prepare
    const created = await h.call('POST', '/form-letters', {
      body: { id: 'thanks', name: 'Thanks', subject: 'Thanks', text: 'Hi {{client.firstName}}' },
    });
    // Act
    const ok = await patch(
      '/form-letters/thanks',
      { subject: 'Thanks from {{studio.name}}' },
      `"${created.body.version}"`,
    );
    const bad = await patch('/form-letters/thanks', { text: 'Hi {{client.frstName}}' }, ok.headers.etag);
    // Assess
    expect(ok.status).toBe(200);
    expect(ok.body.mergeFields).toEqual(['studio.name', 'client.firstName']);
    expect(bad.status).toBe(400);
    expect(messageFor(bad, 'text')).toContain('did you mean {{client.firstName}}');
    expect((await h.call('GET', '/form-letters/thanks')).body.version).toBe(ok.body.version);
  });

  it("empties a signature's text with null while its HTML stays", async () => {
    // Prepare
    const created = await h.call('POST', '/signatures', {
      body: { id: 'sig', name: 'Ana', html: '<b>Ana</b>', text: 'Ana' },
    });
    // Act
    const res = await patch('/signatures/sig', { text: null }, `"${created.body.version}"`);
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ html: '<b>Ana</b>', text: '' });
  });
});

describe('secrets in PATCH answers', () => {
  it('never shows a password in any response or log line of this file', () => {
    // Assess
    h.assertNeverLeaked([SMTP_PASSWORD, NEW_SMTP_PASSWORD, BOX_PASSWORD]);
  });
});
