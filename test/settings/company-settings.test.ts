import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { COMPANY_SETTINGS_ID } from '#lib/settings/company';
import { tokens } from '#test/support/api';
import { fieldsOf, messageFor, type SettingsHarness, settingsHarness, unreachableProbe } from './harness.ts';

const SMTP_PASSWORD = 'pw-Zebra-9137';
const SMTP_PASSWORD_2 = 'pw-Okapi-4410';
const GMAIL_PASSWORD = 'pw-Gmail-app-7781';

let h: SettingsHarness;

beforeAll(async () => {
  h = await settingsHarness({ probePop3: unreachableProbe });
});

afterAll(() => h.output.restore());

const smtpSettings = (over: Record<string, unknown> = {}) => ({
  studioName: 'Lumen Studio',
  displayName: 'Lumen Studio',
  emailAddress: 'hello@lumen.test',
  timeZone: 'Europe/Madrid',
  transport: {
    method: 'smtp',
    server: 'smtp.lumen.test',
    port: 587,
    security: 'starttls',
    logonName: 'hello@lumen.test',
    password: SMTP_PASSWORD,
  },
  ...over,
});

async function storedRef(): Promise<string | undefined> {
  const stored = await h.d.repos.companyEmail.get('studio-1', COMPANY_SETTINGS_ID);
  return stored && stored.transport.method !== 'ses' ? stored.transport.passwordRef : undefined;
}

describe('GET /settings/company/email before anything is set', () => {
  it('answers 404 and says how to set the settings up', async () => {
    // Act
    const res = await h.call('GET', '/settings/company/email', { token: tokens.user });
    // Assess
    expect(res.status).toBe(404);
    expect(res.body.error.message).toMatch(/PUT \/settings\/company\/email/);
  });
});

describe('PUT /settings/company/email with SMTP', () => {
  it('stores the settings, keeps the password in the secret store and answers passwordSet', async () => {
    // Act
    const res = await h.call('PUT', '/settings/company/email', { body: smtpSettings() });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      studioName: 'Lumen Studio',
      timeZone: 'Europe/Madrid',
      version: 1,
      transport: {
        method: 'smtp',
        server: 'smtp.lumen.test',
        port: 587,
        security: 'starttls',
        passwordSet: true,
      },
    });
    expect(res.text).not.toContain('passwordRef');
    const ref = await storedRef();
    expect(ref).toMatch(/^local:secret:studio-mail\/studio-1\/company\/smtp-[0-9a-f]{8}$/);
    expect(await h.d.secrets.get(ref as string)).toBe(SMTP_PASSWORD);
  });

  it('lets any user of the studio read the settings, without the password', async () => {
    // Act
    const res = await h.call('GET', '/settings/company/email', { token: tokens.user });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.transport).toEqual({
      method: 'smtp',
      server: 'smtp.lumen.test',
      port: 587,
      security: 'starttls',
      logonName: 'hello@lumen.test',
      passwordSet: true,
    });
  });

  it('keeps the stored password when a PUT leaves it out', async () => {
    // Prepare
    const before = await storedRef();
    const { password: _omitted, ...transport } = smtpSettings().transport;
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({ displayName: 'Lumen', transport }),
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.displayName).toBe('Lumen');
    expect(res.body.transport.passwordSet).toBe(true);
    expect(await storedRef()).toBe(before);
    expect(await h.d.secrets.get(before as string)).toBe(SMTP_PASSWORD);
  });

  it('stores a changed password as a new secret and retires the old one (never written over)', async () => {
    // Prepare
    const before = await storedRef();
    const update = vi.spyOn(h.d.secrets, 'update');
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({ transport: { ...smtpSettings().transport, password: SMTP_PASSWORD_2 } }),
    });
    // Assess
    expect(res.status).toBe(200);
    expect(update).not.toHaveBeenCalled();
    update.mockRestore();
    const after = await storedRef();
    expect(after).not.toBe(before);
    expect(await h.d.secrets.get(after as string)).toBe(SMTP_PASSWORD_2);
    await expect(h.d.secrets.get(before as string)).rejects.toThrow();
  });

  it('keeps the saved password when the record cannot be saved with a new one', async () => {
    // Prepare
    const ref = await storedRef();
    const replace = vi
      .spyOn(h.d.repos.companyEmail, 'replace')
      .mockRejectedValueOnce(new Error('DynamoDB is having a bad day'));
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({ transport: { ...smtpSettings().transport, password: 'pw-Never-Saved-1' } }),
    });
    replace.mockRestore();
    // Assess
    expect(res.status).toBe(500);
    expect(await h.d.secrets.get(ref as string)).toBe(SMTP_PASSWORD_2);
  });

  it('refuses a stale version with 409 and keeps what was saved', async () => {
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({ studioName: 'Stale', version: 1 }),
    });
    // Assess
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/changed by someone else/);
    const now = await h.call('GET', '/settings/company/email');
    expect(now.body.studioName).toBe('Lumen Studio');
  });

  it('accepts the current version', async () => {
    // Prepare
    const current = await h.call('GET', '/settings/company/email');
    const { password: _p, ...transport } = smtpSettings().transport;
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({ transport, version: current.body.version }),
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.version).toBe(current.body.version + 1);
  });

  it('refuses a non-admin with 403 and changes nothing', async () => {
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      token: tokens.user,
      body: smtpSettings({ studioName: 'Hijacked' }),
    });
    // Assess
    expect(res.status).toBe(403);
    expect((await h.call('GET', '/settings/company/email')).body.studioName).toBe('Lumen Studio');
  });

  it('refuses a request without a token with 401', async () => {
    // Act
    const res = await h.call('GET', '/settings/company/email', { token: null });
    // Assess
    expect(res.status).toBe(401);
  });

  it("keeps studios apart: another studio's admin sees no settings", async () => {
    // Act
    const res = await h.call('GET', '/settings/company/email', { token: tokens.otherStudioAdmin });
    // Assess
    expect(res.status).toBe(404);
  });
});

