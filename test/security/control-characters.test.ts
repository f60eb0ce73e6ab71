/**
 * Issue 12, item 5: CR, LF, NUL and the other control characters are refused in names, titles and
 * log-on names with a 400 naming the field (they were stored and failed later, with the wrong
 * advice); In-Reply-To takes only RFC 5322 msg-ids in ASCII, and a reply never copies a hostile
 * id of the mail it answers into its headers.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type Call,
  depsWithSes,
  PASSWORD,
  SID,
  seedCompany,
  sendApi,
  smtpTransportRecord,
  trusting,
} from '#test/send/fixtures';
import { fieldsOf, type SettingsHarness, settingsHarness, unreachableProbe } from '#test/settings/harness';
import type { TestDeps } from '#test/support/api';
import { type SmtpHarness, startSmtpServer } from '#test/support/smtp';

const HOSTILE = [
  ['CR LF', 'Lumen\r\nBcc: victim@example.test'],
  ['LF', 'Lumen\nStudio'],
  ['NUL', 'Lumen\u0000Studio'],
  ['ESC', 'Lumen\u001b[31m'],
  ['NEL', 'Lumen\u0085Studio'],
] as const;

let h: SettingsHarness;
beforeAll(async () => {
  h = await settingsHarness({ probePop3: unreachableProbe });
});
afterAll(() => h.output.restore());

const company = (over: Record<string, unknown> = {}) => ({
  studioName: 'Lumen Studio',
  displayName: 'Lumen Studio',
  emailAddress: 'hello@lumen.test',
  transport: { method: 'ses' },
  ...over,
});
const box = (userName: string) => ({
  id: 'sales',
  description: 'Sales',
  excludeBefore: '2026-01-01',
  connection: {
    type: 'pop3',
    server: 'pop.lumen.test',
    emailAddress: 'sales@lumen.test',
    userName,
    password: 'pw',
  },
});

/** [what, method, path, body with the hostile value, the field the 400 must name] */
const cases = (bad: string): [string, string, string, unknown, string][] => [
  ['company studioName', 'PUT', '/settings/company/email', company({ studioName: bad }), 'studioName'],
  ['company displayName', 'PUT', '/settings/company/email', company({ displayName: bad }), 'displayName'],
  ['user displayName', 'PUT', '/users/me/email-settings', { displayName: bad }, 'displayName'],
  [
    'user firstName',
    'POST',
    '/users',
    { id: 'u-x', firstName: bad, lastName: 'L', email: 'u@lumen.test' },
    'firstName',
  ],
  [
    'user title',
    'POST',
    '/users',
    { id: 'u-x', firstName: 'F', lastName: 'L', email: 'u@lumen.test', title: bad },
    'title',
  ],
  ['client lastName', 'POST', '/clients', { lastName: bad }, 'lastName'],
  ['client firstName', 'POST', '/clients', { lastName: 'L', firstName: bad }, 'firstName'],
  ['client company', 'POST', '/clients', { lastName: 'L', company: bad }, 'company'],
  ['department name', 'POST', '/departments', { name: bad }, 'name'],
  ['form letter subject', 'POST', '/form-letters', { name: 'F', subject: bad, text: 'x' }, 'subject'],
  ['box connection.userName', 'POST', '/email-boxes?verify=false', box(bad), 'connection.userName'],
];

