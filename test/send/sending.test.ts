import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestDeps } from '#test/support/api';
import { type SmtpHarness, startSmtpServer } from '#test/support/smtp';
import {
  type Call,
  depsWithSes,
  PASSWORD,
  recordingSleep,
  SID,
  seedCompany,
  seedUser,
  sendApi,
  smtpTransportRecord,
  trusting,
} from './fixtures.ts';
import { type SesStub, startSesStub } from './ses-stub.ts';

const USER = 'dev:studio-1:user-1:';

let smtp: SmtpHarness;
let d: TestDeps;
let call: Call;
const sleep = recordingSleep();

beforeAll(async () => {
  smtp = await startSmtpServer({ mode: 'starttls', users: { alice: PASSWORD } });
  d = await depsWithSes('http://127.0.0.1:9');
  await d.repos.signatures.create(SID, 'sig-company', {
    id: 'sig-company',
    name: 'Studio',
    html: '<p>{{studio.name}} · {{studio.phone}}</p>',
    text: '{{studio.name}} · {{studio.phone}}',
  });
  await d.repos.signatures.create(SID, 'sig-maya', {
    id: 'sig-maya',
    name: 'Maya',
    html: '<p><b>{{user.fullName}}</b>, {{user.title}}</p>',
    text: '{{user.fullName}}, {{user.title}}',
  });
  await d.repos.signatures.create(SID, 'sig-plain', {
    id: 'sig-plain',
    name: 'Plain',
    html: '',
    text: 'Cheers',
  });
  await seedCompany(d, await smtpTransportRecord(d, smtp, 'starttls'), { defaultSignatureId: 'sig-company' });
  await seedUser(d, 'user-1');
  await seedUser(d, 'user-2', {
    emailAddress: 'maya@lumen.test',
    displayName: 'Maya at Lumen',
    defaultSignatureId: 'sig-maya',
  });
  await d.repos.clients.create(SID, 'client-1', {
    id: 'client-1',
    firstName: '<script>alert(1)</script>',
    lastName: 'Núñez',
    emails: [{ address: 'jose@example.test', primary: true }],
  });
  await d.repos.clients.create(SID, 'client-2', {
    id: 'client-2',
    firstName: '',
    lastName: 'Lee',
    emails: [{ address: 'lee@example.test' }],
  });
  await d.repos.clients.create(SID, 'client-3', { id: 'client-3', firstName: 'No', lastName: 'Mail' });
  await d.repos.formLetters.create(SID, 'fl-ready', {
    id: 'fl-ready',
    name: 'Gallery ready',
    kind: 'html-email',
    subject: 'Your gallery is ready, {{client.firstName|friend}}',
    html: '<p>Dear {{client.firstName|there}} {{client.lastName}},</p><p>{{studio.name}}, {{date.today}}</p>',
    text: 'Dear {{client.firstName|there}} {{client.lastName}},\n{{studio.name}}, {{date.today}}',
  });
  await d.repos.formLetters.create(SID, 'fl-typos', {
    id: 'fl-typos',
    name: 'Typos',
    kind: 'form-letter',
    subject: 'Hello {{client.firstname}}',
    text: '{{client.nickname}} {{studio.fax}} {{client.nickname}}',
  });
  call = sendApi(d, {
    policy: trusting(smtp),
    retry: { sleep: sleep.sleep },
    probe: false,
  });
});

afterAll(async () => {
  await smtp?.stop();
});

beforeEach(() => {
  smtp.reset();
  sleep.delays.length = 0;
});

async function lastReceived() {
  const m = smtp.messages.at(-1);
  if (!m) throw new Error('nothing received');
  return simpleParser(m.raw);
}

