import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokens } from '#test/support/api';
import { fieldsOf, messageFor, type SettingsHarness, settingsHarness, unreachableProbe } from './harness.ts';

const BOX_PASSWORD = 'pw-Zebra-9137';
const USER_SMTP_PASSWORD = 'pw-Ibis-6023';

let h: SettingsHarness;

beforeAll(async () => {
  h = await settingsHarness({ probePop3: unreachableProbe });
});

afterAll(() => h.output.restore());

/** A valid body per collection, and a change for PUT. */
const kinds = [
  ['departments', { name: 'Sales' }, { name: 'Sales & Bookings' }],
  ['signatures', { name: 'Default', html: '<p>Lumen</p>', text: 'Lumen' }, { name: 'Short', text: 'L.' }],
  ['task-types', { name: 'Follow up' }, { name: 'Call back' }],
  ['task-statuses', { name: 'Open', isDefault: true }, { name: 'Open (new)', isDefault: true }],
  ['email-types', { name: 'Inquiry' }, { name: 'Booking inquiry' }],
  ['email-statuses', { name: 'Unread' }, { name: 'New' }],
  [
    'form-letters',
    { name: 'Thanks', subject: 'Thanks', text: 'Hi' },
    { name: 'Thank you', subject: 'Thank you', html: '<p>Hi</p>' },
  ],
  [
    'clients',
    { firstName: 'José', lastName: 'Núñez', emails: [{ address: 'jose@example.com' }] },
    { lastName: 'Núñez García' },
  ],
] as const;

describe.each(kinds)('/%s', (path, body, change) => {
  let id: string;

  it('creates with a server-made id (201) for an admin', async () => {
    // Act
    const res = await h.call('POST', `/${path}`, { body });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body).toMatchObject({ ...body, version: 1 });
    id = res.body.id;
  });

  it('lists and reads it for any user of the studio', async () => {
    // Act
    const list = await h.call('GET', `/${path}`, { token: tokens.user });
    const one = await h.call('GET', `/${path}/${id}`, { token: tokens.user });
    // Assess
    expect(list.status).toBe(200);
    expect(list.body.items.map((i: { id: string }) => i.id)).toContain(id);
    expect(one.status).toBe(200);
    expect(one.body.id).toBe(id);
  });

  it('replaces it, bumping the version', async () => {
    // Prepare
    const current = (await h.call('GET', `/${path}/${id}`)).body;
    const { createdAt: _c, updatedAt: _u, mergeFields: _m, ...rest } = current;
    // Act
    const res = await h.call('PUT', `/${path}/${id}`, { body: { ...rest, ...change } });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ...change, version: 2 });
  });

  it('refuses a stale version with 409', async () => {
    // Act
    const res = await h.call('PUT', `/${path}/${id}`, { body: { ...body, version: 1 } });
    // Assess
    expect(res.status).toBe(409);
  });

  it('refuses writes from a user who is not an admin (403) but not reads', async () => {
    // Act
    const post = await h.call('POST', `/${path}`, { token: tokens.user, body });
    const put = await h.call('PUT', `/${path}/${id}`, { token: tokens.user, body });
    const del = await h.call('DELETE', `/${path}/${id}`, { token: tokens.user });
    // Assess
    expect([post.status, put.status, del.status]).toEqual([403, 403, 403]);
  });

  it('keeps it from another studio (404)', async () => {
    // Act
    const res = await h.call('GET', `/${path}/${id}`, { token: tokens.otherStudioAdmin });
    // Assess
    expect(res.status).toBe(404);
  });

  it('deletes it (204), then answers 404', async () => {
    // Act
    const del = await h.call('DELETE', `/${path}/${id}`);
    const get = await h.call('GET', `/${path}/${id}`);
    const again = await h.call('DELETE', `/${path}/${id}`);
    const put = await h.call('PUT', `/${path}/${id}`, { body });
    // Assess
    expect(del.status).toBe(204);
    expect([get.status, again.status, put.status]).toEqual([404, 404, 404]);
    expect(get.body.error.message).toMatch(new RegExp(`No .* with id "${id}"`));
  });
});

