import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settingsFunction } from '#functions/settings/app';
import { settingsRoutes } from '#functions/settings/routes';
import { LocalBlobStore, serveLocalDownload } from '#lib/adapters/local/blobs';
import type { EmailBox } from '#lib/domain/model';
import { apiClient, testDeps, tokens } from '#test/support/api';
import { bigAttachmentMail, bigTextMail, rawMail } from '#test/support/mail';
import { startPop3Proxy } from '#test/support/pop3-proxy';
import { inboxFixture, sid } from './support.ts';

/** The local runner's download route, on a port of its own; the store signs links to it. */
const blobs = new LocalBlobStore(join('/tmp', `studio-mail-box-views-${process.pid}`));
let server: Server;
const { ctx, makeBox, poll } = inboxFixture(async () => {
  server = createServer((req, res) => void serveLocalDownload(blobs, req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  blobs.baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return testDeps({ blobs });
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

let call: ReturnType<typeof apiClient>;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const download = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
};

beforeAll(() => {
  const handler = settingsFunction(ctx.d, {
    probePop3: async () => {
      throw new Error('no connection test here');
    },
  });
  call = apiClient(handler, settingsRoutes, 'settings');
});

describe('GET /email-boxes/{id}/messages', () => {
  it('lists what became of each mail: imported, quarantined, excluded and duplicate, each on its own', async () => {
    // Prepare: one of each, from a real poll.
    const { box, deliver } = await makeBox({ excludeBefore: '2026-01-01' });
    const twice = rawMail({ subject: 'sent twice' });
    await deliver(twice);
    await deliver(twice);
    await deliver(Buffer.from('\x00\x01garbage without any header\r\n\r\nreally\r\n', 'latin1'));
    await deliver(rawMail({ subject: 'too old', date: 'Tue, 01 Dec 2025 10:00:00 +0000' }));
    await deliver(rawMail({ subject: 'second' }));
    await poll(box.id);
    const list = (state?: string) =>
      call('GET', `/email-boxes/${box.id}/messages${state ? `?state=${state}` : ''}`, { token: tokens.user });
    // Act
    const [imported, quarantined, excluded, duplicate] = await Promise.all([
      list(),
      list('quarantined'),
      list('excluded'),
      list('duplicate'),
    ]);
    // Assess
    expect(imported.status).toBe(200);
    expect(
      imported.body.items.map((e: { message: { subject: string } }) => e.message.subject).sort(),
    ).toEqual(['second', 'sent twice']);
    expect(quarantined.body.items).toHaveLength(1);
    expect(quarantined.body.items[0]).toMatchObject({
      state: 'quarantined',
      message: { status: 'quarantined' },
    });
    expect(excluded.body.items).toEqual([
      { state: 'excluded', date: expect.any(String), uidl: expect.any(String) },
    ]);
    const original = imported.body.items.find(
      (e: { message: { subject: string } }) => e.message.subject === 'sent twice',
    );
    expect(duplicate.body.items).toEqual([
      {
        state: 'duplicate',
        date: expect.any(String),
        uidl: expect.any(String),
        duplicateOf: original.message.id,
      },
    ]);
  });

  it('lists mail quarantined on its marker (refused three runs, never retrieved) with the reason', async () => {
    // Prepare: a server that refuses every RETR, through the test proxy.
    const proxy = await startPop3Proxy({
      target: { host: '127.0.0.1', port: ctx.dovecot.pop3Port },
      refuse: ['RETR'],
    });
    try {
      const { box, deliver } = await makeBox({
        connection: { ssl: false, port: proxy.port } as EmailBox['connection'],
      });
      await deliver(rawMail({ subject: 'never sent whole' }));
      for (let run = 0; run < 3; run++) await poll(box.id);
      // Act
      const quarantined = await call('GET', `/email-boxes/${box.id}/messages?state=quarantined`, {
        token: tokens.user,
      });
      const fourth = await poll(box.id);
      // Assess
      expect(quarantined.status).toBe(200);
      expect(quarantined.body.items).toHaveLength(1);
      expect(quarantined.body.items[0]).toMatchObject({ state: 'quarantined', uidl: expect.any(String) });
      expect(quarantined.body.items[0].message).toBeUndefined();
      expect(quarantined.body.items[0].reason).toMatch(/refused/);
      expect(fourth.run?.counts).toMatchObject({ seen: 1, skipped: 1, quarantined: 0 });
    } finally {
      await proxy.close();
    }
  });

  it('pages with a cursor, and names the field of a bad state or an unknown box', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    for (let i = 0; i < 3; i++) await deliver(rawMail({ subject: `page ${i}` }));
    await poll(box.id);
    // Act
    const first = await call('GET', `/email-boxes/${box.id}/messages?limit=2`);
    const second = await call(
      'GET',
      `/email-boxes/${box.id}/messages?limit=2&cursor=${first.body.nextCursor}`,
    );
    const bad = await call('GET', `/email-boxes/${box.id}/messages?state=deleted`);
    const unknown = await call('GET', '/email-boxes/nope/messages');
    // Assess
    expect(first.body.items).toHaveLength(2);
    expect(second.body.items).toHaveLength(1);
    expect(second.body.nextCursor).toBeUndefined();
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields[0]).toMatchObject({ field: 'state' });
    expect(unknown.status).toBe(404);
  });
});

describe('downloads of a message and its attachments', () => {
  it('gives short-lived links that answer the exact raw bytes and the exact attachment bytes', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    const { raw, sha256, size } = bigAttachmentMail(1);
    await deliver(raw);
    await poll(box.id);
    const [entry] = (await call('GET', `/email-boxes/${box.id}/messages`)).body.items;
    const id = entry.message.id;
    // Act
    const rawLink = await call('GET', `/messages/${id}/raw`, { token: tokens.user });
    const partLink = await call('GET', `/messages/${id}/attachments/0`, { token: tokens.user });
    const rawFile = await download(rawLink.body.url);
    const partFile = await download(partLink.body.url);
    // Assess
    expect(rawLink.status).toBe(200);
    expect(rawLink.body).toMatchObject({ filename: `${id}.eml`, contentType: 'message/rfc822' });
    expect(Date.parse(rawLink.body.expiresAt)).toBeGreaterThan(Date.now());
    expect(rawFile.status).toBe(200);
    expect(sha(rawFile.bytes)).toBe(sha(raw));
    expect(partLink.body).toMatchObject({
      filename: 'shoot.raw',
      contentType: 'application/octet-stream',
      size,
    });
    expect(partFile.bytes.length).toBe(size);
    expect(sha(partFile.bytes)).toBe(sha256);
    expect(partFile.headers.get('content-disposition')).toContain('filename="shoot.raw"');
  });

  it('gives a link to a body streamed to the blob store whole, and refuses a body the message lacks', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    const { raw, sha256, size } = bigTextMail(3);
    await deliver(raw);
    await poll(box.id);
    const [entry] = (await call('GET', `/email-boxes/${box.id}/messages`)).body.items;
    const id = entry.message.id;
    // Act
    const textLink = await call('GET', `/messages/${id}/body/text`, { token: tokens.user });
    const text = await download(textLink.body.url);
    const html = await call('GET', `/messages/${id}/body/html`);
    const bad = await call('GET', `/messages/${id}/body/pdf`);
    // Assess
    expect(textLink.status).toBe(200);
    expect(textLink.body).toMatchObject({ filename: `${id}.txt`, contentType: 'text/plain; charset=utf-8' });
    expect(entry.message.snippet.length).toBeLessThanOrEqual(200);
    expect(text.bytes.length).toBe(size);
    expect(sha(text.bytes)).toBe(sha256);
    expect(html.status).toBe(404);
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields[0].field).toBe('part');
  });

  it('refuses a forged or expired link, and a missing attachment', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    await deliver(rawMail({ subject: 'no attachment' }));
    await poll(box.id);
    const [entry] = (await call('GET', `/email-boxes/${box.id}/messages`)).body.items;
    const link = (await call('GET', `/messages/${entry.message.id}/raw`)).body.url as string;
    const expired = await blobs.downloadUrl(entry.message.rawKey, { expiresInSeconds: -1 });
    // Act
    const forged = await download(link.replace(/key=[^&]+/, `key=${encodeURIComponent('raw/other.eml')}`));
    const late = await download(expired);
    const missing = await call('GET', `/messages/${entry.message.id}/attachments/0`);
    const notANumber = await call('GET', `/messages/${entry.message.id}/attachments/first`);
    // Assess
    expect(forged.status).toBe(403);
    expect(late.status).toBe(403);
    expect(late.bytes.toString()).toMatch(/expired/);
    expect(missing.status).toBe(404);
    expect(notANumber.status).toBe(400);
    expect(notANumber.body.error.fields[0].field).toBe('index');
  });
});

