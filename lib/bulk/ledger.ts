/**
 * The studio's send ledger: one item per studio that every bulk worker and every single send
 * writes to, so the caps ("500 per 24 hours") are a sliding window shared by all of them and the
 * provider's rate holds across workers.
 *
 * Sends are counted in one-minute buckets; a cap's window is the buckets of its last period, and a
 * bucket leaves the window a whole period after its minute ends (so the window never lets more
 * through than the cap). Rate: the item keeps the time of the next free send slot; a reservation
 * of n sends takes n slots of 1/rate seconds from there. Writes are conditional on the item's
 * version, so two workers never take the same slots.
 */
import { ConditionFailed, type Table, type TxItem } from '#lib/data/table';
import type { Cap } from './model.ts';

const MINUTE = 60_000;

interface LedgerItem {
  version: number;
  /** Minute (epoch ms / 60000) → sends in it. */
  buckets: Record<string, number>;
  /** Epoch ms of the next free send slot. */
  nextSlotAt: number;
}

export interface Reservation {
  /** How many of those asked for may go now. */
  granted: number;
  /** Epoch ms at which each granted send may go (paced by the rate). */
  slots: number[];
  /** 1000 / rate: sends of one worker are never closer together than this. */
  intervalMs: number;
  /** When the rest can continue (the earliest time a cap lets at least one more through). */
  waitUntil?: number;
  /** The cap that held the rest back. */
  limitedBy?: Cap;
}

export interface LedgerLimits {
  caps: Cap[];
  ratePerSecond: number;
  /** Left of the provider's 24-hour quota (SES), counted outside this ledger. */
  remaining24h?: number;
}

const ledgerKey = (sid: string) => ({ PK: `ST#${sid}`, SK: 'SENDLEDGER' });

/** Sends in the window of `cap` at `now`, and the minute buckets in it, oldest first. */
function inWindow(buckets: Record<string, number>, cap: Cap, now: number): [minute: number, n: number][] {
  const from = now - cap.periodMinutes * MINUTE;
  return Object.entries(buckets)
    .map(([m, n]) => [Number(m), n] as [number, number])
    .filter(([m]) => (m + 1) * MINUTE > from)
    .sort((a, b) => a[0] - b[0]);
}

export class SendLedger {
  constructor(private readonly table: Table) {}

  private async read(sid: string): Promise<LedgerItem> {
    const item = await this.table.get<LedgerItem>(ledgerKey(sid));
    return item ?? { version: 0, buckets: {}, nextSlotAt: 0 };
  }

  private async write(sid: string, before: LedgerItem, after: LedgerItem): Promise<boolean> {
    try {
      await this.table.put(
        { ...ledgerKey(sid), entity: 'SENDLEDGER', ...after, version: before.version + 1 },
        before.version === 0
          ? { expression: 'attribute_not_exists(PK)' }
          : { expression: 'version = :v', values: { ':v': before.version } },
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionFailed) return false;
      throw error;
    }
  }

  /** Sends made in each cap's current window. */
  async usage(sid: string, caps: Cap[], now: number): Promise<{ cap: Cap; used: number }[]> {
    const item = await this.read(sid);
    return caps.map((cap) => ({
      cap,
      used: inWindow(item.buckets, cap, now).reduce((s, [, n]) => s + n, 0),
    }));
  }

