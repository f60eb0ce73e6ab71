import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pop3Probe, Pop3Target } from '#lib/settings/connection-test';
import { fieldsOf, messageFor, type SettingsHarness, settingsHarness } from '#test/settings/harness';
import { tokens } from '#test/support/api';

const PASSWORD = 'pw-Redirect-5521';
const probeCalls: Pop3Target[] = [];
const probe: Pop3Probe = async (target) => {
  probeCalls.push(target);
  return { ok: true, message: 'Logged in', greeting: '+OK ready', messageCount: 0, ms: 1 };
};

let h: SettingsHarness;
beforeAll(async () => {
  h = await settingsHarness({ probePop3: probe });
});
afterAll(() => h.output.restore());

const smtp = (over: Record<string, unknown> = {}) => ({
  studioName: 'Lumen Studio',
  displayName: 'Lumen Studio',
  emailAddress: 'hello@lumen.test',
  transport: {
    method: 'smtp',
    server: 'smtp.lumen.test',
    port: 587,
    security: 'starttls',
    logonName: 'hello@lumen.test',
    ...over,
  },
});

describe('a saved SMTP password stays with its server', () => {
  beforeAll(async () => {
    const res = await h.call('PUT', '/settings/company/email', { body: smtp({ password: PASSWORD }) });
    expect(res.status).toBe(200);
  });

  it.each([
    ['server', { server: 'attacker.example.net' }],
    ['port', { port: 25 }],
    ['security', { security: 'none' }],
    ['logonName', { logonName: 'someone-else@lumen.test' }],
  ])(
    'refuses a change of %s without the password with a 400 naming transport.password',
    async (field, change) => {
      // Act
      const res = await h.call('PUT', '/settings/company/email', { body: smtp(change) });
      // Assess
      expect(res.status).toBe(400);
      expect(fieldsOf(res)).toEqual(['transport.password']);
      expect(messageFor(res, 'transport.password')).toContain(`${field} changed`);
      const stored = await h.call('GET', '/settings/company/email');
      expect(stored.body.transport).toMatchObject({
        server: 'smtp.lumen.test',
        port: 587,
        security: 'starttls',
      });
    },
  );

  it('keeps the password when only other fields change, and takes a new server with a new password', async () => {
    // Act
    const renamed = await h.call('PUT', '/settings/company/email', {
      body: { ...smtp({ server: 'SMTP.lumen.test' }), displayName: 'Lumen' },
    });
    const moved = await h.call('PUT', '/settings/company/email', {
      body: smtp({ server: 'smtp2.lumen.test', password: PASSWORD }),
    });
    // Assess
    expect(renamed.status).toBe(200);
    expect(moved.status).toBe(200);
    expect(moved.body.transport).toMatchObject({ server: 'smtp2.lumen.test', passwordSet: true });
  });
});

describe("a user's Gmail app password stays with its address", () => {
  it('refuses a new sending address (the Gmail logon) without the password', async () => {
    // Prepare
    const ana = { token: tokens.user };
    const first = await h.call('PUT', '/users/me/email-settings', {
      ...ana,
      body: { emailAddress: 'ana@gmail.com', transport: { method: 'gmail', password: PASSWORD } },
    });
    // Act
    const res = await h.call('PUT', '/users/me/email-settings', {
      ...ana,
      body: { emailAddress: 'victim@gmail.com', transport: { method: 'gmail' } },
    });
    // Assess
    expect(first.status).toBe(200);
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toContain('transport.password');
  });
});

describe("a box's saved password stays with its POP3 server", () => {
  const box = (connection: Record<string, unknown>) => ({
    description: 'Sales',
    connection: {
      type: 'pop3',
      server: 'pop.lumen.test',
      emailAddress: 'sales@lumen.test',
      userName: 'sales@lumen.test',
      ssl: true,
      ...connection,
    },
  });

  beforeAll(async () => {
    const res = await h.call('POST', '/email-boxes', {
      body: { id: 'sales', ...box({ password: PASSWORD }) },
    });
    expect(res.status).toBe(201);
  });

  it.each([
    ['server', { server: 'attacker.example.net' }],
    ['port', { port: 110 }],
    ['ssl', { ssl: false }],
    ['userName', { userName: 'other@lumen.test' }],
  ])('refuses a change of %s without the password, and never tests the new server', async (field, change) => {
    // Prepare
    const calls = probeCalls.length;
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', { body: box(change) });
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toEqual(['connection.password']);
    expect(messageFor(res, 'connection.password')).toContain(`${field} changed`);
    expect(probeCalls.length).toBe(calls);
  });

  it('tests and saves a new server when the password comes with it', async () => {
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', {
      body: box({ server: 'pop2.lumen.test', password: PASSWORD }),
    });
    // Assess
    expect(res.status).toBe(200);
    expect(probeCalls.at(-1)).toMatchObject({ server: 'pop2.lumen.test' });
  });

  it('never shows the password', () => {
    h.assertNeverLeaked([PASSWORD]);
  });
});
