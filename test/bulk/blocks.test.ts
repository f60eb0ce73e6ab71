import { SESv2Client } from '@aws-sdk/client-sesv2';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bulkEventsFunction } from '#functions/bulk/app';
import { SesQuota } from '#lib/bulk/adapters/ses-quota';
import { lambdaContext } from '#local/http';
import { type SesLocal, startSesLocal } from '#local/ses';
import { sendApi } from '#test/send/fixtures';
import { type BulkHarness, bulkHarness, pageClient, SID, seedClients, settle } from './fixtures.ts';

let h: BulkHarness;
beforeAll(async () => {
  h = await bulkHarness();
});
afterAll(async () => {
  await h.stop();
});

const one = (id: string, address: string) => ({
  id,
  firstName: id,
  emails: [{ address, primary: true }],
  groups: [id],
  marketingConsent: true,
});

async function sendTo(group: string) {
  const created = await h.call('POST', '/bulk-emails', {
    body: { formLetterId: 'fl-news', selection: { groups: [group] } },
  });
  const progress = await settle(h, created.body.id);
  return { id: created.body.id as string, progress };
}

async function unsubscribeUrl(address: string): Promise<string> {
  const raw = h.smtp.messages.find((m) => m.envelope.to.includes(address))?.raw;
  const mail = await simpleParser(raw ?? Buffer.alloc(0));
  const line = mail.headerLines.find((l) => l.key === 'list-unsubscribe')?.line ?? '';
  return /<(https:[^>]+)>/.exec(line.replace(/\r\n\s*/g, ' '))?.[1] ?? '';
}

const pathOf = (url: string) => new URL(url).pathname;

describe('unsubscribe and the block list', () => {
  it('unsubscribes with the one-click POST, and later bulk email skips the address', async () => {
    // Prepare
    await seedClients(h.d, [one('oc', 'oneclick@x.test')]);
    const first = await sendTo('oc');
    const url = await unsubscribeUrl('oneclick@x.test');

    // Act
    const res = await pageClient(h)('POST', pathOf(url), {
      body: 'List-Unsubscribe=One-Click',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const list = await h.call('GET', '/block-list');
    const report = await h.call('GET', `/bulk-emails/${first.id}/report`);
    const preview = await h.call('POST', '/bulk-emails/preview', { body: { selection: { groups: ['oc'] } } });

    // Assess
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('oneclick@x.test');
    expect(list.body.items).toContainEqual(
      expect.objectContaining({
        address: 'oneclick@x.test',
        blocked: true,
        history: [expect.objectContaining({ reason: 'unsubscribed', jobId: first.id })],
      }),
    );
    expect(report.body.unsubscribed).toBe(1);
    expect(preview.body.skipped).toEqual([
      expect.objectContaining({ clientId: 'oc', reason: 'blocked', blockReason: 'unsubscribed' }),
    ]);
  });

  it('shows a confirmation page for the link and refuses a link not signed here', async () => {
    // Prepare
    await seedClients(h.d, [one('pg', 'page@x.test')]);
    await sendTo('pg');
    const url = await unsubscribeUrl('page@x.test');
    const [data, mac] = pathOf(url).replace('/unsubscribe/', '').split('.');
    const forged = `${Buffer.from(JSON.stringify({ s: SID, a: 'someone@x.test', p: 'u' })).toString('base64url')}.${mac}`;

    // Act
    const page = await pageClient(h)('GET', pathOf(url));
    const bad = await pageClient(h)('POST', `/unsubscribe/${forged}`);
    const list = await h.call('GET', '/block-list');

    // Assess
    expect(data).toBeTruthy();
    expect(page.status).toBe(200);
    expect(page.text).toContain('<form method="post">');
    expect(page.text).toContain('page@x.test');
    expect(bad.status).toBe(404);
    expect(list.body.items.map((i: { address: string }) => i.address)).not.toContain('someone@x.test');
    expect(list.body.items.map((i: { address: string }) => i.address)).not.toContain('page@x.test');
  });

  it('reinstates an address, keeping who did it and why', async () => {
    // Prepare
    await h.call('POST', '/block-list', { body: { address: 'back@x.test' } });

    // Act
    const res = await h.call('POST', '/block-list/back@x.test/reinstate', {
      body: { reason: 'Asked us by phone to receive news again.' },
    });
    const active = await h.call('GET', '/block-list');
    const all = await h.call('GET', '/block-list?all=true');

    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ address: 'back@x.test', blocked: false });
    expect(res.body.history.at(-1).reinstated).toMatchObject({
      by: 'admin-1',
      reason: 'Asked us by phone to receive news again.',
    });
    expect(active.body.items.map((i: { address: string }) => i.address)).not.toContain('back@x.test');
    expect(all.body.items.map((i: { address: string }) => i.address)).toContain('back@x.test');
  });

  it('makes single emails skip a blocked address unless the studio bypasses blocks for transactional email', async () => {
    // Prepare
    await h.call('POST', '/block-list', { body: { address: 'single@x.test' } });
    const send = sendApi(h.d, { probe: false });
    const body = { to: ['single@x.test'], subject: 'Your order', text: 'It is ready.' };

    // Act
    const refused = await send('POST', '/emails', { body });
    const mixed = await send('POST', '/emails', { body: { ...body, to: ['single@x.test', 'ok@x.test'] } });
    await h.call('PUT', '/settings/bulk-email', {
      body: { smtpRatePerSecond: 10_000, bypassBlocksForTransactional: true },
    });
    const bypassed = await send('POST', '/emails', { body });
    await h.call('PUT', '/settings/bulk-email', { body: { smtpRatePerSecond: 10_000 } });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.body.error.fields[0].field).toBe('to');
    expect(refused.body.error.fields[0].message).toContain('single@x.test is on the block list (manual)');
    expect(mixed.status).toBe(200);
    expect(h.smtp.messages.at(-2)?.envelope.to).toEqual(['ok@x.test']);
    expect(bypassed.status).toBe(200);
    expect(h.smtp.messages.at(-1)?.envelope.to).toEqual(['single@x.test']);
  });
});