  /** Reserves up to `wanted` sends under the caps, the provider quota and the rate. */
  async reserve(sid: string, wanted: number, limits: LedgerLimits, now: number): Promise<Reservation> {
    for (let attempt = 0; ; attempt++) {
      const item = await this.read(sid);
      const longest = Math.max(24 * 60, ...limits.caps.map((c) => c.periodMinutes));
      // Buckets older than the longest window are dropped, so the item stays small.
      const buckets = Object.fromEntries(
        Object.entries(item.buckets).filter(([m]) => (Number(m) + 1) * MINUTE > now - longest * MINUTE),
      );
      let granted = Math.max(0, Math.min(wanted, limits.remaining24h ?? wanted));
      let limitedBy: Cap | undefined;
      for (const cap of limits.caps) {
        const used = inWindow(buckets, cap, now).reduce((s, [, n]) => s + n, 0);
        const room = Math.max(0, cap.count - used);
        if (room < granted) {
          granted = room;
          limitedBy = cap;
        }
      }
      const minute = String(Math.floor(now / MINUTE));
      if (granted > 0) buckets[minute] = (buckets[minute] ?? 0) + granted;
      let waitUntil: number | undefined;
      if (granted < wanted) {
        // A full cap lets one more through when its oldest bucket leaves the window.
        for (const cap of limits.caps) {
          const window = inWindow(buckets, cap, now);
          const used = window.reduce((s, [, n]) => s + n, 0);
          const oldest = window[0];
          if (used >= cap.count && oldest)
            waitUntil = Math.max(waitUntil ?? 0, (oldest[0] + 1) * MINUTE + cap.periodMinutes * MINUTE);
        }
        // SES counts its own 24 hours; look again in an hour.
        if (waitUntil === undefined) waitUntil = now + 60 * MINUTE;
      }
      if (granted === 0) return { granted: 0, slots: [], intervalMs: 0, waitUntil, limitedBy };
      const interval = 1000 / limits.ratePerSecond;
      // The first slot lies a little ahead, so the claim before sending does not make it late
      // (a late slot would be caught up in a burst).
      const start = Math.max(now + Math.min(1000, 50 * interval), item.nextSlotAt);
      const slots = Array.from({ length: granted }, (_, i) => start + i * interval);
      const ok = await this.write(sid, item, {
        version: item.version,
        buckets,
        nextSlotAt: start + granted * interval,
      });
      if (ok)
        return {
          granted,
          slots,
          intervalMs: interval,
          ...(granted < wanted ? { waitUntil, limitedBy } : {}),
        };
      if (attempt > 50) throw new Error('The send ledger is too busy; try again.');
    }
  }

  /** Gives back reserved sends that did not go (a worker stopping early). */
  async giveBack(sid: string, n: number, reservedAt: number): Promise<void> {
    if (n <= 0) return;
    for (let attempt = 0; attempt < 50; attempt++) {
      const item = await this.read(sid);
      const minute = String(Math.floor(reservedAt / MINUTE));
      const buckets = { ...item.buckets, [minute]: Math.max(0, (item.buckets[minute] ?? 0) - n) };
      if (await this.write(sid, item, { ...item, buckets })) return;
    }
  }

  /**
   * Counts single (transactional) sends against the caps: one update that bumps the version, so
   * a reservation that read the item before retries instead of overwriting the count.
   */
  /**
   * `record` as one write for a caller's transaction, for a studio whose ledger exists (the
   * condition fails the transaction otherwise; the caller then writes `record` on its own).
   */
  recordWrite(sid: string, n: number, now: number) {
    return {
      Update: {
        Key: ledgerKey(sid),
        UpdateExpression: 'SET buckets.#m = if_not_exists(buckets.#m, :zero) + :n, version = version + :one',
        ConditionExpression: 'attribute_exists(buckets)',
        ExpressionAttributeNames: { '#m': String(Math.floor(now / MINUTE)) },
        ExpressionAttributeValues: { ':n': n, ':zero': 0, ':one': 1 },
      },
    } satisfies TxItem;
  }

  async record(sid: string, n: number, now: number): Promise<void> {
    const minute = String(Math.floor(now / MINUTE));
    try {
      await this.table.update({
        Key: ledgerKey(sid),
        UpdateExpression: 'SET buckets.#m = if_not_exists(buckets.#m, :zero) + :n, version = version + :one',
        ConditionExpression: 'attribute_exists(PK)',
        ExpressionAttributeNames: { '#m': minute },
        ExpressionAttributeValues: { ':n': n, ':zero': 0, ':one': 1 },
        ReturnValues: 'NONE',
      });
      return;
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
    }
    // The studio's first send: make the item.
    for (let attempt = 0; attempt < 50; attempt++) {
      const item = await this.read(sid);
      const buckets = { ...item.buckets, [minute]: (item.buckets[minute] ?? 0) + n };
      if (await this.write(sid, item, { ...item, buckets })) return;
    }
  }
}