describe('PUT /settings/company/email with Gmail and SES', () => {
  it('fills in smtp.gmail.com, 587 and STARTTLS for Gmail and logs on with the sending address', async () => {
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: {
        studioName: 'Lumen Studio',
        displayName: 'Lumen Studio',
        emailAddress: 'lumen.studio@gmail.com',
        transport: { method: 'gmail', password: GMAIL_PASSWORD },
      },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.transport).toEqual({
      method: 'gmail',
      server: 'smtp.gmail.com',
      port: 587,
      security: 'starttls',
      logonName: 'lumen.studio@gmail.com',
      passwordSet: true,
    });
    expect(res.body.timeZone).toBe('America/New_York');
    expect(await h.d.secrets.get((await storedRef()) as string)).toBe(GMAIL_PASSWORD);
  });

  it('accepts its own Gmail answer back unchanged (read, edit, save)', async () => {
    // Prepare
    const {
      version,
      createdAt: _c,
      updatedAt: _u,
      transport,
      ...rest
    } = (await h.call('GET', '/settings/company/email')).body;
    const { passwordSet: _ps, ...gmail } = transport;
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: { ...rest, displayName: 'Lumen Photo', transport: gmail, version },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.displayName).toBe('Lumen Photo');
    expect(res.body.transport.passwordSet).toBe(true);
  });

  it('refuses another server for Gmail and says to use SMTP', async () => {
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({ transport: { method: 'gmail', server: 'smtp.other.test', password: 'x' } }),
    });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'transport.server')).toMatch(/smtp\.gmail\.com.*method smtp/);
  });

  it('switches to the managed service (ses) and schedules the stored password for deletion', async () => {
    // Prepare
    const ref = (await storedRef()) as string;
    const retire = vi.spyOn(h.d.secrets, 'scheduleDeletion');
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: { ...smtpSettings(), transport: { method: 'ses' } },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.transport).toEqual({ method: 'ses' });
    expect(retire).toHaveBeenCalledWith(ref);
    retire.mockRestore();
    await expect(h.d.secrets.get(ref)).rejects.toThrow();
    expect(h.secretCount()).toBe(0);
  });

  it('requires a password on a switch between SMTP and Gmail instead of reusing the other server’s', async () => {
    // Prepare
    await h.call('PUT', '/settings/company/email', { body: smtpSettings() });
    const ref = (await storedRef()) as string;
    const { password: _p, ...smtpKept } = smtpSettings().transport;
    // Act
    const toGmail = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({ transport: { method: 'gmail' } }),
    });
    const gmail = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({ transport: { method: 'gmail', password: GMAIL_PASSWORD } }),
    });
    const toSmtp = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({ transport: smtpKept }),
    });
    // Assess
    expect(toGmail.status).toBe(400);
    expect(messageFor(toGmail, 'transport.password')).toMatch(/required when switching to Gmail/);
    expect(gmail.status).toBe(200);
    expect(toSmtp.status).toBe(400);
    expect(messageFor(toSmtp, 'transport.password')).toMatch(/required when switching from Gmail to SMTP/);
    // The Gmail password is a secret of its own; the SMTP one is retired.
    const gmailRef = (await storedRef()) as string;
    expect(gmailRef).not.toBe(ref);
    expect(await h.d.secrets.get(gmailRef)).toBe(GMAIL_PASSWORD);
    await expect(h.d.secrets.get(ref)).rejects.toThrow();
    // Back to the managed service for the tests below.
    await h.call('PUT', '/settings/company/email', {
      body: { ...smtpSettings(), transport: { method: 'ses' } },
    });
  });

  it('requires the Gmail app password when none is stored', async () => {
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({ transport: { method: 'gmail' } }),
    });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'transport.password')).toMatch(/app password/);
  });

  it('removes a created secret again when the settings cannot be written', async () => {
    // Prepare
    const before = h.secretCount();
    const replace = vi
      .spyOn(h.d.repos.companyEmail, 'replace')
      .mockRejectedValueOnce(new Error('DynamoDB is having a bad day'));
    // Act
    const res = await h.call('PUT', '/settings/company/email', { body: smtpSettings() });
    replace.mockRestore();
    // Assess
    expect(res.status).toBe(500);
    expect(h.secretCount()).toBe(before);
    expect((await h.call('GET', '/settings/company/email')).body.transport.method).toBe('ses');
  });
});

