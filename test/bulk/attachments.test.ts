import { createHash, randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachmentBlobKey } from '#lib/bulk/attachments';
import { sendApi } from '#test/send/fixtures';
import { type BulkHarness, bulkHarness, pageClient, SID, seedClients, settle } from './fixtures.ts';

let h: BulkHarness;
beforeAll(async () => {
  h = await bulkHarness();
});
afterAll(async () => {
  await h.stop();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Uploads through the API: POST /attachments, then PUT the bytes to the URL it answered. */
async function upload(filename: string, contentType: string, bytes: Buffer) {
  const started = await h.call('POST', '/attachments', {
    body: { filename, contentType, size: bytes.length },
  });
  const url = new URL(started.body.uploadUrl);
  const put = await pageClient(h)('PUT', `${url.pathname}${url.search}`, {
    body: bytes,
    headers: { 'content-type': 'application/octet-stream' },
  });
  return { ref: { id: started.body.id as string, filename, contentType }, put, started };
}

describe('attachments', () => {
  it('uploads a file through the signed upload URL and refuses the URL for another id', async () => {
    // Prepare
    const bytes = randomBytes(2048);

    // Act
    const { ref, put, started } = await upload('price-list.pdf', 'application/pdf', bytes);
    const forged = await pageClient(h)(
      'PUT',
      `/attachments/other-id/content?${new URL(started.body.uploadUrl).search.slice(1)}`,
      {
        body: bytes,
        headers: { 'content-type': 'application/octet-stream' },
      },
    );

    // Assess
    expect(started.status).toBe(200);
    expect(put.text).toBe('');
    expect(put.status).toBe(204);
    expect(sha(await h.d.blobs.getBuffer(attachmentBlobKey(SID, ref.id)))).toBe(sha(bytes));
    expect(forged.status).toBe(404);
  });

  it("attaches a form letter's automatic attachments and the job's own to every bulk email, intact", async () => {
    // Prepare
    const pdf = randomBytes(300_000);
    const png = randomBytes(40_000);
    const letterFile = await upload('session-prices.pdf', 'application/pdf', pdf);
    const jobFile = await upload('winter.png', 'image/png', png);
    await h.d.repos.formLetters.create(SID, 'fl-prices', {
      id: 'fl-prices',
      name: 'Prices',
      kind: 'form-letter',
      subject: 'Our prices',
      text: 'Dear {{client.firstName}}, our prices are attached.',
      attachments: [letterFile.ref],
    });
    await seedClients(
      h.d,
      [0, 1, 2].map((i) => ({
        id: `att-${i}`,
        firstName: `A${i}`,
        emails: [{ address: `att${i}@x.test`, primary: true }],
        groups: ['att'],
        marketingConsent: true,
      })),
    );
    h.smtp.reset();

    // Act
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-prices', selection: { groups: ['att'] }, attachments: [jobFile.ref] },
    });
    await settle(h, created.body.id);

    // Assess
    expect(h.smtp.messages).toHaveLength(3);
    for (const m of h.smtp.messages) {
      const mail = await simpleParser(m.raw);
      expect(mail.attachments.map((a) => [a.filename, a.contentType, sha(a.content)])).toEqual([
        ['session-prices.pdf', 'application/pdf', sha(pdf)],
        ['winter.png', 'image/png', sha(png)],
      ]);
    }
  });

  it("attaches a form letter's automatic attachments to a single email and records them on the message", async () => {
    // Prepare
    const bytes = randomBytes(10_000);
    const file = await upload('contract.pdf', 'application/pdf', bytes);
    await h.d.repos.formLetters.create(SID, 'fl-contract', {
      id: 'fl-contract',
      name: 'Contract',
      kind: 'form-letter',
      subject: 'Your contract',
      text: 'Attached.',
      attachments: [file.ref],
    });
    const send = sendApi(h.d, { probe: false });

    // Act
    const res = await send('POST', '/emails', {
      body: { to: ['single-att@x.test'], formLetterId: 'fl-contract' },
    });

    // Assess
    expect(res.status).toBe(200);
    const mail = await simpleParser(h.smtp.messages.at(-1)?.raw ?? Buffer.alloc(0));
    expect(mail.attachments.map((a) => [a.filename, sha(a.content)])).toEqual([['contract.pdf', sha(bytes)]]);
    const record = await h.d.repos.messages.require(SID, res.body.id);
    expect(record.attachments).toEqual([
      {
        filename: 'contract.pdf',
        contentType: 'application/pdf',
        size: 10_000,
        blobKey: attachmentBlobKey(SID, file.ref.id),
      },
    ]);
  });

  it('refuses an attachment that names no upload, and a message larger than the provider takes, before sending', async () => {
    // Prepare
    const send = sendApi(h.d, { probe: false });
    const big = randomBytes(19 * 1024 * 1024);
    await h.d.blobs.put(attachmentBlobKey(SID, 'big'), big);
    const before = h.smtp.messages.length;

    // Act
    const missing = await send('POST', '/emails', {
      body: { to: ['a@x.test'], subject: 'x', text: 'y', attachments: [{ id: 'nope', filename: 'n.pdf' }] },
    });
    const tooBig = await send('POST', '/emails', {
      body: {
        to: ['a@x.test'],
        subject: 'x',
        text: 'y',
        attachments: [{ id: 'big', filename: 'video.mov' }],
      },
    });

    // Assess
    expect(missing.status).toBe(400);
    expect(missing.body.error.fields[0].field).toBe('attachments[0]');
    expect(tooBig.status).toBe(400);
    expect(tooBig.body.error.fields[0].field).toBe('attachments');
    // 19 MB encodes to about 26 MB: over the 25 MB an SMTP server is assumed to take.
    expect(tooBig.body.error.fields[0].message).toMatch(/takes at most 25\.0 MB/);
    expect(h.smtp.messages.length).toBe(before);
  });
});
