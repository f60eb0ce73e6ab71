import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openBox } from '#lib/inbox/connect';
import { IMPORT_CONCURRENCY, pollBox } from '#lib/inbox/poll';
import type { Pop3Client } from '#lib/pop3/client';
import type { BlobStore } from '#lib/ports/index';
import { bigAttachmentMail, bigTextMail, rawMail } from '#test/support/mail';
import { inboxFixture, sid } from './support.ts';

const { ctx, ports, makeBox, poll } = inboxFixture();

/** Every unassigned message of the box, reading all pages. */
async function messagesOf(boxId: string) {
  const all = [];
  let cursor: string | undefined;
  do {
    const page = await ctx.d.repos.messages.listUnassigned(sid, 500, cursor);
    all.push(...page.items.filter((m) => m.boxId === boxId));
    cursor = page.nextCursor;
  } while (cursor);
  return all;
}
const subjectsOf = async (boxId: string) => (await messagesOf(boxId)).map((m) => m.subject);

/**
 * A first, small import loads what the pipeline loads on first use (mailparser and its charset
 * tables, the blob and parse modules), so a peak measured after it is mail held, not code.
 */
async function warmUp(boxId: string, deliver: (raw: Buffer) => Promise<unknown>) {
  await deliver(rawMail({ subject: 'warm-up' }));
  expect((await poll(boxId)).run?.counts.imported).toBe(1);
}

/**
 * Runs `act` and reports the most memory it kept reachable above the start: sampled every 200 ms
 * after a forced collection (a whole copy would be held for seconds, the parse; a collection every
 * 50 ms made the import itself take most of the test's time), so garbage awaiting a collection
 * does not count.
 */
async function peakRetained<T>(act: () => Promise<T>): Promise<{ outcome: T; peak: number }> {
  const gc = globalThis.gc;
  if (!gc) throw new Error('run with --expose-gc (vitest.config.ts sets it)');
  gc();
  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const base = used();
  let peak = 0;
  const sample = setInterval(() => {
    // Twice: V8 frees the Buffers a collection found dead on another thread, finished at the start
    // of the next collection; one alone let a loaded machine count up to 30 MB of freed Buffers.
    gc();
    gc();
    peak = Math.max(peak, used() - base);
  }, 200);
  try {
    return { outcome: await act(), peak };
  } finally {
    clearInterval(sample);
  }
}

/** Delivers a message with a 25 MB attachment; returns the attachment's sha256. Keeps no copy. */
async function deliver25MbAttachment(deliver: (raw: Buffer) => Promise<unknown>): Promise<string> {
  const { raw, sha256 } = bigAttachmentMail(25);
  await deliver(raw);
  return sha256;
}

