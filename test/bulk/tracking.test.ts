import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BulkHarness, bulkHarness, pageClient, SID, seedClients, settle } from './fixtures.ts';

let h: BulkHarness;
beforeAll(async () => {
  h = await bulkHarness();
  await h.d.repos.formLetters.create(SID, 'fl-links', {
    id: 'fl-links',
    name: 'Links',
    kind: 'html-email',
    subject: 'See the gallery',
    html: '<p><a href="https://lumen.test/gallery?a=1&amp;b=2">Gallery</a> <a href="{{unsubscribe.url}}">Unsubscribe</a></p>',
  });
});
afterAll(async () => {
  await h.stop();
});

async function sendOne(id: string, address: string) {
  await seedClients(h.d, [
    { id, firstName: id, emails: [{ address, primary: true }], groups: [id], marketingConsent: true },
  ]);
  const created = await h.call('POST', '/bulk-emails', {
    body: { formLetterId: 'fl-links', selection: { groups: [id] } },
  });
  await settle(h, created.body.id);
  const raw = h.smtp.messages.find((m) => m.envelope.to.includes(address))?.raw;
  return { jobId: created.body.id as string, mail: await simpleParser(raw ?? Buffer.alloc(0)) };
}

describe('SMTP open and click tracking', () => {
  it('is off by default: links stay as written and there is no pixel', async () => {
    // Act
    const { mail } = await sendOne('plain', 'plain@x.test');

    // Assess
    expect(mail.html).toContain('href="https://lumen.test/gallery?a=1&amp;b=2"');
    expect(mail.html).not.toContain('/t/o/');
  });

  it('when on, records opens and clicks through signed endpoints and redirects to the link', async () => {
    // Prepare
    await h.call('PUT', '/settings/bulk-email', { body: { smtpRatePerSecond: 10_000, tracking: true } });
    const { jobId, mail } = await sendOne('tracked', 'tracked@x.test');
    await h.call('PUT', '/settings/bulk-email', { body: { smtpRatePerSecond: 10_000 } });
    const html = mail.html || '';
    const pixel = /src="(https:\/\/api\.lumen\.test\/t\/o\/[^"]+)"/.exec(html)?.[1] ?? '';
    const click = /href="(https:\/\/api\.lumen\.test\/t\/c\/[^"]+)"/.exec(html)?.[1] ?? '';
    const page = pageClient(h);

    // Act
    const opened = await page('GET', new URL(pixel).pathname);
    await page('GET', new URL(pixel).pathname);
    const clicked = await page('GET', new URL(click).pathname);
    const forged = await page('GET', `/t/c/${new URL(click).pathname.split('/').pop()?.replace(/^./, 'x')}`);
    const report = (await h.call('GET', `/bulk-emails/${jobId}/report`)).body;

    // Assess
    expect(html).toContain('/unsubscribe/');
    expect(opened.status).toBe(200);
    expect(opened.headers['content-type']).toBe('image/gif');
    expect(Buffer.from(opened.text, 'base64').subarray(0, 6).toString('latin1')).toBe('GIF89a');
    expect(clicked.status).toBe(302);
    expect(clicked.headers.location).toBe('https://lumen.test/gallery?a=1&b=2');
    expect(forged.status).toBe(404);
    expect(report.events).toMatchObject({ opened: 1, clicked: 1 });
  });
});