describe('control characters in names', () => {
  for (const [label, bad] of HOSTILE) {
    it.each(cases(bad))(
      `refuses ${label} in the %s with a 400 naming the field, storing nothing`,
      async (_, method, path, body, field) => {
        // Act
        const res = await h.call(method, path, { body });
        // Assess
        expect(res.status).toBe(400);
        expect(fieldsOf(res)).toEqual([field]);
        expect(res.body.error.fields[0].message).toContain('control characters');
      },
    );
  }

  it('still takes names with accents, apostrophes and emoji', async () => {
    // Act
    const res = await h.call('POST', '/clients', {
      body: { firstName: 'Zoë', lastName: "O'Brien-Müller 📷", company: 'Ñandú & Co.' },
    });
    // Assess
    expect(res.status).toBe(201);
  });

  it('refuses a control character in a stored box when it is patched in', async () => {
    // Prepare
    const created = await h.call('POST', '/email-boxes?verify=false', { body: box('sales@lumen.test') });
    expect(created.status).toBe(201);
    const etag = created.headers.etag ?? `"${created.body.version}"`;
    // Act
    const res = await h.call('PATCH', '/email-boxes/sales?verify=false', {
      body: { connection: { userName: 'sales\r\nUSER root', password: 'pw' } },
      headers: { 'content-type': 'application/merge-patch+json', 'if-match': etag },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toEqual(['connection.userName']);
  });
});

describe('In-Reply-To and References', () => {
  let smtp: SmtpHarness;
  let d: TestDeps;
  let call: Call;
  beforeAll(async () => {
    smtp = await startSmtpServer({ mode: 'starttls', users: { alice: PASSWORD } });
    d = await depsWithSes('http://127.0.0.1:9');
    await seedCompany(d, await smtpTransportRecord(d, smtp, 'starttls'));
    call = sendApi(d, { policy: trusting(smtp), retry: { sleep: async () => {} }, probe: false });
  });
  afterAll(async () => {
    await smtp?.stop();
  });
  beforeEach(() => smtp.reset());

  const reply = (inReplyTo: string) => ({
    token: 'dev:studio-1:user-1:',
    body: { to: ['ann@example.test'], subject: 'Re: proofs', text: 'Yes.', inReplyTo },
  });

  it.each([
    ['a NEL inside', '<abc\u0085@lumen.test>'],
    ['a line break', '<abc@lumen.test>\r\nBcc: x@example.test'],
    ['a space', '<a b@lumen.test>'],
    ['8-bit letters', '<ré@lumen.test>'],
    ['no right part', '<abc>'],
    ['two dots', '<a..b@lumen.test>'],
  ])('refuses a Message-ID with %s with a 400 naming inReplyTo, sending nothing', async (_, id) => {
    // Act
    const res = await call('POST', '/emails', reply(id));
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res as never)).toEqual(['inReplyTo']);
    expect(smtp.messages).toHaveLength(0);
  });

  it('answers a Message-ID in RFC 5322 syntax, domain literals included', async () => {
    // Act
    const res = await call('POST', '/emails', reply('<x.1+y@[192.0.2.1]>'));
    // Assess
    expect(res.status).toBe(200);
    expect(smtp.messages[0]?.raw.toString('latin1')).toContain('In-Reply-To: <x.1+y@[192.0.2.1]>');
  });

  it('leaves hostile ids of the mail it answers out of References', async () => {
    // Prepare: imported mail whose References carry an 8-bit line break.
    await d.repos.messages.create(SID, {
      id: 'in-1',
      direction: 'in',
      status: 'imported',
      rawKey: `raw/${SID}/in/in-1.eml`,
      threadId: 'th-1',
      messageId: '<parent@client.test>',
      references: ['<good@client.test>', '<bad\u0085@client.test>', 'junk'],
      from: { address: 'ann@example.test' },
      to: [{ address: 'hello@lumen.test' }],
      cc: [],
      subject: 'Proofs?',
      date: new Date().toISOString(),
      snippet: '',
      attachments: [],
      automatic: false,
    } as never);
    // Act
    const res = await call('POST', '/emails', reply('in-1'));
    // Assess
    expect(res.status).toBe(200);
    const raw = smtp.messages[0]?.raw.toString('latin1') ?? '';
    // The References header exactly (a random Message-ID elsewhere may well contain "bad").
    const references = raw
      .match(/^References:(.*(?:\r\n[ \t].*)*)/m)?.[1]
      ?.replace(/\s+/g, ' ')
      .trim();
    expect(references).toBe('<good@client.test> <parent@client.test>');
    expect(raw).not.toContain('@client.test>\u0085');
    expect(raw).not.toMatch(/\bjunk\b/);
  });
});
