import { afterEach, describe, expect, it } from 'vitest';
import { bulkParts } from '#functions/bulk/app';
import type { SmtpOptions } from '#lib/adapters/mail';
import type { MailTransport } from '#lib/ports/index';
import {
  arrivals,
  type BulkHarness,
  bulkHarness,
  consenting,
  errors,
  noWait,
  seedClients,
  settle,
} from './fixtures.ts';

let h: BulkHarness;
afterEach(async () => {
  await h.stop();
});

/** SMTP transports whose sends never answer after the first `after` (a worker frozen mid-SMTP). */
function freezingSmtp(real: (o: SmtpOptions) => MailTransport, after: number) {
  let sends = 0;
  let frozen!: () => void;
  const hung = new Promise<void>((resolve) => {
    frozen = resolve;
  });
  const factory = (o: SmtpOptions): MailTransport => {
    const t = real(o);
    return {
      ...t,
      kind: t.kind,
      send: (mail) => {
        sends += 1;
        if (sends > after) {
          frozen();
          return new Promise(() => {});
        }
        return t.send(mail);
      },
      verify: () => t.verify(),
      close: () => t.close(),
    };
  };
  return { factory, hung };
}

describe('exactly once per recipient', () => {
  it('delivers the rest after a worker dies mid-batch, sends none twice and reports the lost claims as unknown', async () => {
    // Prepare
    h = await bulkHarness({
      consume: false,
      queue: { visibilityTimeoutMs: 1500, concurrency: 2, maxReceives: 20 },
    });
    await seedClients(h.d, consenting(150));
    const freezing = freezingSmtp(h.d.smtp, 30);
    const dying = bulkParts(
      { ...h.d, smtp: freezing.factory },
      { queue: h.queue, timer: h.timer, linkKey: async () => 'test-link-key', worker: { sleep: noWait } },
    );
    let firstBatchOne = true;
    let restarted = false;
    h.queue.consume(async (m) => {
      if (m.kind === 'batch' && m.batch === 1) {
        if (firstBatchOne) {
          firstBatchOne = false;
          return dying.worker.handle(m); // never returns: the message comes back after its visibility timeout
        }
        // The restarted worker runs later than the dead one's claims could still be in flight.
        await freezing.hung;
        if (!restarted) h.clock.advance(11 * 60_000);
        restarted = true;
      }
      return h.parts.worker.handle(m);
    });

    // Act
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', selection: { groups: ['newsletter'] } },
    });
    const progress = await settle(h, created.body.id);

    // Assess
    const seen = arrivals(h.smtp);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    // The dead worker's chunk (50 claimed, 30 of them delivered before it froze) is unknown, never re-sent.
    expect(errors).toEqual([]);
    expect(progress.counts).toMatchObject({ sent: 100, unknown: 50, queued: 0, sending: 0 });
    expect(seen.size).toBe(130);
    expect(progress.status).toBe('completed');
    const unknown = (
      await h.call('GET', `/bulk-emails/${created.body.id}/recipients?state=unknown&limit=100`)
    ).body.items;
    expect(unknown).toHaveLength(50);
    expect(unknown[0].error).toMatch(/may or may not have been delivered/);
  });

  it('sends nothing twice when every queue message arrives twice', async () => {
    // Prepare
    h = await bulkHarness({ consume: false, queue: { concurrency: 4 } });
    await seedClients(h.d, consenting(230));
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', selection: { groups: ['newsletter'] } },
    });
    const jobId = created.body.id;
    const batches = [1, 2, 3].map((batch) => ({
      kind: 'batch' as const,
      studioId: 'studio-1',
      jobId,
      batch,
    }));

    // Act
    await h.queue.send([{ kind: 'start', studioId: 'studio-1', jobId }, ...batches, ...batches]);
    h.queue.consume((m) => h.parts.worker.handle(m));
    const progress = await settle(h, jobId);

    // Assess
    const seen = arrivals(h.smtp);
    expect(seen.size).toBe(230);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(h.smtp.messages).toHaveLength(230);
    expect(progress.counts).toMatchObject({ sent: 230, queued: 0, sending: 0, unknown: 0 });
  });

  it('answers while the recipients are being prepared, and a preparation that dies part-way is run again without losing or doubling anyone', async () => {
    // Prepare
    h = await bulkHarness({ consume: false, queue: { concurrency: 2, maxReceives: 5 } });
    await seedClients(h.d, consenting(250));
    let sends = 0;
    const failing = {
      // The third batch message cannot be sent: this preparation stops after writing batch 3.
      send: async (messages: Parameters<typeof h.queue.send>[0]) => {
        if (messages.some((m) => m.kind === 'batch') && ++sends === 3) throw new Error('queue unavailable');
        return h.queue.send(messages);
      },
    };
    const dying = bulkParts(h.d, {
      queue: failing,
      timer: h.timer,
      linkKey: async () => 'test-link-key',
      worker: { sleep: noWait },
    });
    let firstPrepare = true;

    // Act
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', selection: { groups: ['newsletter'] } },
    });
    const during = (await h.call('GET', `/bulk-emails/${created.body.id}`)).body;
    h.queue.consume(async (m) => {
      if (m.kind === 'prepare' && firstPrepare) {
        firstPrepare = false;
        return dying.worker.handle(m);
      }
      return h.parts.worker.handle(m);
    });
    const progress = await settle(h, created.body.id);

    // Assess
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ status: 'preparing', total: 250 });
    expect(during).toMatchObject({ status: 'preparing', total: 250, counts: { queued: 0, sent: 0 } });
    expect(firstPrepare).toBe(false);
    const seen = arrivals(h.smtp);
    expect(seen.size).toBe(250);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(progress).toMatchObject({ status: 'completed', counts: { sent: 250, queued: 0, sending: 0 } });
  });

  it('sends a retried batch that already went nothing again', async () => {
    // Prepare
    h = await bulkHarness();
    await seedClients(h.d, consenting(20));
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', selection: { groups: ['newsletter'] } },
    });
    await settle(h, created.body.id);

    // Act
    await h.queue.send([{ kind: 'batch', studioId: 'studio-1', jobId: created.body.id, batch: 1 }]);
    const progress = await settle(h, created.body.id);

    // Assess
    expect(h.smtp.messages).toHaveLength(20);
    expect(progress.counts.sent).toBe(20);
  });
});
