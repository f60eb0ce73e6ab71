import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrivals, type BulkHarness, bulkHarness, consenting, SID, seedClients, settle } from './fixtures.ts';

let h: BulkHarness;

beforeAll(async () => {
  h = await bulkHarness();
});
afterAll(async () => {
  await h.stop();
});

describe('bulk email job path', () => {
  it('previews a selection with each skipped client and why', async () => {
    // Prepare
    await seedClients(h.d, [
      {
        id: 'p-ok',
        firstName: 'Ana',
        lastName: 'Ok',
        emails: [{ address: 'ana@x.test', primary: true }],
        groups: ['vip'],
        marketingConsent: true,
      },
      { id: 'p-none', firstName: 'No', lastName: 'Address', groups: ['vip'], marketingConsent: true },
      {
        id: 'p-noconsent',
        firstName: 'No',
        lastName: 'Consent',
        emails: [{ address: 'nc@x.test', primary: true }],
        groups: ['vip'],
      },
      {
        id: 'p-dup',
        firstName: 'Dup',
        lastName: 'Zed',
        emails: [{ address: 'ANA@x.test', primary: true }],
        groups: ['vip'],
        marketingConsent: true,
      },
      {
        id: 'p-blocked',
        firstName: 'Bo',
        lastName: 'Blocked',
        emails: [{ address: 'blocked@x.test', primary: true }],
        groups: ['vip'],
        marketingConsent: true,
      },
      {
        id: 'p-other',
        firstName: 'Other',
        lastName: 'Group',
        emails: [{ address: 'other@x.test', primary: true }],
        groups: ['else'],
        marketingConsent: true,
      },
    ]);
    await h.call('POST', '/block-list', { body: { address: 'blocked@x.test' } });

    // Act
    const res = await h.call('POST', '/bulk-emails/preview', { body: { selection: { groups: ['vip'] } } });

    // Assess
    expect(res.status).toBe(200);
    expect(res.body.recipients).toEqual([{ clientId: 'p-ok', name: 'Ana Ok', address: 'ana@x.test' }]);
    const reasons = Object.fromEntries(
      res.body.skipped.map((s: { clientId: string; reason: string }) => [s.clientId, s.reason]),
    );
    expect(reasons).toEqual({
      'p-none': 'no-address',
      'p-noconsent': 'no-marketing-consent',
      'p-dup': 'duplicate-address',
      'p-blocked': 'blocked',
    });
  });

  it('selects by status and by a saved field filter', async () => {
    // Prepare
    await seedClients(h.d, [
      {
        id: 's-1',
        firstName: 'Sam',
        lastName: 'Active',
        status: 'active',
        company: 'Acme',
        emails: [{ address: 's1@x.test' }],
        marketingConsent: true,
      },
      {
        id: 's-2',
        firstName: 'Sue',
        lastName: 'Active',
        status: 'active',
        company: 'Other',
        emails: [{ address: 's2@x.test' }],
        marketingConsent: true,
      },
      {
        id: 's-3',
        firstName: 'Sid',
        lastName: 'Lapsed',
        status: 'lapsed',
        company: 'Acme',
        emails: [{ address: 's3@x.test' }],
        marketingConsent: true,
      },
    ]);
    await h.call('PUT', '/client-filters/acme', {
      body: { name: 'Acme people', conditions: [{ field: 'company', op: 'equals', value: 'acme' }] },
    });

    // Act
    const res = await h.call('POST', '/bulk-emails/preview', {
      body: { selection: { statuses: ['active'], filterId: 'acme' } },
    });

    // Assess
    expect(res.body.recipients.map((r: { clientId: string }) => r.clientId)).toEqual(['s-1']);
  });

  it('sends 1,000 recipients, each delivered exactly once, and reports the job completed', async () => {
    // Prepare
    const clients = await seedClients(
      h.d,
      consenting(1000, 'thousand').map((c, i) => ({ ...c, id: `k-${i}` })),
    );
    h.smtp.reset();

    // Act
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', selection: { groups: ['thousand'] }, name: 'December news' },
    });
    const progress = await settle(h, created.body.id);

    // Assess
    expect(created.status).toBe(202);
    expect(created.body.total).toBe(1000);
    const seen = arrivals(h.smtp);
    expect(seen.size).toBe(1000);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(seen.keys())).toEqual(new Set(clients.map((c) => c.emails[0]?.address)));
    expect(progress.status).toBe('completed');
    expect(progress.counts).toMatchObject({ sent: 1000, queued: 0, sending: 0, failed: 0, unknown: 0 });
  });

  it('personalises each email and adds one-click unsubscribe headers', async () => {
    // Prepare
    await seedClients(h.d, [
      {
        id: 'u-1',
        firstName: 'Lucía',
        lastName: 'Pérez',
        emails: [{ address: 'lucia@x.test' }],
        marketingConsent: true,
      },
    ]);
    h.smtp.reset();

    // Act
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', recipients: ['u-1'] },
    });
    await settle(h, created.body.id);

    // Assess
    const mail = await simpleParser(h.smtp.messages[0]?.raw ?? Buffer.alloc(0));
    const unsubscribe = mail.headerLines.find((l) => l.key === 'list-unsubscribe-post')?.line;
    expect(mail.headerLines.find((l) => l.key === 'list-unsubscribe')?.line.replace(/\r\n\s*/g, ' ')).toMatch(
      /^List-Unsubscribe: <https:\/\/api\.lumen\.test\/unsubscribe\/[\w-]+\.[\w-]+>$/,
    );
    expect(unsubscribe).toBe('List-Unsubscribe-Post: List-Unsubscribe=One-Click');
    expect(mail.text).toContain('Dear Lucía Pérez');
    expect(mail.subject).toBe('News for Lucía');
  });

  it('lists jobs and pages per-recipient results', async () => {
    // Prepare
    await seedClients(
      h.d,
      consenting(7, 'paged').map((c, i) => ({
        ...c,
        id: `pg-${i}`,
        emails: [{ address: `pg${i}@x.test`, primary: true }],
      })),
    );
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', selection: { groups: ['paged'] } },
    });
    await settle(h, created.body.id);

    // Act
    const first = await h.call('GET', `/bulk-emails/${created.body.id}/recipients?limit=5&state=sent`);
    const second = await h.call(
      'GET',
      `/bulk-emails/${created.body.id}/recipients?limit=5&state=sent&cursor=${first.body.nextCursor}`,
    );
    const list = await h.call('GET', '/bulk-emails?limit=50');

    // Assess
    expect(first.body.items).toHaveLength(5);
    expect(second.body.items).toHaveLength(2);
    expect(second.body.nextCursor).toBeUndefined();
    expect(first.body.items[0]).toMatchObject({ state: 'sent', clientId: 'pg-0' });
    expect(first.body.items[0].claim).toBeUndefined();
    expect(list.body.items.map((j: { id: string }) => j.id)).toContain(created.body.id);
  });

  it('records each sent email on the client record', async () => {
    // Prepare
    await seedClients(h.d, [
      {
        id: 'rec-1',
        firstName: 'Rec',
        lastName: 'Orded',
        emails: [{ address: 'rec@x.test' }],
        marketingConsent: true,
      },
    ]);

    // Act
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', recipients: ['rec-1'] },
    });
    await settle(h, created.body.id);

    // Assess
    const [r] = (await h.call('GET', `/bulk-emails/${created.body.id}/recipients`)).body.items;
    const record = await h.d.repos.messages.get(SID, r.recordId);
    expect(record).toMatchObject({
      clientId: 'rec-1',
      direction: 'out',
      status: 'sent',
      subject: 'News for Rec',
    });
  });

  it('answers a retried POST with the same Idempotency-Key with the first job, starting no second campaign', async () => {
    // Prepare
    await seedClients(h.d, [
      {
        id: 'idem-1',
        firstName: 'Ida',
        emails: [{ address: 'ida@x.test', primary: true }],
        groups: ['idem'],
        marketingConsent: true,
      },
    ]);
    const request = {
      body: { formLetterId: 'fl-news', selection: { groups: ['idem'] } },
      headers: { 'idempotency-key': 'campaign-42' },
    };

    // Act
    const first = await h.call('POST', '/bulk-emails', request);
    const again = await h.call('POST', '/bulk-emails', request);
    await settle(h, first.body.id);

    // Assess
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(h.smtp.messages.filter((m) => m.envelope.to.includes('ida@x.test'))).toHaveLength(1);
  });
});