describe('PUT /settings/company/email validation', () => {
  it.each([
    [
      'transport.port',
      { transport: { ...smtpSettings().transport, port: 70000 } },
      /whole number from 1 to 65535/,
    ],
    [
      'transport.security',
      { transport: { ...smtpSettings().transport, security: 'tls' } },
      /"ssl", "starttls", "none"/,
    ],
    ['transport.method', { transport: { method: 'pigeon' } }, /"ses", "smtp", "gmail"/],
    [
      'transport.server',
      { transport: { ...smtpSettings().transport, server: 'smtp://x:25' } },
      /server name/,
    ],
    ['emailAddress', { emailAddress: 'not-an-address' }, /email address such as/],
    ['replyTo', { replyTo: 'nope@' }, /email address such as/],
    ['timeZone', { timeZone: 'Mars/Olympus_Mons' }, /IANA time zone such as America\/New_York/],
    ['studioName', { studioName: '  ' }, /must not be empty/],
    ['defaultSignatureId', { defaultSignatureId: 'no-such-signature' }, /names no signature that exists/],
    ['version', { version: 'one' }, /version you last read/],
  ])('names %s and says what to do', async (field, over, message) => {
    // Act
    const res = await h.call('PUT', '/settings/company/email', { body: smtpSettings(over) });
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toContain(field);
    expect(messageFor(res, field)).toMatch(message);
  });

  it('refuses a misspelt field instead of dropping it, and suggests the right name', async () => {
    // Prepare
    const { password, ...transport } = smtpSettings().transport;
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({ transport: { ...transport, pasword: password } }),
    });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'transport.pasword')).toMatch(/not a field.*Did you mean "password"\?/);
  });

  it('says a missing field is required', async () => {
    // Prepare
    const { emailAddress: _e, ...body } = smtpSettings();
    // Act
    const res = await h.call('PUT', '/settings/company/email', { body });
    // Assess
    expect(res.status).toBe(400);
    expect(messageFor(res, 'emailAddress')).toBe('is required.');
  });

  it('requires a log-on name with a password and a password with a log-on name', async () => {
    // Act
    const noLogon = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({
        transport: { method: 'smtp', server: 's.test', port: 25, security: 'none', password: 'x' },
      }),
    });
    const noPassword = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({
        transport: { method: 'smtp', server: 's.test', port: 25, security: 'none', logonName: 'me' },
      }),
    });
    // Assess
    expect(messageFor(noLogon, 'transport.logonName')).toMatch(/required with a password/);
    expect(messageFor(noPassword, 'transport.password')).toMatch(/required when logonName is set/);
  });

  it('accepts SMTP without log-on (a relay) and stores no secret', async () => {
    // Prepare
    const before = h.secretCount();
    // Act
    const res = await h.call('PUT', '/settings/company/email', {
      body: smtpSettings({
        transport: { method: 'smtp', server: 'relay.lumen.test', port: 25, security: 'none' },
      }),
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.transport.passwordSet).toBe(false);
    expect(h.secretCount()).toBe(before);
  });

  it('answers a body that is not JSON with a 400 that says so', async () => {
    // Act
    const res = await h.call('PUT', '/settings/company/email', { body: '{"studioName": ' });
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0]).toMatchObject({ field: '(body)', message: /not valid JSON/ });
  });
});

describe('secrets in company settings', () => {
  it('never shows a password in any response or log line of this file', () => {
    h.assertNeverLeaked([SMTP_PASSWORD, SMTP_PASSWORD_2, GMAIL_PASSWORD, 'pw-Never-Saved-1']);
    expect(h.responses.length).toBeGreaterThan(20);
  });
});
