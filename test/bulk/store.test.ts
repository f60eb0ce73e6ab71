import { beforeAll, describe, expect, it } from 'vitest';
import type { Recipient } from '#lib/bulk/model';
import { BulkStore, recipientKey } from '#lib/bulk/store';
import type { Table } from '#lib/data/table';
import { testTable } from '#test/support/db';

let table: Table;
beforeAll(async () => {
  ({ table } = await testTable());
});

const recipients = (n: number): Recipient[] =>
  Array.from({ length: n }, (_, i) => ({
    key: recipientKey(1, i),
    batch: 1,
    clientId: `c${i}`,
    address: `c${i}@example.test`,
    state: 'queued',
    attempts: 0,
    events: {},
  }));

describe('the batch item', () => {
  it("keeps an event that arrived between two of a worker's writes from its cached copy", async () => {
    // Prepare: a worker has claimed and sent the first recipient (its copy of the batch is cached).
    const store = new BulkStore(table);
    await store.writeBatches('st-1', 'job-1', recipients(3));
    const [first] = await store.claim('st-1', 'job-1', 1, [recipientKey(1, 0)], 'w1', 1);
    await store.finish('st-1', 'job-1', 1, 'w1', [{ key: first!, state: 'sent' }]);
    // Act: SES reports the delivery, then the worker claims the next recipient from its copy.
    const recorded = await new BulkStore(table).addEvent(
      'st-1',
      'job-1',
      recipientKey(1, 0),
      'delivered',
      '2026-12-01T10:00:00Z',
      'delivered',
    );
    await store.claim('st-1', 'job-1', 1, [recipientKey(1, 1)], 'w1', 2);
    // Assess
    const batch = await new BulkStore(table).batch('st-1', 'job-1', 1);
    expect(recorded).toBe(true);
    expect(batch[0]).toMatchObject({
      state: 'sent',
      events: { delivered: '2026-12-01T10:00:00Z' },
      eventDetail: 'delivered',
    });
    expect(batch[1]?.state).toBe('sending');
  });
});