describe('SES events', () => {
  const events = () => bulkEventsFunction(h.d, h.parts);
  const event = (detail: Record<string, unknown>) => ({
    version: '0',
    id: crypto.randomUUID(),
    source: 'aws.ses',
    'detail-type': 'Email Bounced',
    detail,
  });
  const tags = (jobId: string) => ({ studio: [SID], job: [jobId], rcpt: ['R-00001-000000'] });

  it('blocks a hard-bounced address and a complaining one, and counts deliveries for the campaign', async () => {
    // Prepare
    await seedClients(h.d, [one('ev1', 'bounce@x.test')]);
    await seedClients(h.d, [one('ev2', 'complain@x.test')]);
    const bounced = await sendTo('ev1');
    const complained = await sendTo('ev2');
    const handler = events();
    const ctx = lambdaContext('bulk-events', 30_000);

    // Act
    await handler(
      event({ eventType: 'Delivery', mail: { tags: tags(complained.id) }, delivery: {} }) as never,
      ctx,
    );
    const bounce = event({
      eventType: 'Bounce',
      mail: { tags: tags(bounced.id) },
      bounce: {
        bounceType: 'Permanent',
        bouncedRecipients: [
          { emailAddress: 'bounce@x.test', diagnosticCode: 'smtp; 550 5.1.1 user unknown' },
        ],
      },
    });
    await handler(bounce as never, ctx);
    await handler(bounce as never, ctx); // SES may deliver an event twice
    await handler(
      event({
        eventType: 'Complaint',
        mail: { tags: tags(complained.id) },
        complaint: {
          complainedRecipients: [{ emailAddress: 'complain@x.test' }],
          complaintFeedbackType: 'abuse',
        },
      }) as never,
      ctx,
    );
    const list = (await h.call('GET', '/block-list')).body.items;
    const bounceReport = (await h.call('GET', `/bulk-emails/${bounced.id}/report`)).body;
    const complaintReport = (await h.call('GET', `/bulk-emails/${complained.id}/report`)).body;
    const progress = (await h.call('GET', `/bulk-emails/${complained.id}`)).body;

    // Assess
    const byAddress = Object.fromEntries(
      list.map((i: { address: string; history: { reason: string }[] }) => [
        i.address,
        i.history.at(-1)?.reason,
      ]),
    );
    expect(byAddress['bounce@x.test']).toBe('bounced');
    expect(byAddress['complain@x.test']).toBe('complained');
    expect(bounceReport.events).toMatchObject({ bounced: 1 });
    const [bouncedRecipient] = (await h.call('GET', `/bulk-emails/${bounced.id}/recipients`)).body.items;
    const record = await h.d.repos.messages.require(SID, bouncedRecipient.recordId);
    expect(record.error).toBe('Bounced: smtp; 550 5.1.1 user unknown');
    expect(complaintReport.events).toMatchObject({ delivered: 1, complained: 1 });
    expect(complaintReport.rates.delivered).toBe(1);
    expect(progress.delivered).toBe(1);
    const [r] = (await h.call('GET', `/bulk-emails/${complained.id}/recipients`)).body.items;
    expect(Object.keys(r.events).sort()).toEqual(['complained', 'delivered']);
  });
});

