import { afterEach, describe, expect, it } from 'vitest';
import { type BulkHarness, bulkHarness, consenting, seedClients, settle } from './fixtures.ts';
import { gatedSmtp } from './gate.ts';

let h: BulkHarness;
afterEach(async () => {
  await h.stop();
});

async function gatedHarness(after: number) {
  let gate: ReturnType<typeof gatedSmtp> | undefined;
  const harness = await bulkHarness({
    bulk: { worker: { claimSize: 10 } },
    queue: { concurrency: 1 },
    overrides: {
      smtp: (o) => {
        if (!gate) throw new Error('gate not set');
        return gate.factory(o);
      },
    },
  });
  const { smtpTransport } = await import('#lib/adapters/mail');
  gate = gatedSmtp(smtpTransport, after);
  return { harness, gate };
}

const create = (body: Record<string, unknown> = {}) =>
  h.call('POST', '/bulk-emails', {
    body: { formLetterId: 'fl-news', selection: { groups: ['newsletter'] }, ...body },
  });

describe('pause, resume and cancel', () => {
  it('pauses mid-job after the emails in flight, then resume sends the rest once each', async () => {
    // Prepare
    const { harness, gate } = await gatedHarness(5);
    h = harness;
    await seedClients(h.d, consenting(40));
    const created = await create();
    await gate.reached;

    // Act
    const paused = await h.call('POST', `/bulk-emails/${created.body.id}/pause`);
    gate.open();
    const whilePaused = await settle(h, created.body.id);
    const sentWhilePaused = h.smtp.messages.length;
    const resumed = await h.call('POST', `/bulk-emails/${created.body.id}/resume`);
    const done = await settle(h, created.body.id);

    // Assess
    expect(paused.body.status).toBe('paused');
    expect(paused.body.pauseReason).toBe('Paused by admin-1.');
    // The chunk being sent (10) finishes; nothing more is claimed.
    expect(whilePaused.counts).toMatchObject({ sent: 10, queued: 30, sending: 0 });
    expect(sentWhilePaused).toBe(10);
    expect(resumed.body.status).toBe('running');
    expect(done.status).toBe('completed');
    expect(done.counts.sent).toBe(40);
    expect(new Set(h.smtp.messages.map((m) => m.envelope.to[0])).size).toBe(40);
    expect(h.smtp.messages).toHaveLength(40);
  });

  it('cancels what has not been sent', async () => {
    // Prepare
    const { harness, gate } = await gatedHarness(3);
    h = harness;
    await seedClients(h.d, consenting(30));
    const created = await create();
    await gate.reached;

    // Act
    const cancelled = await h.call('POST', `/bulk-emails/${created.body.id}/cancel`);
    gate.open();
    const done = await settle(h, created.body.id);
    const again = await h.call('POST', `/bulk-emails/${created.body.id}/resume`);

    // Assess
    expect(cancelled.body.status).toBe('cancelled');
    expect(done.status).toBe('cancelled');
    expect(done.counts).toMatchObject({ sent: 10, cancelled: 20, queued: 0, sending: 0 });
    expect(h.smtp.messages).toHaveLength(10);
    expect(again.status).toBe(400);
    expect(again.body.error.fields).toEqual([
      { field: 'status', message: 'a cancelled bulk email cannot resume.' },
    ]);
  });

  it('starts a scheduled job at its time, and not while it is paused', async () => {
    // Prepare
    h = await bulkHarness();
    await seedClients(h.d, consenting(5));
    const created = await create({ startAt: '2026-12-01T12:00:00Z' });

    // Act
    await h.queue.drained();
    const before = await h.call('GET', `/bulk-emails/${created.body.id}`);
    await h.call('POST', `/bulk-emails/${created.body.id}/pause`);
    h.clock.set('2026-12-01T12:00:30Z');
    await h.timer.fireDue();
    const pausedAtStart = await settle(h, created.body.id);
    h.clock.set('2026-12-01T11:00:00Z');
    await h.call('POST', `/bulk-emails/${created.body.id}/resume`);
    const rescheduled = (await h.call('GET', `/bulk-emails/${created.body.id}`)).body;
    h.clock.set('2026-12-01T12:00:30Z');
    await h.call('POST', `/bulk-emails/${created.body.id}/pause`);
    await h.call('POST', `/bulk-emails/${created.body.id}/resume`);
    const done = await settle(h, created.body.id);

    // Assess
    expect(created.status).toBe(202);
    expect(created.body.status).toBe('preparing');
    expect(before.body.status).toBe('scheduled');
    expect(before.body.counts.queued).toBe(5);
    expect(pausedAtStart.status).toBe('paused');
    expect(pausedAtStart.counts.sent).toBe(0);
    expect(rescheduled.status).toBe('scheduled');
    expect(done.status).toBe('completed');
    expect(h.smtp.messages).toHaveLength(5);
  });
});