describe('ids given by the client', () => {
  it('accepts an id of letters, digits, "-" and "_"', async () => {
    // Act
    const res = await h.call('POST', '/departments', { body: { id: 'front_desk-1', name: 'Front desk' } });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.id).toBe('front_desk-1');
  });

  it('refuses an id with other characters, saying which are allowed', async () => {
    // Act
    const res = await h.call('POST', '/departments', { body: { id: 'front desk/1', name: 'Front desk' } });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'id')).toMatch(/letters, digits, "-" or "_"/);
  });

  it('refuses an id that is taken with 409', async () => {
    // Act
    const res = await h.call('POST', '/departments', { body: { id: 'front_desk-1', name: 'Again' } });
    // Assess
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/already exists/);
  });

  it('refuses a PUT whose body names another id', async () => {
    // Act
    const res = await h.call('PUT', '/departments/front_desk-1', { body: { id: 'other', name: 'X' } });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'id')).toMatch(/must match the id in the path/);
  });

  it('refuses a version on POST', async () => {
    // Act
    const res = await h.call('POST', '/departments', { body: { name: 'X', version: 3 } });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'version')).toMatch(/only for PUT/);
  });

  it('requires the id of a user, as their sign-in subject', async () => {
    // Act
    const res = await h.call('POST', '/users', {
      body: { firstName: 'A', lastName: 'B', email: 'a@b.test' },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'id')).toMatch(/sign-in subject/);
  });

  it('refuses read-only fields sent back, saying they are read-only', async () => {
    // Act
    const res = await h.call('PUT', '/departments/front_desk-1', {
      body: { name: 'Front desk', createdAt: '2026-01-01T00:00:00.000Z' },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'createdAt')).toMatch(/read-only/);
  });
});

describe('users', () => {
  it('creates a user with a department, and refuses one whose department does not exist', async () => {
    // Act
    const ok = await h.call('POST', '/users', {
      body: {
        id: 'ana-sub',
        firstName: 'Ana',
        lastName: 'Ruiz',
        email: 'ana@lumen.test',
        departmentId: 'front_desk-1',
      },
    });
    const bad = await h.call('POST', '/users', {
      body: { id: 'bo-sub', firstName: 'Bo', lastName: 'Li', email: 'bo@lumen.test', departmentId: 'nope' },
    });
    // Assess
    expect(ok.status).toBe(201);
    expect(bad.status).toBe(400);
    expect(messageFor(bad, 'departmentId')).toMatch(/names no department that exists \("nope"\)/);
  });

  it.each([
    ['email', { email: 'ana(at)lumen' }, /email address such as/],
    ['firstName', { firstName: '' }, /must not be empty/],
    ['lastName', { lastName: undefined }, /is required/],
  ])('names %s when it is wrong', async (field, over, message) => {
    // Act
    const res = await h.call('POST', '/users', {
      body: { id: 'x-sub', firstName: 'X', lastName: 'Y', email: 'x@y.test', ...over },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, field)).toMatch(message);
  });
});

describe('lookups', () => {
  it('keeps one default per kind: a new default clears the old one', async () => {
    // Prepare
    await h.call('POST', '/email-statuses', { body: { id: 'es-unread', name: 'Unread', isDefault: true } });
    // Act
    await h.call('POST', '/email-statuses', { body: { id: 'es-new', name: 'New', isDefault: true } });
    // Assess
    const list = (await h.call('GET', '/email-statuses')).body.items;
    const defaults = list.filter((s: { isDefault: boolean }) => s.isDefault).map((s: { id: string }) => s.id);
    expect(defaults).toEqual(['es-new']);
  });
});

