import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { SendLedger } from '#lib/bulk/ledger';
import { startSmtpServer } from '#test/support/smtp';
import { type BulkHarness, bulkHarness, consenting, SID, seedClients, settle } from './fixtures.ts';

let h: BulkHarness;
afterEach(async () => {
  await h.stop();
});

const recipientsIn = async (jobId: string, state: string) =>
  (await h.call('GET', `/bulk-emails/${jobId}/recipients?state=${state}&limit=500`)).body.items.map(
    (r: { address: string }) => r.address,
  );

describe('the studio cap and the provider rate', () => {
  it('spreads a job larger than the per-hour cap over the following periods, knowing who was sent and who waits until when', async () => {
    // Prepare
    h = await bulkHarness();
    await h.call('PUT', '/settings/bulk-email', {
      body: { smtpRatePerSecond: 10_000, caps: [{ count: 10, periodMinutes: 60 }] },
    });
    await seedClients(h.d, consenting(25));

    // Act
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', selection: { groups: ['newsletter'] } },
    });
    const first = await settle(h, created.body.id);
    const sentFirst = await recipientsIn(created.body.id, 'sent');
    const waitingFirst = await recipientsIn(created.body.id, 'queued');
    h.clock.advance(30 * 60_000);
    const early = await h.timer.fireDue();
    h.clock.set('2026-12-01T10:01:00.000Z');
    const due = await h.timer.fireDue();
    const second = await settle(h, created.body.id);
    h.clock.set('2026-12-01T11:02:00.000Z');
    await h.timer.fireDue();
    const third = await settle(h, created.body.id);

    // Assess
    expect(first.counts).toMatchObject({ sent: 10, queued: 15 });
    expect(first.waiting).toBe(15);
    // The 09:00 minute leaves the 60-minute window at 10:01.
    expect(first.waitingUntil).toBe('2026-12-01T10:01:00.000Z');
    expect(first.status).toBe('running');
    expect(sentFirst).toHaveLength(10);
    expect(waitingFirst).toHaveLength(15);
    expect(new Set([...sentFirst, ...waitingFirst]).size).toBe(25);
    expect(early).toEqual([]);
    expect(due).toEqual([`bulk-${created.body.id}-continue`]);
    expect(second.counts).toMatchObject({ sent: 20, queued: 5 });
    expect(second.waitingUntil).toBe('2026-12-01T11:02:00.000Z');
    expect(third.status).toBe('completed');
    expect(third.counts.sent).toBe(25);
    expect(h.smtp.messages).toHaveLength(25);
    expect(new Set(h.smtp.messages.map((m) => m.envelope.to[0])).size).toBe(25);
  });

  it('counts single sends in the same window as bulk jobs', async () => {
    // Prepare
    h = await bulkHarness();
    await h.call('PUT', '/settings/bulk-email', {
      body: { smtpRatePerSecond: 10_000, caps: [{ count: 10, periodMinutes: 60 }] },
    });
    await new SendLedger(h.d.repos.table).record(SID, 7, h.clock.now().getTime());
    await seedClients(h.d, consenting(5));

    // Act
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', selection: { groups: ['newsletter'] } },
    });
    const progress = await settle(h, created.body.id);

    // Assess
    expect(progress.counts).toMatchObject({ sent: 3, queued: 2 });
    expect(progress.waiting).toBe(2);
  });

  it('never sends faster than the SMTP rate (arrival times at the sink)', async () => {
    // Prepare
    // Pacing needs a clock that moves and sleeps that wait: real ones here.
    // A sink that greets at once: smtp-server's 100 ms greeting pause would delay the first arrivals.
    const sink = await startSmtpServer({ mode: 'plain', immediateGreeting: true });
    h = await bulkHarness({
      smtp: sink,
      bulk: { worker: { sleep: (ms) => new Promise((r) => setTimeout(r, ms)) } },
      overrides: { now: () => new Date() },
    });
    onTestFinished(() => sink.stop());
    await h.call('PUT', '/settings/bulk-email', { body: { smtpRatePerSecond: 20 } });
    await seedClients(h.d, consenting(30));

    // Act
    const createdAt = Date.now();
    const created = await h.call('POST', '/bulk-emails', {
      body: { formLetterId: 'fl-news', selection: { groups: ['newsletter'] } },
    });
    await settle(h, created.body.id);

    // Assess
    const times = h.smtp.messages.map((m) => m.receivedAt).sort((a, b) => a - b);
    expect(times).toHaveLength(30);
    // At 20 per second the k-th message cannot arrive before k intervals of 50 ms after the job
    // was created: a lower bound, so a slow machine cannot fail it, while a burst would.
    times.forEach((t, k) => {
      expect(t - createdAt).toBeGreaterThanOrEqual(k * 50);
    });
    // Nor are late sends caught up in a burst: any 10 in a row span at least 5 intervals (half, for
    // the arrival jitter of five pooled connections; a burst puts 10 within a few milliseconds).
    for (let i = 10; i < times.length; i++)
      expect((times[i] as number) - (times[i - 10] as number)).toBeGreaterThanOrEqual(5 * 50);
  });
});
