import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tokens } from '#test/support/api';
import { messageFor, type SettingsHarness, settingsHarness, unreachableProbe } from './harness.ts';

const COMPANY_PASSWORD = 'pw-Zebra-9137';
const USER_PASSWORD = 'pw-Lynx-5521';
const USER_PASSWORD_2 = 'pw-Lynx-7788';
const UNSAVED_PASSWORD = 'pw-Never-Saved-2';

let h: SettingsHarness;

beforeAll(async () => {
  h = await settingsHarness({ probePop3: unreachableProbe });
  // Prepare: the studio, a signature each for the company and the user, and the two users on record.
  await h.call('POST', '/signatures', {
    body: { id: 'sig-company', name: 'Studio', html: '<p>Lumen</p>', text: 'Lumen' },
  });
  await h.call('POST', '/signatures', {
    body: { id: 'sig-ana', name: 'Ana', html: '<p>Ana</p>', text: 'Ana' },
  });
  await h.call('POST', '/users', {
    body: { id: 'user-1', firstName: 'Ana', lastName: 'Ruiz', email: 'ana@lumen.test' },
  });
  await h.call('POST', '/users', {
    body: { id: 'user-2', firstName: 'Bo', lastName: 'Li', email: 'bo@lumen.test' },
  });
  const company = await h.call('PUT', '/settings/company/email', {
    body: {
      studioName: 'Lumen Studio',
      displayName: 'Lumen Studio',
      emailAddress: 'hello@lumen.test',
      defaultSignatureId: 'sig-company',
      timeZone: 'Europe/Madrid',
      transport: {
        method: 'smtp',
        server: 'smtp.lumen.test',
        port: 465,
        security: 'ssl',
        logonName: 'hello@lumen.test',
        password: COMPANY_PASSWORD,
      },
    },
  });
  expect(company.status).toBe(200);
});

afterAll(() => h.output.restore());

describe('GET /users/{id}/email-settings/effective without overrides', () => {
  it('gives the company values, each marked as coming from the company', async () => {
    // Act
    const res = await h.call('GET', '/users/me/email-settings/effective', { token: tokens.user });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      userId: 'user-1',
      studioName: 'Lumen Studio',
      timeZone: 'Europe/Madrid',
      displayName: { value: 'Lumen Studio', source: 'company' },
      emailAddress: { value: 'hello@lumen.test', source: 'company' },
      transport: {
        value: {
          method: 'smtp',
          server: 'smtp.lumen.test',
          port: 465,
          security: 'ssl',
          logonName: 'hello@lumen.test',
          passwordSet: true,
        },
        source: 'company',
      },
      signatureId: { value: 'sig-company', source: 'company' },
    });
  });

  it('answers 404 for the own settings, saying the company ones apply', async () => {
    // Act
    const res = await h.call('GET', '/users/me/email-settings', { token: tokens.user });
    // Assess
    expect(res.status).toBe(404);
    expect(res.body.error.message).toMatch(/company's apply/);
  });
});

describe('PUT /users/me/email-settings', () => {
  it('saves the overrides for the caller, with their own SMTP password in the secret store', async () => {
    // Act
    const res = await h.call('PUT', '/users/me/email-settings', {
      token: tokens.user,
      body: {
        displayName: 'Ana Ruiz',
        emailAddress: 'ana@lumen.test',
        defaultSignatureId: 'sig-ana',
        transport: {
          method: 'smtp',
          server: 'smtp.ana.test',
          port: 587,
          security: 'starttls',
          logonName: 'ana',
          password: USER_PASSWORD,
        },
      },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      userId: 'user-1',
      displayName: 'Ana Ruiz',
      transport: { method: 'smtp', server: 'smtp.ana.test', passwordSet: true },
      version: 1,
    });
    const stored = await h.d.repos.userEmail.require('studio-1', 'user-1');
    const ref = stored.transport?.method === 'smtp' ? stored.transport.passwordRef : undefined;
    expect(ref).toMatch(/studio-1\/users\/user-1\/smtp-/);
    expect(await h.d.secrets.get(ref as string)).toBe(USER_PASSWORD);
  });

  it('makes the user values win in the effective settings, and says so', async () => {
    // Act
    const res = await h.call('GET', '/users/user-1/email-settings/effective', { token: tokens.user });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      displayName: { value: 'Ana Ruiz', source: 'user' },
      emailAddress: { value: 'ana@lumen.test', source: 'user' },
      transport: { value: { server: 'smtp.ana.test', passwordSet: true }, source: 'user' },
      signatureId: { value: 'sig-ana', source: 'user' },
      timeZone: 'Europe/Madrid',
    });
  });

  it('keeps the company transport when the user overrides only the sender', async () => {
    // Act
    await h.call('PUT', '/users/me/email-settings', {
      token: tokens.otherUser,
      body: { emailAddress: 'bo@lumen.test' },
    });
    const res = await h.call('GET', '/users/me/email-settings/effective', { token: tokens.otherUser });
    // Assess
    expect(res.body.emailAddress).toEqual({ value: 'bo@lumen.test', source: 'user' });
    expect(res.body.displayName).toEqual({ value: 'Lumen Studio', source: 'company' });
    expect(res.body.transport.source).toBe('company');
    expect(res.body.signatureId).toEqual({ value: 'sig-company', source: 'company' });
  });

  it('changes the password as a new secret, and keeps it when left out', async () => {
    // Prepare
    const current = (await h.call('GET', '/users/me/email-settings', { token: tokens.user })).body;
    const { passwordSet: _p, ...transport } = current.transport;
    const update = vi.spyOn(h.d.secrets, 'update');
    // Act
    const changed = await h.call('PUT', '/users/me/email-settings', {
      token: tokens.user,
      body: {
        ...pick(current),
        transport: { ...transport, password: USER_PASSWORD_2 },
        version: current.version,
      },
    });
    const kept = await h.call('PUT', '/users/me/email-settings', {
      token: tokens.user,
      body: { ...pick(current), displayName: 'Ana R.', transport },
    });
    // Assess
    expect(changed.status).toBe(200);
    expect(kept.status).toBe(200);
    expect(update).not.toHaveBeenCalled();
    update.mockRestore();
    const stored = await h.d.repos.userEmail.require('studio-1', 'user-1');
    const ref = stored.transport?.method === 'smtp' ? stored.transport.passwordRef : '';
    expect(await h.d.secrets.get(ref as string)).toBe(USER_PASSWORD_2);
    expect(kept.body.transport.passwordSet).toBe(true);
  });

  it('requires the user’s own address with their own Gmail', async () => {
    // Act
    const res = await h.call('PUT', '/users/me/email-settings', {
      token: tokens.user,
      body: { transport: { method: 'gmail', password: 'pw-x' } },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'emailAddress')).toMatch(/required with your own Gmail/);
  });

  it('refuses a default signature that does not exist', async () => {
    // Act
    const res = await h.call('PUT', '/users/me/email-settings', {
      token: tokens.user,
      body: { defaultSignatureId: 'sig-nope' },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'defaultSignatureId')).toMatch(/names no signature that exists \("sig-nope"\)/);
  });

  it('refuses a userId in the body that is not the one in the path', async () => {
    // Act
    const res = await h.call('PUT', '/users/me/email-settings', {
      token: tokens.user,
      body: { userId: 'user-2', displayName: 'Sneaky' },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'userId')).toMatch(/must match the user in the path/);
  });

  it('refuses a misspelt field', async () => {
    // Act
    const res = await h.call('PUT', '/users/me/email-settings', {
      token: tokens.user,
      body: { displayname: 'Ana' },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'displayname')).toMatch(/Did you mean "displayName"/);
  });
});