describe('form letters', () => {
  it('derives the merge fields from subject, HTML and text on save', async () => {
    // Act
    const res = await h.call('POST', '/form-letters', {
      body: {
        id: 'fl-thanks',
        name: 'Thanks',
        kind: 'html-email',
        subject: 'Thanks, {{client.firstName}}!',
        html: '<p>Dear {{ client.firstName }} {{client.lastName}}, see you at {{{studio.address}}}.</p>',
        text: 'Dear {{client.firstName}} — {{studio.name}}',
      },
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.mergeFields).toEqual([
      'client.firstName',
      'client.lastName',
      'studio.address',
      'studio.name',
    ]);
  });

  it('refuses a letter without a body and a letter that sends mergeFields itself', async () => {
    // Act
    const empty = await h.call('POST', '/form-letters', { body: { name: 'Empty', subject: 'Hi' } });
    const derived = await h.call('POST', '/form-letters', {
      body: { name: 'X', subject: 'Hi', text: 'x', mergeFields: ['a'] },
    });
    // Assess
    expect(messageFor(empty, 'html')).toMatch(/HTML or a plain-text body/);
    expect(messageFor(derived, 'mergeFields')).toMatch(/read-only/);
  });
});

describe('clients', () => {
  it('marks a single address primary, and requires exactly one primary among several', async () => {
    // Act
    const single = await h.call('POST', '/clients', {
      body: { id: 'c-single', lastName: 'Solo', emails: [{ address: 'solo@example.com' }] },
    });
    const none = await h.call('POST', '/clients', {
      body: { lastName: 'Duo', emails: [{ address: 'a@example.com' }, { address: 'b@example.com' }] },
    });
    const two = await h.call('POST', '/clients', {
      body: {
        lastName: 'Duo',
        emails: [
          { address: 'a@example.com', primary: true },
          { address: 'b@example.com', primary: true },
        ],
      },
    });
    // Assess
    expect(single.body.emails).toEqual([{ address: 'solo@example.com', primary: true }]);
    expect(messageFor(none, 'emails')).toMatch(/exactly one address as primary \(0 are\)/);
    expect(messageFor(two, 'emails')).toMatch(/\(2 are\)/);
  });

  it('refuses the same address twice, a client without any name, and a bad address', async () => {
    // Act
    const twice = await h.call('POST', '/clients', {
      body: {
        lastName: 'Twice',
        emails: [
          { address: 'x@example.com', primary: true },
          { address: 'X@example.com', primary: false },
        ],
      },
    });
    const nameless = await h.call('POST', '/clients', { body: { emails: [] } });
    const bad = await h.call('POST', '/clients', { body: { lastName: 'B', emails: [{ address: 'nope' }] } });
    // Assess
    expect(messageFor(twice, 'emails.1.address')).toMatch(/repeats X@example.com/);
    expect(messageFor(nameless, 'lastName')).toMatch(/must have some name/);
    expect(messageFor(bad, 'emails.0.address')).toMatch(/email address such as/);
  });

  it('stores several addresses with groups', async () => {
    // Act
    const res = await h.call('POST', '/clients', {
      body: {
        id: 'c-wedding',
        firstName: 'Mia',
        lastName: 'Berg',
        company: 'Berg AB',
        emails: [
          { address: 'mia@example.com', primary: true, label: 'home' },
          { address: 'mia@berg.test', label: 'work' },
        ],
        groups: ['weddings', 'vip', 'weddings'],
      },
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.emails).toHaveLength(2);
    expect(res.body.groups).toEqual(['weddings', 'vip']);
  });

  it('pages the list with limit and cursor', async () => {
    // Prepare
    for (const n of [1, 2, 3])
      await h.call('POST', '/clients', { body: { id: `c-page-${n}`, lastName: `Page${n}` } });
    // Act
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const res = await h.call('GET', `/clients?limit=2${cursor ? `&cursor=${cursor}` : ''}`, {
        token: tokens.user,
      });
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((c: { id: string }) => c.id));
      cursor = res.body.nextCursor;
      pages += 1;
    } while (cursor);
    // Assess
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(seen).toEqual(
      expect.arrayContaining(['c-single', 'c-wedding', 'c-page-1', 'c-page-2', 'c-page-3']),
    );
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('names limit and cursor when they are wrong', async () => {
    // Act
    const limit = await h.call('GET', '/clients?limit=500');
    const cursor = await h.call('GET', '/clients?cursor=not-a-cursor');
    // Assess
    expect(messageFor(limit, 'limit')).toMatch(/whole number from 1 to 100/);
    expect(fieldsOf(cursor)).toEqual(['cursor']);
  });
});

describe('deleting something still in use', () => {
  beforeAll(async () => {
    // Prepare: every kind of reference in use by a box, a user, and the settings.
    for (const [path, id] of [
      ['departments', 'd-sales'],
      ['task-types', 'tt-follow'],
      ['task-statuses', 'ts-open'],
      ['email-types', 'et-inquiry'],
      ['email-statuses', 'es-unread2'],
    ])
      await h.call('POST', `/${path}`, { body: { id, name: id } });
    await h.call('POST', '/users', {
      body: {
        id: 'u-sales',
        firstName: 'Sam',
        lastName: 'Sales',
        email: 'sam@lumen.test',
        departmentId: 'd-sales',
      },
    });
    await h.call('POST', '/form-letters', {
      body: { id: 'fl-auto', name: 'Auto', subject: 'Got it', text: 'Thanks' },
    });
    await h.call('POST', '/signatures', { body: { id: 'sig-co', name: 'Company', text: 'Lumen' } });
    await h.call('POST', '/signatures', { body: { id: 'sig-user', name: 'User', text: 'Ana' } });
    const box = await h.call('POST', '/email-boxes?verify=false', {
      body: {
        id: 'sales',
        description: 'Sales',
        departmentId: 'd-sales',
        userId: 'u-sales',
        autoCreateTask: true,
        taskTypeId: 'tt-follow',
        taskStatusId: 'ts-open',
        emailTypeId: 'et-inquiry',
        emailStatusId: 'es-unread2',
        sendAutoReply: true,
        autoReplyFormLetterId: 'fl-auto',
        connection: {
          server: 'pop.lumen.test',
          emailAddress: 'sales@lumen.test',
          userName: 'sales@lumen.test',
          password: BOX_PASSWORD,
        },
      },
    });
    expect(box.status).toBe(201);
    await h.call('PUT', '/settings/company/email', {
      body: {
        studioName: 'Lumen',
        displayName: 'Lumen',
        emailAddress: 'hello@lumen.test',
        transport: { method: 'ses' },
        defaultSignatureId: 'sig-co',
      },
    });
    await h.call('PUT', '/users/me/email-settings', {
      token: tokens.user,
      body: { defaultSignatureId: 'sig-user' },
    });
  });

  it.each([
    ['departments', 'd-sales', [/user "u-sales" \(Sam Sales\)/, /email box "sales" \(Sales, departmentId\)/]],
    ['users', 'u-sales', [/email box "sales" \(Sales, userId\)/]],
    ['task-types', 'tt-follow', [/email box "sales" \(Sales, taskTypeId\)/]],
    ['task-statuses', 'ts-open', [/email box "sales" \(Sales, taskStatusId\)/]],
    ['email-types', 'et-inquiry', [/email box "sales" \(Sales, emailTypeId\)/]],
    ['email-statuses', 'es-unread2', [/email box "sales" \(Sales, emailStatusId\)/]],
    ['form-letters', 'fl-auto', [/email box "sales" \(Sales, autoReplyFormLetterId\)/]],
    ['signatures', 'sig-co', [/the company email settings \(defaultSignatureId\)/]],
    ['signatures', 'sig-user', [/the email settings of user "user-1" \(defaultSignatureId\)/]],
  ])('refuses to delete %s/%s with 409 naming what uses it', async (path, id, uses) => {
    // Act
    const res = await h.call('DELETE', `/${path}/${id}`);
    // Assess
    expect(res.status).toBe(409);
    for (const use of uses) expect(res.body.error.message).toMatch(use);
    expect((await h.call('GET', `/${path}/${id}`)).status).toBe(200);
  });

  it('refuses to move a user out of the department of a box that assigns mail to them', async () => {
    // Prepare
    const sam = { firstName: 'Sam', lastName: 'Sales', email: 'sam@lumen.test' };
    // Act
    const moved = await h.call('PUT', '/users/u-sales', { body: sam });
    const kept = await h.call('PUT', '/users/u-sales', {
      body: { ...sam, departmentId: 'd-sales', title: 'Lead' },
    });
    // Assess
    expect(moved.status).toBe(400);
    expect(messageFor(moved, 'departmentId')).toMatch(/must stay "d-sales".*email box "sales" \(Sales\)/);
    expect(kept.status).toBe(200);
    expect((await h.call('GET', '/users/u-sales')).body).toMatchObject({
      departmentId: 'd-sales',
      title: 'Lead',
    });
  });

  it("refuses to delete a user who still has their own email settings, so they don't outlive them", async () => {
    // Prepare
    await h.call('POST', '/users', {
      body: { id: 'u-own', firstName: 'Olga', lastName: 'Own', email: 'olga@lumen.test' },
    });
    const own = await h.call('PUT', '/users/u-own/email-settings', {
      body: {
        emailAddress: 'olga@lumen.test',
        transport: {
          method: 'smtp',
          server: 'smtp.lumen.test',
          port: 587,
          security: 'starttls',
          logonName: 'olga',
          password: USER_SMTP_PASSWORD,
        },
      },
    });
    const secrets = h.secretCount();
    // Act
    const refused = await h.call('DELETE', '/users/u-own');
    const settingsGone = await h.call('DELETE', '/users/u-own/email-settings');
    const deleted = await h.call('DELETE', '/users/u-own');
    // Assess
    expect(own.status).toBe(200);
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(
      /their own email settings \(DELETE \/users\/u-own\/email-settings first\)/,
    );
    expect(settingsGone.status).toBe(204);
    expect(h.secretCount()).toBe(secrets - 1);
    expect(deleted.status).toBe(204);
  });

  it('allows the delete once nothing uses it any more', async () => {
    // Prepare
    await h.call('DELETE', '/email-boxes/sales');
    // Act
    const res = await h.call('DELETE', '/task-types/tt-follow');
    // Assess
    expect(res.status).toBe(204);
  });
});

describe('secrets in reference data', () => {
  it('never shows a password in any response or log line of this file', () => {
    h.assertNeverLeaked([BOX_PASSWORD, USER_SMTP_PASSWORD]);
  });
});
