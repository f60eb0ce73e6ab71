import { once } from 'node:events';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { openBox } from '#lib/inbox/connect';
import { IMPORT_CONCURRENCY, MAX_RUN_ERRORS, type PollPorts, pollBox } from '#lib/inbox/poll';
import type { Pop3Client } from '#lib/pop3/client';
import type { BlobStore } from '#lib/ports/index';
import { rawMail } from '#test/support/mail';
import { inboxFixture, sid } from './support.ts';

const { ctx, ports, makeBox, poll } = inboxFixture();

/** Ports whose POP3 waits give up after 5 s, so a stalled pipeline fails the test quickly. */
const impatient: PollPorts = {
  ...ports,
  open: (box, password) => openBox(box.connection, password, { ca: ctx.dovecot.caCertPem, timeoutMs: 5_000 }),
};

const body = (kb: number) => `${'m'.repeat(98)}\r\n`.repeat(Math.ceil((kb * 1024) / 100));

describe('pipelined retrieval with deletion', () => {
  it('deletes mid-size messages (above the stream buffer, below the in-memory limit) without stalling', async () => {
    // Prepare: 200 KB each, so the pipelined RETR behind the one being imported fills its buffer.
    const { box, user, deliver } = await makeBox({ leaveOnServer: false });
    for (let i = 0; i < 4; i++) await deliver(rawMail({ subject: `mid ${i}`, body: body(200) }));
    // Act
    const outcome = await poll(box.id, impatient);
    // Assess
    expect(outcome.run?.errors).toEqual([]);
    expect(outcome.status).toBe('succeeded');
    expect(outcome.run?.counts).toMatchObject({ seen: 4, imported: 4 });
    expect(await ctx.dovecot.messageCount(user)).toBe(0);
  });

  it('keeps server order across small, large and mid-size messages, and fetches each once', async () => {
    // Prepare
    const { box, user, deliver } = await makeBox({ leaveOnServer: false });
    const sizes = [1, 300, 1, 1, 300, 200, 1, 300];
    for (const [i, kb] of sizes.entries()) await deliver(rawMail({ subject: `mix ${i}`, body: body(kb) }));
    const retrieved: string[] = [];
    const watching: PollPorts = {
      ...impatient,
      inMemoryLimit: 250 * 1024,
      open: async (b, pw) =>
        openBox(b.connection, pw, {
          ca: ctx.dovecot.caCertPem,
          timeoutMs: 5_000,
          onLog: (dir, line) => {
            if (dir === 'C' && line.startsWith('RETR')) retrieved.push(line);
          },
        }),
    };
    // Act
    const outcome = await poll(box.id, watching);
    // Assess
    expect(outcome.status).toBe('succeeded');
    expect(retrieved).toEqual(sizes.map((_, i) => `RETR ${i + 1}`));
    const messages = (await ctx.d.repos.messages.listUnassigned(sid, 100)).items.filter(
      (m) => m.boxId === box.id,
    );
    expect(messages.map((m) => m.subject).sort()).toEqual(sizes.map((_, i) => `mix ${i}`).sort());
    expect(await ctx.dovecot.messageCount(user)).toBe(0);
  });

  it('fails, and does not hang, when the connection drops while a large message streams; the next run imports it', async () => {
    // Prepare
    const { box, user, deliver } = await makeBox({ leaveOnServer: false });
    await deliver(rawMail({ subject: 'large', body: body(2_000) }));
    let client: Pop3Client | undefined;
    let cut = false;
    const blobs = ctx.d.blobs;
    const cutting: BlobStore = {
      put: async (key, content, type) => {
        if (!cut && key.startsWith('raw/') && content instanceof Readable) {
          // The first bytes of the raw message have arrived; then the line drops.
          cut = true;
          await once(content, 'readable');
          client?.close();
        }
        return blobs.put(key, content, type);
      },
      get: (k) => blobs.get(k),
      getBuffer: (k) => blobs.getBuffer(k),
      exists: (k) => blobs.exists(k),
      delete: (k) => blobs.delete(k),
      downloadUrl: (k, o) => blobs.downloadUrl(k, o),
    };
    const streaming: PollPorts = {
      ...impatient,
      inMemoryLimit: 100_000,
      open: async (b, pw) => {
        client = await openBox(b.connection, pw, { ca: ctx.dovecot.caCertPem, timeoutMs: 5_000 });
        return client;
      },
    };
    // Act
    const first = await Promise.race([
      pollBox(
        { ...ctx.d, blobs: cutting },
        { studioId: sid, boxId: box.id, trigger: 'manual', budgetMs: 60_000 },
        streaming,
      ),
      sleep(15_000).then(() => 'hung' as const),
    ]);
    const afterCut = await ctx.dovecot.messageCount(user);
    const second = await poll(box.id, streaming);
    // Assess
    expect(first === 'hung' ? first : first.status).toBe('failed');
    expect(afterCut).toBe(1);
    expect(second.run?.counts).toMatchObject({ imported: 1 });
    expect(await ctx.dovecot.messageCount(user)).toBe(0);
  });
});