describe('user settings that cannot be written', () => {
  it('schedules the new secret for deletion and keeps the settings as they were', async () => {
    // Prepare
    const before = await h.d.repos.userEmail.require('studio-1', 'user-2');
    const secrets = h.secretCount();
    const replace = vi
      .spyOn(h.d.repos.userEmail, 'replace')
      .mockRejectedValueOnce(new Error('DynamoDB is having a bad day'));
    // Act
    const res = await h.call('PUT', '/users/me/email-settings', {
      token: tokens.otherUser,
      body: {
        emailAddress: 'bo@lumen.test',
        transport: { method: 'gmail', password: UNSAVED_PASSWORD },
      },
    });
    replace.mockRestore();
    // Assess
    expect(res.status).toBe(500);
    expect(h.secretCount()).toBe(secrets);
    expect(await h.d.repos.userEmail.require('studio-1', 'user-2')).toEqual(before);
  });
});

describe("someone else's user settings", () => {
  it.each([
    ['GET', '/users/user-1/email-settings'],
    ['PUT', '/users/user-1/email-settings'],
    ['DELETE', '/users/user-1/email-settings'],
    ['GET', '/users/user-1/email-settings/effective'],
  ])('refuses %s %s to another user with 403', async (method, path) => {
    // Act
    const res = await h.call(method, path, { token: tokens.otherUser, body: { displayName: 'x' } });
    // Assess
    expect(res.status).toBe(403);
  });

  it('lets an admin read and change a user’s settings', async () => {
    // Act
    const read = await h.call('GET', '/users/user-2/email-settings', { token: tokens.admin });
    const changed = await h.call('PUT', '/users/user-2/email-settings', {
      token: tokens.admin,
      body: { emailAddress: 'bo@lumen.test', displayName: 'Bo Li' },
    });
    // Assess
    expect(read.status).toBe(200);
    expect(changed.status).toBe(200);
    expect(changed.body.displayName).toBe('Bo Li');
  });

  it('answers 404 when an admin names a user the studio does not have', async () => {
    // Act
    const res = await h.call('GET', '/users/ghost/email-settings', { token: tokens.admin });
    // Assess
    expect(res.status).toBe(404);
  });

  it('answers 404 for the effective settings of a studio with no company settings', async () => {
    // Act
    const res = await h.call('GET', '/users/me/email-settings/effective', { token: tokens.otherStudioAdmin });
    // Assess
    expect(res.status).toBe(404);
    expect(res.body.error.message).toMatch(/no email settings yet/);
  });
});

describe('DELETE /users/me/email-settings', () => {
  it('removes the overrides, retires the user password, and the company settings apply again', async () => {
    // Prepare
    const stored = await h.d.repos.userEmail.require('studio-1', 'user-1');
    const ref = stored.transport?.method === 'smtp' ? (stored.transport.passwordRef as string) : '';
    // Act
    const res = await h.call('DELETE', '/users/me/email-settings', { token: tokens.user });
    const effective = await h.call('GET', '/users/me/email-settings/effective', { token: tokens.user });
    const again = await h.call('DELETE', '/users/me/email-settings', { token: tokens.user });
    // Assess
    expect(res.status).toBe(204);
    await expect(h.d.secrets.get(ref)).rejects.toThrow();
    expect(effective.body.transport.source).toBe('company');
    expect(again.status).toBe(404);
  });
});

describe('secrets in user settings', () => {
  it('never shows a password in any response or log line of this file', () => {
    h.assertNeverLeaked([COMPANY_PASSWORD, USER_PASSWORD, USER_PASSWORD_2, UNSAVED_PASSWORD]);
  });
});

/** The writable fields of a settings answer. */
function pick(view: Record<string, unknown>) {
  const { version: _v, createdAt: _c, updatedAt: _u, transport: _t, ...rest } = view;
  return rest;
}