describe('a scheduled job whose last batches hold only skipped recipients', () => {
  it('completes once the batches with mail are sent (a batch of skipped ones is done from the start)', async () => {
    // Prepare: 150 who can be sent to, then 100 without consent, skipped, filling the last batch.
    h = await bulkHarness();
    const noConsent = consenting(100).map((c, i) => ({
      ...c,
      emails: [{ address: `nope${i}@example.test`, primary: true }],
      marketingConsent: false,
    }));
    await seedClients(h.d, [...consenting(150), ...noConsent]);
    const created = await create({ startAt: '2026-12-01T12:00:00Z' });
    await h.queue.drained();

    // Act
    h.clock.set('2026-12-01T12:00:30Z');
    await h.timer.fireDue();
    const done = await settle(h, created.body.id);

    // Assess
    expect(done.status).toBe('completed');
    expect(done.counts).toMatchObject({ sent: 150, skipped: 100, queued: 0 });
    expect(h.smtp.messages).toHaveLength(150);
  });
});

describe('failures', () => {
  it('records a 5xx per recipient as failed with the server words, and pauses itself after a run of them', async () => {
    // Prepare
    h = await bulkHarness({ bulk: { worker: { concurrency: 1 } } });
    await h.call('PUT', '/settings/bulk-email', {
      body: { smtpRatePerSecond: 10_000, pauseAfterFailures: 4 },
    });
    await seedClients(h.d, consenting(30));
    h.smtp.fail({ rejectData: { code: 554, message: '5.7.1 Message rejected as spam' } });

    // Act
    const created = await create();
    const progress = await settle(h, created.body.id);
    const failed = (await h.call('GET', `/bulk-emails/${created.body.id}/recipients?state=failed`)).body
      .items;

    // Assess
    expect(progress.status).toBe('paused');
    expect(progress.pauseReason).toMatch(/^Paused after 4 failed emails in a row\./);
    expect(progress.pauseReason).toContain('554 5.7.1 Message rejected as spam');
    expect(progress.counts.failed).toBe(4);
    expect(progress.counts.queued).toBe(26);
    expect(failed[0].error).toContain('554 5.7.1 Message rejected as spam');
  });

  it('retries a temporary 4xx with backoff and then delivers once', async () => {
    // Prepare
    h = await bulkHarness();
    await seedClients(h.d, consenting(3));
    h.smtp.fail({ temporary: { code: 451, message: '4.3.0 Try again later', times: 2 } });

    // Act
    const created = await create();
    const progress = await settle(h, created.body.id);

    // Assess
    expect(progress.counts).toMatchObject({ sent: 3, failed: 0 });
    expect(h.smtp.messages).toHaveLength(3);
    expect(h.smtp.mailFromCount()).toBe(5);
  });

  it('puts an address the server says does not exist (5.1.1) on the block list', async () => {
    // Prepare
    h = await bulkHarness();
    await seedClients(h.d, [
      {
        firstName: 'Gone',
        emails: [{ address: 'gone@example.test', primary: true }],
        marketingConsent: true,
        groups: ['newsletter'],
      },
    ]);
    h.smtp.fail({
      rejectData: {
        code: 550,
        message: '5.1.1 <gone@example.test>: Recipient address rejected: User unknown',
      },
    });

    // Act
    const created = await create();
    await settle(h, created.body.id);
    const list = await h.call('GET', '/block-list');

    // Assess
    expect(list.body.items).toEqual([
      expect.objectContaining({
        address: 'gone@example.test',
        blocked: true,
        history: [expect.objectContaining({ reason: 'bounced', jobId: created.body.id })],
      }),
    ]);
  });
});