describe('an import that must lose nothing and duplicate nothing', () => {
  it('imports 2,000 messages of 20 KB completely', { timeout: 600_000 }, async () => {
    // Prepare
    const { box, deliver } = await makeBox({ leaveOnServer: false });
    const filler = `${'x'.repeat(76)}\r\n`.repeat(260);
    for (let i = 0; i < 2000; i++) await deliver(rawMail({ subject: `bulk ${i}`, body: filler }));
    // Act
    const outcome = await poll(box.id, ports, 550_000);
    // Assess
    expect(outcome.status).toBe('succeeded');
    expect(outcome.run?.counts).toMatchObject({ seen: 2000, imported: 2000, skipped: 0 });
    const subjects = new Set(await subjectsOf(box.id));
    expect(subjects.size).toBe(2000);
    expect(await ctx.dovecot.messageCount(box.id)).toBe(0);
  });

  it('loses and duplicates nothing when the connection is cut mid-retrieval, then runs cleanly', async () => {
    // Prepare
    const { box, deliver } = await makeBox({ leaveOnServer: false });
    for (let i = 0; i < 10; i++) await deliver(rawMail({ subject: `cut ${i}` }));
    let client: Pop3Client | undefined;
    let puts = 0;
    const cutting: BlobStore = {
      ...ctx.d.blobs,
      put: async (key, body, type) => {
        const r = await ctx.d.blobs.put(key, body, type);
        // After the fourth raw message is stored, the line drops.
        if (key.startsWith('raw/') && ++puts === 4) client?.close();
        return r;
      },
      get: (k) => ctx.d.blobs.get(k),
      getBuffer: (k) => ctx.d.blobs.getBuffer(k),
      exists: (k) => ctx.d.blobs.exists(k),
      delete: (k) => ctx.d.blobs.delete(k),
      downloadUrl: (k, o) => ctx.d.blobs.downloadUrl(k, o),
    };
    const cutPorts = {
      ...ports,
      open: async (b: typeof box, pw: string) => {
        client = await openBox(b.connection, pw, { ca: ctx.dovecot.caCertPem });
        return client;
      },
    };
    // Act
    const first = await pollBox(
      { ...ctx.d, blobs: cutting },
      { studioId: sid, boxId: box.id, trigger: 'manual', budgetMs: 60_000 },
      cutPorts,
    );
    const afterCut = await ctx.dovecot.messageCount(box.id);
    const second = await poll(box.id);
    // Assess
    expect(first.status).toBe('failed');
    expect(afterCut).toBe(10); // DELEs were never committed
    expect(second.status).toBe('succeeded');
    const subjects = (await subjectsOf(box.id)).sort();
    expect(subjects).toEqual(Array.from({ length: 10 }, (_, i) => `cut ${i}`).sort());
    expect(await ctx.dovecot.messageCount(box.id)).toBe(0);
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

  it('stops at its time budget and the next run continues where it stopped', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    for (let i = 0; i < 5; i++) await deliver(rawMail({ subject: `budget ${i}` }));
    // Act
    const first = await poll(box.id, ports, 0);
    const second = await poll(box.id);
    // Assess
    expect(first.status).toBe('partial');
    expect(first.run?.counts.imported).toBe(0);
    expect(second.run?.counts).toMatchObject({ imported: 5 });
    expect(await subjectsOf(box.id)).toHaveLength(5);
  });

  /** A clock that moves `step` ms each time a raw message is stored, and a blob store that moves it. */
  function steppingClock(step: number) {
    let now = 1_000_000;
    const blobs: BlobStore = {
      put: async (key, body, type) => {
        const r = await ctx.d.blobs.put(key, body, type);
        if (key.startsWith('raw/')) now += step;
        return r;
      },
      get: (k) => ctx.d.blobs.get(k),
      getBuffer: (k) => ctx.d.blobs.getBuffer(k),
      exists: (k) => ctx.d.blobs.exists(k),
      downloadUrl: (k, o) => ctx.d.blobs.downloadUrl(k, o),
      delete: (k) => ctx.d.blobs.delete(k),
    };
    return { blobs, clock: () => now };
  }

  it('stops mid-batch at its budget with DELEs pending, and the next run deletes them and imports the rest', async () => {
    // Prepare: each stored message costs half the budget, so the run is out of time after two
    // are stored; it finishes the ones already taken (at most IMPORT_CONCURRENCY more) and stops
    // in the middle of a pipelined batch of 20, before any DELE.
    const { box, deliver } = await makeBox({ leaveOnServer: false });
    const total = 20;
    for (let i = 0; i < total; i++) await deliver(rawMail({ subject: `mid-batch ${i}` }));
    const { blobs, clock } = steppingClock(50_000);
    // Act
    const first = await pollBox(
      { ...ctx.d, blobs },
      { studioId: sid, boxId: box.id, trigger: 'manual', budgetMs: 100_000 },
      { ...ports, clock },
    );
    const onServer = await ctx.dovecot.messageCount(box.id);
    const second = await poll(box.id);
    // Assess
    expect(first.status).toBe('partial');
    const taken = first.run?.counts.imported ?? 0;
    expect(taken).toBeGreaterThanOrEqual(2);
    expect(taken).toBeLessThanOrEqual(2 + IMPORT_CONCURRENCY);
    expect(onServer).toBe(total); // no DELE was sent after the budget ran out
    expect(second.run?.counts).toMatchObject({ imported: total - taken, skipped: taken });
    expect((await subjectsOf(box.id)).sort()).toEqual(
      Array.from({ length: total }, (_, i) => `mid-batch ${i}`).sort(),
    );
    expect(await ctx.dovecot.messageCount(box.id)).toBe(0);
  });

  it('converges over runs when each run has time for a few messages only', async () => {
    // Prepare: a quarter of the budget per message: two retrieved per run (60 % for retrieval),
    // their DELEs sent within the rest.
    const { box, deliver } = await makeBox({ leaveOnServer: false });
    for (let i = 0; i < 7; i++) await deliver(rawMail({ subject: `converge ${i}` }));
    const { blobs, clock } = steppingClock(25_000);
    // Act
    const runs = [];
    for (let i = 0; i < 6 && (await ctx.dovecot.messageCount(box.id)) > 0; i++) {
      runs.push(
        await pollBox(
          { ...ctx.d, blobs },
          { studioId: sid, boxId: box.id, trigger: 'manual', budgetMs: 100_000 },
          { ...ports, clock },
        ),
      );
    }
    // Assess
    expect(runs.length).toBeGreaterThan(1);
    expect(runs.slice(0, -1).every((r) => r.status === 'partial')).toBe(true);
    expect(runs.map((r) => r.run?.counts.imported).reduce((a, b) => (a ?? 0) + (b ?? 0), 0)).toBe(7);
    expect(await ctx.dovecot.messageCount(box.id)).toBe(0);
    expect(await subjectsOf(box.id)).toHaveLength(7);
  });

  it('imports a 25 MB attachment without holding it in memory whole', { timeout: 300_000 }, async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    await warmUp(box.id, deliver);
    const expected = await deliver25MbAttachment(deliver);
    // Act
    const { outcome, peak } = await peakRetained(() => poll(box.id));
    // Assess
    expect(outcome.run?.counts.imported).toBe(1);
    const msg = (await messagesOf(box.id)).find((m) => m.attachments.length > 0);
    const att = msg?.attachments[0];
    expect(att).toMatchObject({ filename: 'shoot.raw', size: 25 * 1024 * 1024 });
    const stored = await ctx.d.blobs.getBuffer(att?.blobKey ?? '');
    expect(createHash('sha256').update(stored).digest('hex')).toBe(expected);
    // The message is ~34 MB on the wire and the attachment 25 MB; holding either whole exceeds this.
    expect(peak).toBeLessThan(16 * 1024 * 1024);
  });

  it('imports a 25 MB text body without holding it in memory whole', { timeout: 300_000 }, async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    await warmUp(box.id, deliver);
    const { raw, sha256, size } = bigTextMail(25);
    await deliver(raw);
    // Act
    const { outcome, peak } = await peakRetained(() => poll(box.id));
    // Assess
    expect(outcome.run?.counts.imported).toBe(1);
    const msg = (await messagesOf(box.id)).find((m) => m.subject === 'long letter');
    expect(msg?.snippet).toMatch(/^line 0 of a long letter/);
    const body = await ctx.d.blobs.getBuffer(msg?.textKey ?? '');
    expect(body.length).toBe(size);
    expect(createHash('sha256').update(body).digest('hex')).toBe(sha256);
    // Held whole, the body is 25 MB as bytes and more as a string (mailparser's way peaked ~160 MB).
    expect(peak).toBeLessThan(16 * 1024 * 1024);
  });
});
