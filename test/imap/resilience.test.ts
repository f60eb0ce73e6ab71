import { describe, expect, it } from 'vitest';
import { openMailbox } from '#lib/inbox/connect';
import { pollBox } from '#lib/inbox/poll';
import type { BlobStore } from '#lib/ports/index';
import { hostileMessages } from '#test/support/hostile-mail';
import { rawMail } from '#test/support/mail';
import { imapFixture, sid, startCutProxy } from './support.ts';

const { ctx, ports, makeBox, poll, messagesOf } = imapFixture();
const subjectsOf = async (boxId: string) => (await messagesOf(boxId)).map((m) => m.subject);

describe('an IMAP import that must lose nothing and duplicate nothing', () => {
  it('imports 2,000 messages of 20 KB completely and deletes them after', { timeout: 600_000 }, async () => {
    // Prepare
    const { box, deliver, user } = await makeBox({
      leaveOnServer: false,
      connection: { afterImport: 'delete' },
    });
    const filler = `${'x'.repeat(76)}\r\n`.repeat(260);
    for (let i = 0; i < 2000; i++) await deliver(rawMail({ subject: `bulk ${i}`, body: filler }));
    const started = performance.now();
    // Act
    const outcome = await poll(box.id, ports, 550_000);
    // Assess
    const seconds = (performance.now() - started) / 1000;
    console.info(`IMAP: 2,000 messages of 20 KB imported in ${seconds.toFixed(1)} s`);
    expect(outcome.status).toBe('succeeded');
    expect(outcome.run?.counts).toMatchObject({ seen: 2000, imported: 2000, skipped: 0 });
    expect(new Set(await subjectsOf(box.id)).size).toBe(2000);
    expect(await ctx.dovecot.messageCount(user)).toBe(0);
  });

  it('loses and duplicates nothing when the line is cut mid-retrieval, fails that run cleanly, then runs cleanly', async () => {
    // Prepare: the box reaches Dovecot through a proxy that resets every connection on cue.
    const proxy = await startCutProxy({ host: ctx.dovecot.host, port: ctx.dovecot.imapsPort });
    const { box, deliver, user } = await makeBox({
      leaveOnServer: false,
      connection: { afterImport: 'delete', port: proxy.port },
    });
    for (let i = 0; i < 10; i++) await deliver(rawMail({ subject: `cut ${i}` }));
    let puts = 0;
    const cutting: BlobStore = {
      ...ctx.d.blobs,
      put: async (key, body, type) => {
        const r = await ctx.d.blobs.put(key, body, type);
        // After the fourth raw message is stored, the line drops.
        if (key.startsWith('raw/') && ++puts === 4) proxy.cut();
        return r;
      },
      get: (k) => ctx.d.blobs.get(k),
      getBuffer: (k) => ctx.d.blobs.getBuffer(k),
      exists: (k) => ctx.d.blobs.exists(k),
      delete: (k) => ctx.d.blobs.delete(k),
      downloadUrl: (k, o) => ctx.d.blobs.downloadUrl(k, o),
    };
    // Act
    const first = await pollBox(
      { ...ctx.d, blobs: cutting },
      { studioId: sid, boxId: box.id, trigger: 'manual', budgetMs: 60_000 },
      ports,
    );
    const afterCut = await ctx.dovecot.messageCount(user);
    const second = await poll(box.id);
    await proxy.close();
    // Assess
    expect(first.status).toBe('failed');
    expect(first.failure?.kind).toBe('connection-lost');
    expect(afterCut).toBe(10); // nothing is deleted before the retrieval is over
    expect(second.status).toBe('succeeded');
    const subjects = (await subjectsOf(box.id)).sort();
    expect(subjects).toEqual(Array.from({ length: 10 }, (_, i) => `cut ${i}`).sort());
    expect(await ctx.dovecot.messageCount(user)).toBe(0);
  });

  it('never hangs on a server that stops answering: the run fails at the time limit', async () => {
    // Prepare: a listener that accepts and never sends a greeting.
    const net = await import('node:net');
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { box } = await makeBox({
      connection: { port: (silent.address() as { port: number }).port, ssl: false },
    });
    const quick = {
      ...ports,
      open: (b: typeof box, pw: string) =>
        openMailbox(b, pw, {
          imap: { ca: ctx.dovecot.caCertPem, connectTimeoutMs: 1_000, timeoutMs: 1_000 },
        }),
    };
    const started = Date.now();
    // Act
    const outcome = await poll(box.id, quick);
    silent.close();
    // Assess
    expect(outcome.status).toBe('failed');
    expect(outcome.failure?.kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('lets only one of two overlapping polls of a box run', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    for (let i = 0; i < 20; i++) await deliver(rawMail({ subject: `overlap ${i}` }));
    // Act
    const [a, b] = await Promise.all([poll(box.id), poll(box.id)]);
    // Assess
    expect([a.status, b.status].sort()).toEqual(['busy', 'succeeded']);
    expect(await subjectsOf(box.id)).toHaveLength(20);
    const third = await poll(box.id);
    expect(third.run?.counts).toMatchObject({ imported: 0, skipped: 20 });
  });
});

describe('an IMAP mailbox full of hostile mail', () => {
  it('imports or quarantines every message with a reason, the one after each poison message too, and a second poll imports nothing', {
    timeout: 600_000,
  }, async () => {
    // Prepare
    const { box, deliver, user } = await makeBox({
      leaveOnServer: false,
      connection: { afterImport: 'delete' },
    });
    const hostile = hostileMessages();
    for (const [i, [, raw]] of hostile.entries()) {
      await deliver(raw);
      await deliver(rawMail({ subject: `after poison ${i}` }));
    }
    const total = hostile.length * 2;
    // Act
    const first = await poll(box.id, ports, 500_000);
    const second = await poll(box.id, ports, 120_000);
    // Assess
    expect(total).toBeGreaterThanOrEqual(150);
    expect(first.status).not.toBe('failed');
    const c = first.run!.counts;
    expect(c.seen).toBe(total);
    expect(c.imported + c.quarantined + c.skipped).toBe(total);
    const messages = await messagesOf(box.id);
    const subjects = new Set(messages.filter((m) => m.status === 'imported').map((m) => m.subject));
    for (let i = 0; i < hostile.length; i++) expect(subjects).toContain(`after poison ${i}`);
    for (const m of messages.filter((x) => x.status === 'quarantined'))
      expect(m.error, `reason for ${m.id}`).toMatch(/\w/);
    expect(second.run?.counts).toMatchObject({ imported: 0, quarantined: 0 });
    expect(second.status).not.toBe('failed');
    // What is stored may go from the server; what could not be had stays there.
    expect(await ctx.dovecot.messageCount(user)).toBeLessThanOrEqual(c.quarantined);
  });
});