describe('POST /emails to a client with a form letter', () => {
  it("goes to the client's primary address with merge fields escaped in HTML and plain in text", async () => {
    // Act
    const res = await call('POST', '/emails', {
      token: USER,
      body: { clientId: 'client-1', formLetterId: 'fl-ready' },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(smtp.messages[0]?.envelope.to).toEqual(['jose@example.test']);
    const mail = await lastReceived();
    expect(mail.subject).toBe('Your gallery is ready, <script>alert(1)</script>');
    expect(mail.html).toContain('<p>Dear &lt;script&gt;alert(1)&lt;/script&gt; Núñez,</p>');
    expect(mail.html).not.toContain('<script>');
    expect(mail.text).toContain('Dear <script>alert(1)</script> Núñez,');
    expect(mail.text).toMatch(/Lumen Photo Studio, \w+ \d{1,2}, \d{4}/);
    const to = Array.isArray(mail.to) ? mail.to[0] : mail.to;
    expect(to?.value[0]).toEqual({ address: 'jose@example.test', name: '<script>alert(1)</script> Núñez' });
  });

  it('uses the fallback where the client has no first name', async () => {
    // Act
    const res = await call('POST', '/emails', {
      token: USER,
      body: { clientId: 'client-2', formLetterId: 'fl-ready' },
    });
    // Assess
    expect(res.status).toBe(200);
    const mail = await lastReceived();
    expect(mail.subject).toBe('Your gallery is ready, friend');
    expect(mail.text).toContain('Dear there Lee,');
    expect(smtp.messages[0]?.envelope.to).toEqual(['lee@example.test']);
  });

  it('refuses unknown merge fields with all their names, sending and recording nothing', async () => {
    // Act
    const res = await call('POST', '/emails', {
      token: USER,
      body: { clientId: 'client-1', formLetterId: 'fl-typos' },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('{{client.firstname}}, {{client.nickname}}, {{studio.fax}}');
    expect(res.body.error.fields).toEqual([
      { field: 'formLetter.subject', message: expect.stringContaining('did you mean {{client.firstName}}') },
      { field: 'formLetter.text', message: expect.stringContaining('{{client.nickname}}') },
      { field: 'formLetter.text', message: expect.stringContaining('{{studio.fax}}') },
    ]);
    expect(smtp.mailFromCount()).toBe(0);
    expect((await d.repos.messages.listForClient(SID, 'client-1')).items).toHaveLength(1);
  });

  it('refuses a client without an address, and a form letter together with a subject', async () => {
    // Act
    const noAddress = await call('POST', '/emails', {
      token: USER,
      body: { clientId: 'client-3', subject: 's', text: 't' },
    });
    const both = await call('POST', '/emails', {
      token: USER,
      body: { clientId: 'client-1', formLetterId: 'fl-ready', subject: 'x' },
    });
    const nobody = await call('POST', '/emails', { token: USER, body: { subject: 's', text: 't' } });
    const unknownClient = await call('POST', '/emails', {
      token: USER,
      body: { clientId: 'nope', subject: 's', text: 't' },
    });
    // Assess
    expect(noAddress.status).toBe(400);
    expect(noAddress.body.error.fields[0].field).toBe('clientId');
    expect(both.body.error.fields[0].field).toBe('subject');
    expect(nobody.body.error.fields[0].field).toBe('to');
    expect(unknownClient.body.error.fields[0].field).toBe('clientId');
    expect(smtp.mailFromCount()).toBe(0);
  });
});

describe('signatures', () => {
  it('appends the company default to both versions for a user without their own', async () => {
    // Act
    await call('POST', '/emails', {
      token: USER,
      body: { to: ['a@example.test'], subject: 's', html: '<p>Hi</p>' },
    });
    // Assess
    const mail = await lastReceived();
    expect(mail.html).toContain('<div class="signature"><p>Lumen Photo Studio · 555-0100</p></div>');
    expect(mail.text).toContain('\n-- \nLumen Photo Studio · 555-0100');
  });

  it("uses the user's own default over the company's, and sends from the user's address", async () => {
    // Act
    await call('POST', '/emails', {
      token: 'dev:studio-1:user-2:',
      body: { to: ['a@example.test'], subject: 's', text: 'Hi' },
    });
    // Assess
    const mail = await lastReceived();
    expect(mail.text?.trimEnd()).toBe('Hi\n\n-- \nMaya Ortiz, Lead Photographer');
    expect(mail.html).toBeFalsy();
    expect(mail.from?.value[0]).toEqual({ address: 'maya@lumen.test', name: 'Maya at Lumen' });
    expect(smtp.messages[0]?.envelope.from).toBe('maya@lumen.test');
  });

  it('uses the signature the request picks, or none for null', async () => {
    // Act
    await call('POST', '/emails', {
      token: USER,
      body: { to: ['a@example.test'], subject: 's', text: 'Hi', signatureId: 'sig-plain' },
    });
    const picked = await lastReceived();
    await call('POST', '/emails', {
      token: USER,
      body: { to: ['a@example.test'], subject: 's', text: 'Hi', signatureId: null },
    });
    const none = await lastReceived();
    const missing = await call('POST', '/emails', {
      token: USER,
      body: { to: ['a@example.test'], subject: 's', text: 'Hi', signatureId: 'gone' },
    });
    // Assess
    expect(picked.text?.trimEnd()).toBe('Hi\n\n-- \nCheers');
    expect(none.text?.trimEnd()).toBe('Hi');
    expect(missing.status).toBe(400);
    expect(missing.body.error.fields[0].field).toBe('signatureId');
  });
});

describe('POST /emails/preview', () => {
  it('renders exactly what would be sent, without sending or recording', async () => {
    // Act
    const res = await call('POST', '/emails/preview', {
      token: USER,
      body: { clientId: 'client-2', formLetterId: 'fl-ready' },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      from: { address: 'hello@lumen.test', name: 'Lumen Photo' },
      to: [{ address: 'lee@example.test', name: 'Lee' }],
      subject: 'Your gallery is ready, friend',
      signatureId: 'sig-company',
      clientId: 'client-2',
      transport: 'smtp',
    });
    expect(res.body.mergeFields).toEqual([
      'client.firstName',
      'client.lastName',
      'studio.name',
      'date.today',
      'studio.phone',
    ]);
    expect(res.body.text).toContain('Dear there Lee,');
    expect(smtp.mailFromCount()).toBe(0);
    expect((await d.repos.messages.listForClient(SID, 'client-2')).items).toHaveLength(1);
  });

  it('makes the text version of any HTML, even with an entity that is no character (was a 500)', async () => {
    // Act
    const res = await call('POST', '/emails/preview', {
      token: USER,
      body: {
        to: ['a@example.test'],
        subject: 's',
        html: '<p>Price &#99999999; &#x20AC;5</p>',
        signatureId: null,
      },
    });
    // Assess
    expect(res.status).toBe(200);
    // The HTML standard reads a number that is no character as U+FFFD.
    expect(res.body.text).toBe('Price \uFFFD €5');
  });

  it('refuses unknown merge fields the same way', async () => {
    // Act
    const res = await call('POST', '/emails/preview', {
      token: USER,
      body: { to: ['a@example.test'], subject: '{{x.y}}', text: 't' },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('{{x.y}}');
  });
});

describe('recipients and headers', () => {
  it('refuses a line break in a recipient name with a 400 naming it (issue 12), sending nothing', async () => {
    // Act
    const res = await call('POST', '/emails', {
      token: USER,
      body: {
        to: [{ address: 'ann@example.test', name: 'Ann\r\nBcc: evil@example.test' }],
        subject: 'Proofs',
        text: 'Ready.',
      },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.fields.map((f: { field: string }) => f.field)).toEqual(['to.0.name']);
    expect(smtp.messages).toHaveLength(0);
  });

  it('puts Bcc in the envelope only, and keeps a line break in the subject from starting a header', async () => {
    // Act
    const res = await call('POST', '/emails', {
      token: USER,
      body: {
        to: [{ address: 'ann@example.test', name: 'Ann' }],
        cc: ['cc@example.test'],
        bcc: ['hidden@example.test'],
        subject: 'Proofs\r\nX-Injected: yes',
        text: 'Ready.',
      },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(smtp.messages).toHaveLength(1);
    const received = smtp.messages[0]!;
    expect(received.envelope.to).toEqual(['ann@example.test', 'cc@example.test', 'hidden@example.test']);
    const headerLines = received.raw.toString('latin1').split('\r\n\r\n')[0]!.split('\r\n');
    expect(headerLines.filter((l) => /^(bcc|x-injected):/i.test(l))).toEqual([]);
    expect(received.raw.toString('latin1')).not.toContain('hidden@example.test');
    const mail = await lastReceived();
    expect(mail.subject).toBe('Proofs X-Injected: yes');
    expect(mail.bcc).toBeUndefined();
  });
});

describe('threading', () => {
  it('puts a reply in the thread of the message it answers, with In-Reply-To and References', async () => {
    // Prepare
    const first = await call('POST', '/emails', {
      token: USER,
      body: { clientId: 'client-2', subject: 'Session', text: 'When?' },
    });
    const second = await call('POST', '/emails', {
      token: USER,
      body: { clientId: 'client-2', subject: 'Re: Session', text: 'Friday', inReplyTo: first.body.id },
    });
    // Act
    const third = await call('POST', '/emails', {
      token: USER,
      body: {
        to: ['lee@example.test'],
        subject: 'Re: Session',
        text: 'Confirmed',
        inReplyTo: second.body.messageId,
      },
    });
    // Assess
    expect(second.body.threadId).toBe(first.body.threadId);
    expect(third.body.threadId).toBe(first.body.threadId);
    expect(third.body.clientId).toBe('client-2');
    const mail = await lastReceived();
    expect(mail.inReplyTo).toBe(second.body.messageId);
    expect(mail.references).toEqual([first.body.messageId, second.body.messageId]);
    const thread = await d.repos.messages.listThread(SID, first.body.threadId);
    expect(thread.map((m) => m.id).sort()).toEqual([first.body.id, second.body.id, third.body.id].sort());
  });

  it('refuses an inReplyTo that names no message', async () => {
    // Act
    const res = await call('POST', '/emails', {
      token: USER,
      body: { to: ['a@example.test'], subject: 's', text: 't', inReplyTo: 'nope' },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].field).toBe('inReplyTo');
  });
});

describe('failures and retries', () => {
  it('retries a temporary 4xx with backoff and then delivers', async () => {
    // Prepare
    smtp.fail({ temporary: { code: 451, message: '4.7.1 Greylisted, try again', times: 2 } });
    // Act
    const res = await call('POST', '/emails', {
      token: USER,
      body: { to: ['a@example.test'], subject: 's', text: 't' },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.attempts).toBe(3);
    expect(sleep.delays).toEqual([200, 400]);
    expect(smtp.mailFromCount()).toBe(3);
    expect(smtp.messages).toHaveLength(1);
  });

  it('gives up after three temporary refusals with 502 and a retryable diagnosis, recorded as failed', async () => {
    // Prepare
    smtp.fail({ temporary: { code: 421, message: '4.3.2 Service shutting down', times: 10 } });
    // Act
    const res = await call('POST', '/emails', {
      token: USER,
      body: { clientId: 'client-2', subject: 's', text: 't' },
    });
    // Assess
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ ok: false, attempts: 3, recorded: true });
    expect(res.body.diagnosis).toMatchObject({ kind: 'temporary', retryable: true, serverCode: 421 });
    expect(smtp.mailFromCount()).toBe(3);
    expect((await d.repos.messages.require(SID, res.body.id)).status).toBe('failed');
  });

  it("fails a 5xx on DATA at once with the server's words, keeping the attempt on the client record", async () => {
    // Prepare
    smtp.fail({ rejectData: { code: 554, message: '5.6.0 Message content rejected' } });
    // Act
    const res = await call('POST', '/emails', {
      token: USER,
      body: { clientId: 'client-2', subject: 's', text: 't' },
    });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.attempts).toBe(1);
    expect(res.body.diagnosis).toMatchObject({
      field: 'message',
      kind: 'message',
      serverCode: 554,
      serverReply: '554 5.6.0 Message content rejected',
    });
    expect(sleep.delays).toEqual([]);
    const record = await d.repos.messages.require(SID, res.body.id);
    expect(record).toMatchObject({ status: 'failed', clientId: 'client-2', direction: 'out' });
    expect(record.error).toContain('554 5.6.0 Message content rejected');
    expect(await d.blobs.exists(record.rawKey)).toBe(true);
  });
});

describe('SES throttling', () => {
  let stub: SesStub;
  let sesCall: Call;

  beforeAll(async () => {
    stub = await startSesStub();
    const sd = await depsWithSes(stub.endpoint, 1);
    await seedCompany(sd, { method: 'ses' });
    sesCall = sendApi(sd, { retry: { sleep: sleep.sleep }, probe: false });
  });

  afterAll(async () => {
    await stub?.stop();
  });

  it('is retried, and the email goes once SES takes it', async () => {
    // Prepare
    stub.answer(
      { status: 429, type: 'TooManyRequestsException', message: 'Too many requests' },
      { status: 400, type: 'Throttling', message: 'Maximum sending rate exceeded.' },
    );
    // Act
    const res = await sesCall('POST', '/emails', {
      token: USER,
      body: { to: ['a@example.test'], subject: 's', text: 't' },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.attempts).toBe(3);
    expect(stub.requests).toHaveLength(3);
    expect(sleep.delays).toEqual([200, 400]);
  });

  it('tags a single send for SES events: the studio, kind single and the message record', async () => {
    // Act
    const res = await sesCall('POST', '/emails', {
      token: USER,
      body: { to: ['tagged@example.test'], subject: 's', text: 't' },
    });
    // Assess: SES hands these tags back with its delivery, bounce and complaint events
    const sent = stub.requests.at(-1) as { EmailTags?: { Name: string; Value: string }[] };
    expect(res.status).toBe(200);
    expect(Object.fromEntries((sent.EmailTags ?? []).map((t) => [t.Name, t.Value]))).toEqual({
      studio: expect.any(String),
      kind: 'single',
      message: res.body.id,
    });
  });
});