describe('GET /tasks filters', () => {
  it('filters by client, status, assignee and box, together, and pages through a selective filter', async () => {
    // Prepare: 30 tasks, of which every tenth is Mia's open task for Ana from the sales box.
    for (let i = 0; i < 30; i++) {
      const hit = i % 10 === 0;
      await ctx.d.repos.tasks.create(sid, {
        id: `tf-${i}`,
        title: `task ${i}`,
        clientId: hit ? 'c-mia' : `c-${i}`,
        statusId: hit ? 'open' : 'done',
        userId: hit || i % 2 === 0 ? 'ana' : 'ben',
        boxId: hit || i % 3 === 0 ? 'sales' : 'info',
      });
    }
    const ids = (body: { items: { id: string }[] }) => body.items.map((t) => t.id).sort();
    // Act
    const byClient = await call('GET', '/tasks?clientId=c-mia');
    const byAll = await call('GET', '/tasks?clientId=c-mia&statusId=open&userId=ana&boxId=sales');
    const byUser = await call('GET', '/tasks?userId=ben&limit=100');
    const byBox = await call('GET', '/tasks?boxId=sales&statusId=done&limit=100');
    const firstPage = await call('GET', '/tasks?statusId=open&limit=2');
    const nextPage = await call('GET', `/tasks?statusId=open&limit=2&cursor=${firstPage.body.nextCursor}`);
    const empty = await call('GET', '/tasks?clientId=');
    // Assess
    expect(ids(byClient.body)).toEqual(['tf-0', 'tf-10', 'tf-20']);
    expect(ids(byAll.body)).toEqual(['tf-0', 'tf-10', 'tf-20']);
    expect(byUser.body.items).toHaveLength(15);
    expect(byUser.body.items.every((t: { userId: string }) => t.userId === 'ben')).toBe(true);
    expect(ids(byBox.body)).toEqual([
      'tf-12',
      'tf-15',
      'tf-18',
      'tf-21',
      'tf-24',
      'tf-27',
      'tf-3',
      'tf-6',
      'tf-9',
    ]);
    expect(firstPage.body.items).toHaveLength(2);
    expect([...ids(firstPage.body), ...ids(nextPage.body)].sort()).toEqual(['tf-0', 'tf-10', 'tf-20']);
    expect(nextPage.body.nextCursor).toBeUndefined();
    expect(empty.status).toBe(400);
    expect(empty.body.error.fields[0].field).toBe('clientId');
  });
});
