import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type SesLocal, startSesLocal } from '#local/ses';
import type { TestDeps } from '#test/support/api';
import { type SmtpHarness, type SmtpMode, startSmtpServer } from '#test/support/smtp';
import {
  type Call,
  depsWithSes,
  PASSWORD,
  SID,
  seedCompany,
  sendApi,
  smtpTransportRecord,
  trusting,
} from './fixtures.ts';

const servers: Partial<Record<SmtpMode, SmtpHarness>> = {};
let ses: SesLocal;
let d: TestDeps;

beforeAll(async () => {
  for (const mode of ['ssl', 'starttls', 'plain'] as const) {
    servers[mode] = await startSmtpServer({ mode, users: { alice: PASSWORD } });
  }
  ses = await startSesLocal();
  d = await depsWithSes(ses.endpoint);
  await d.repos.clients.create(SID, 'client-1', {
    id: 'client-1',
    firstName: 'José',
    lastName: 'Núñez',
    emails: [
      { address: 'old@example.test', primary: false },
      { address: 'jose@example.test', primary: true },
    ],
  });
});

afterAll(async () => {
  await Promise.all(Object.values(servers).map((s) => s.stop()));
  await ses?.stop();
});

beforeEach(() => {
  for (const s of Object.values(servers)) s.reset();
});

const security = { ssl: 'ssl', starttls: 'starttls', plain: 'none' } as const;

describe.each(['ssl', 'starttls', 'plain'] as const)('sending through an SMTP server (%s)', (mode) => {
  let call: Call;
  let smtp: SmtpHarness;

  beforeAll(async () => {
    smtp = servers[mode]!;
    await seedCompany(d, await smtpTransportRecord(d, smtp, security[mode]));
    call = sendApi(d, { policy: trusting(smtp), probe: false });
  });

  it('delivers a single email to the client, logged on, with the bytes recorded on the client', async () => {
    // Act
    const res = await call('POST', '/emails', {
      token: 'dev:studio-1:user-1:',
      body: { clientId: 'client-1', subject: 'Your gallery, {{client.firstName}}', text: 'It is ready.' },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, clientId: 'client-1', recorded: true, attempts: 1 });
    expect(smtp.messages).toHaveLength(1);
    const received = smtp.messages[0]!;
    expect(received.envelope).toEqual({ from: 'hello@lumen.test', to: ['jose@example.test'] });
    expect(received.user).toBe('alice');
    expect(received.secure).toBe(mode !== 'plain');
    expect(smtp.authAttempts[0]?.method).toMatch(/PLAIN|LOGIN/);
    const parsed = await simpleParser(received.raw);
    expect(parsed.subject).toBe('Your gallery, José');
    expect(parsed.messageId).toBe(res.body.messageId);
    const record = await d.repos.messages.require(SID, res.body.id);
    expect(record).toMatchObject({
      direction: 'out',
      status: 'sent',
      clientId: 'client-1',
      sentBy: 'user-1',
    });
    expect(record.messageId).toBe(res.body.messageId);
    expect(record.threadId).toBe(res.body.threadId);
    expect((await d.blobs.getBuffer(`raw/${SID}/out/${res.body.id}.eml`)).equals(received.raw)).toBe(true);
    const timeline = await d.repos.messages.listForClient(SID, 'client-1');
    expect(timeline.items.map((m) => m.id)).toContain(res.body.id);
  });

  it('sends a test email to the studio address and answers with the server response', async () => {
    // Act
    const res = await call('POST', '/settings/company/email/test', { body: {} });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, from: 'hello@lumen.test', to: 'hello@lumen.test' });
    expect(res.body.response).toMatch(/^250 /);
    expect(res.body.transport).toMatchObject({ method: 'smtp', port: smtp.port, security: security[mode] });
    expect(smtp.messages).toHaveLength(1);
    expect((await simpleParser(smtp.messages[0]!.raw)).messageId).toBe(res.body.messageId);
  });
});

describe('sending through the local SES', () => {
  let call: Call;

  beforeAll(async () => {
    await seedCompany(d, { method: 'ses' });
    call = sendApi(d, { probe: false });
  });

  async function stored(subject: string) {
    const store = (await (await fetch(ses.storeUrl)).json()) as {
      emails: { subject: string; from: string; destination: { to: string[] }; messageId: string }[];
    };
    return store.emails.filter((e) => e.subject === subject);
  }

  it('delivers an email and records both our Message-ID and the one SES gave it', async () => {
    // Prepare
    const subject = `SES delivery ${Date.now()}`;
    // Act
    const res = await call('POST', '/emails', {
      token: 'dev:studio-1:user-1:',
      body: { to: ['jose@example.test'], subject, html: '<p>Hello {{client.firstName}}</p>' },
    });
    // Assess
    expect(res.status).toBe(200);
    const [email] = await stored(subject);
    expect(email?.destination.to).toEqual(['jose@example.test']);
    expect(res.body.providerMessageId).toBe(`<${email?.messageId}@email.amazonses.com>`);
    expect(res.body.clientId).toBe('client-1');
    const record = await d.repos.messages.require(SID, res.body.id);
    expect(record).toMatchObject({ status: 'sent', providerMessageId: res.body.providerMessageId });
    const byProviderId = await d.repos.messages.findByMessageId(SID, res.body.providerMessageId);
    expect(byProviderId.map((m) => m.id)).toEqual([res.body.id]);
  });

  it('sends a test email through SES', async () => {
    // Act
    const res = await call('POST', '/settings/company/email/test', { body: { to: 'owner@lumen.test' } });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, to: 'owner@lumen.test', transport: { method: 'ses' } });
    const [email] = await stored('Test email from Lumen Photo Studio');
    expect(email?.destination.to).toEqual(['owner@lumen.test']);
  });
});