describe('through the local SES', () => {
  let ses: SesLocal;
  let sh: BulkHarness;
  beforeAll(async () => {
    process.env.AWS_SES_ACCOUNT = JSON.stringify({
      DedicatedIpAutoWarmupEnabled: false,
      Details: {
        AdditionalContactEmailAddresses: [],
        ContactLanguage: 'EN',
        MailType: 'MARKETING',
        ReviewDetails: { CaseId: '1', Status: 'GRANTED' },
        UseCaseDescription: '',
        WebsiteURL: '',
      },
      EnforcementStatus: 'HEALTHY',
      ProductionAccessEnabled: true,
      SendingEnabled: true,
      SendQuota: { Max24HourSend: 4, MaxSendRate: 1000, SentLast24Hours: 1 },
      SuppressionAttributes: { SuppressedReasons: [] },
    });
    ses = await startSesLocal();
    const { sesTransport } = await import('#lib/adapters/mail');
    const client = new SESv2Client({
      endpoint: ses.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    const transport = sesTransport(client);
    sh = await bulkHarness({
      overrides: { ses: () => transport },
      bulk: { quota: new SesQuota(async () => client) },
    });
    const { seedCompany } = await import('#test/send/fixtures');
    await seedCompany(sh.d, { method: 'ses' });
  });
  afterAll(async () => {
    await sh.stop();
    await ses.stop();
    delete process.env.AWS_SES_ACCOUNT;
  });

  it('sends through SES within what is left of its 24-hour quota, the rest waiting', async () => {
    // Prepare
    await seedClients(
      sh.d,
      Array.from({ length: 5 }, (_, i) => ({ ...one(`ses-${i}`, `ses${i}@x.test`), groups: ['ses'] })),
    );
    const subject = 'News for ses-';

    // Act
    const created = await sh.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', selection: { groups: ['ses'] } },
    });
    const progress = await settle(sh, created.body.id);
    const store = (await (await fetch(ses.storeUrl)).json()) as {
      emails: { subject: string; destination: { to: string[] } }[];
    };

    // Assess
    const sent = store.emails.filter((e) => e.subject.startsWith(subject));
    // Max24HourSend 4 with 1 sent already: 3 go now, 2 wait.
    expect(sent).toHaveLength(3);
    expect(progress.counts).toMatchObject({ sent: 3, queued: 2 });
    expect(progress.waiting).toBe(2);
  });
});