describe('a message too large to record', () => {
  it('is quarantined with its raw copy, and the messages after it are imported', async () => {
    // Prepare: a sender name of 450 KB makes the item larger than DynamoDB takes (400 KB).
    const { box, deliver } = await makeBox();
    await deliver(rawMail({ from: `"${'N'.repeat(450_000)}" <huge@client.test>`, subject: 'huge name' }));
    await deliver(rawMail({ subject: 'after the huge one' }));
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ seen: 2, imported: 1, quarantined: 1 });
    expect(outcome.run?.errors).toEqual([
      { kind: 'quarantined', message: expect.stringMatching(/too large to record/) },
    ]);
    const [q] = (await ctx.d.repos.messages.listQuarantined(sid, 100)).items.filter(
      (m) => m.boxId === box.id,
    );
    expect(q?.error).toMatch(/too large to record/);
    expect((await ctx.d.blobs.getBuffer(q?.rawKey ?? '')).length).toBeGreaterThan(450_000);
    const imported = (await ctx.d.repos.messages.listUnassigned(sid, 100)).items.filter(
      (m) => m.boxId === box.id,
    );
    expect(imported.map((m) => m.subject)).toEqual(['after the huge one']);
  });
});

describe('a run with many errors', () => {
  it('keeps its record bounded, lists the first errors and counts the rest', async () => {
    // Prepare: every auto-reply fails (distinct senders, so the daily cap does not step in).
    const { box, deliver } = await makeBox({ sendAutoReply: true, autoReplyFormLetterId: 'none' });
    for (let i = 0; i < MAX_RUN_ERRORS + 20; i++)
      await deliver(rawMail({ from: `person${i}@client.test`, subject: `ask ${i}` }));
    const failing: PollPorts = {
      ...ports,
      autoReply: async () => {
        throw new Error('the SMTP server is down');
      },
    };
    // Act
    const outcome = await poll(box.id, failing);
    // Assess
    expect(outcome.status).toBe('partial');
    expect(outcome.run?.counts).toMatchObject({ imported: MAX_RUN_ERRORS + 20, autoReplies: 0 });
    expect(outcome.errorCount).toBe(MAX_RUN_ERRORS + 20);
    const [stored] = (await ctx.d.repos.runs.list(sid, box.id)).items;
    expect(stored?.errors).toHaveLength(MAX_RUN_ERRORS);
    expect(stored?.errors[0]).toMatchObject({ kind: 'auto-reply-failed' });
    expect(stored?.errors.at(-1)).toEqual({
      kind: 'more-errors',
      message: '21 more error(s) not listed; the counts include them.',
    });
  });
});

describe('messages imported at once (IMPORT_CONCURRENCY)', () => {
  /** The blob store, counting the most raw-copy puts under way at one moment. */
  function countingPuts() {
    const blobs = ctx.d.blobs;
    const seen = { now: 0, most: 0 };
    const store: BlobStore = {
      put: async (key, content, type) => {
        if (!key.startsWith('raw/')) return blobs.put(key, content, type);
        seen.most = Math.max(seen.most, ++seen.now);
        try {
          await sleep(5); // a store round trip, so that overlap (if any) shows
          return await blobs.put(key, content, type);
        } finally {
          seen.now--;
        }
      },
      get: (k) => blobs.get(k),
      getBuffer: (k) => blobs.getBuffer(k),
      exists: (k) => blobs.exists(k),
      delete: (k) => blobs.delete(k),
      downloadUrl: (k, o) => blobs.downloadUrl(k, o),
    };
    return { store, seen };
  }

  it('overlaps the storing of different messages, at most IMPORT_CONCURRENCY at a time, and deletes all it stored', async () => {
    // Prepare
    const { box, user, deliver } = await makeBox({ leaveOnServer: false });
    for (let i = 0; i < 30; i++) await deliver(rawMail({ subject: `overlap ${i}` }));
    const { store, seen } = countingPuts();
    // Act
    const outcome = await pollBox(
      { ...ctx.d, blobs: store },
      { studioId: sid, boxId: box.id, trigger: 'manual', budgetMs: 60_000 },
      ports,
    );
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 30 });
    expect(seen.most).toBeGreaterThan(1);
    expect(seen.most).toBeLessThanOrEqual(IMPORT_CONCURRENCY);
    expect(await ctx.dovecot.messageCount(user)).toBe(0);
  });

  it('files a reply taken at the same time as what it answers into that thread, and the same bytes twice once', async () => {
    // Prepare: the first message is the slowest to store and parse; its reply comes from
    // another address, so only the thread can give it its client.
    await ctx.d.repos.clients.create(sid, 'c-lea', {
      id: 'c-lea',
      firstName: 'Lea',
      lastName: 'Berg',
      emails: [{ address: 'lea@client.test', primary: true }],
    });
    const { box, deliver } = await makeBox();
    await deliver(
      rawMail({
        from: 'lea@client.test',
        subject: 'Wedding',
        messageId: '<first@client.test>',
        body: body(600),
      }),
    );
    await deliver(
      rawMail({
        from: 'lea.work@else.test',
        subject: 'Re: Wedding',
        messageId: '<reply@else.test>',
        inReplyTo: '<first@client.test>',
      }),
    );
    const twice = rawMail({ subject: 'sent twice' });
    await deliver(twice);
    await deliver(twice);
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 3, skipped: 1 });
    const lea = (await ctx.d.repos.messages.listForClient(sid, 'c-lea')).items;
    expect(lea.map((m) => m.subject).sort()).toEqual(['Re: Wedding', 'Wedding']);
    expect(new Set(lea.map((m) => m.threadId)).size).toBe(1);
    const unassigned = (await ctx.d.repos.messages.listUnassigned(sid, 500)).items;
    expect(unassigned.filter((m) => m.boxId === box.id).map((m) => m.subject)).toEqual(['sent twice']);
    // The second copy was found as a duplicate of the first (not lost in a race with it).
    expect((await ctx.d.repos.importMarkers.listState(sid, box.id, 'duplicate')).items).toHaveLength(1);
  });
});
