/**
 * Bulk jobs in the single table. One partition per job (PK `ST#sid#BULK#id`): the job (SK `JOB`)
 * and one item per batch (SK `B#00001`) holding its (at most 100) recipients, each with its state,
 * and the batch's counters. A recipient keeps its key (`R#00001#000001`: batch and position).
 *
 * Recipients move (queued → sending → sent…) by rewriting their batch item conditional on the
 * version it was read at; the step is decided on what was read (queued, or claimed by this
 * worker), so a retried batch, a duplicated queue message or a second worker can never claim (and
 * send) a recipient twice, and the counters, written in the same item, are exact. One write moves
 * a whole chunk of recipients; concurrent batches never write the same item.
 */
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionFailed, type Item, type Page, type Table } from '#lib/data/table';
import { ConflictError, NotFoundError } from '#lib/domain/errors';
import {
  type Counts,
  counts as countsSchema,
  type Job,
  job as jobSchema,
  type Recipient,
  type RecipientState,
  recipient as recipientSchema,
} from './model.ts';

export const jobPk = (sid: string, jobId: string) => `ST#${sid}#BULK#${jobId}`;
const jobListPk = (sid: string) => `ST#${sid}#BULKS`;
const pad = (n: number, width: number) => String(n).padStart(width, '0');
export const batchSk = (batch: number) => `B#${pad(batch, 5)}`;
export const recipientKey = (batch: number, position: number) => `R#${pad(batch, 5)}#${pad(position, 6)}`;

const COUNT_NAMES = ['queued', 'sending', 'sent', 'failed', 'skipped', 'cancelled', 'unknown'] as const;

export interface Outcome {
  key: string;
  state: Extract<RecipientState, 'sent' | 'failed' | 'queued' | 'skipped'>;
  set?: Partial<Pick<Recipient, 'messageId' | 'recordId' | 'sentAt' | 'error' | 'skipReason'>>;
}

function strip(item: Item): Item {
  const { PK: _pk, SK: _sk, GSI1PK: _g, GSI1SK: _gs, entity: _e, ...rest } = item;
  return rest;
}

export class BulkStore {
  constructor(readonly table: Table) {}

  /**
   * Writes the job, then each batch item (its recipients and counters in one item), calling
   * `written(batch)` as soon as one is stored, so sending can start while the rest is written. The
   * job comes first so a worker finds it; its `total` says how many recipients it will have.
   */
  async create(
    sid: string,
    j: Job,
    recipients: Recipient[],
    written: (batch: number) => Promise<void> = async () => {},
  ): Promise<void> {
    await this.putJob(sid, j);
    await this.writeBatches(sid, j.id, recipients, written);
  }

  /** Writes a new job (no batches yet). */
  async putJob(sid: string, j: Job): Promise<void> {
    try {
      await this.table.put(
        {
          PK: jobPk(sid, j.id),
          SK: 'JOB',
          entity: 'BULKJOB',
          GSI1PK: jobListPk(sid),
          GSI1SK: `${j.createdAt}#${j.id}`,
          ...j,
        },
        { expression: 'attribute_not_exists(PK)' },
      );
    } catch (error) {
      if (error instanceof ConditionFailed)
        throw new ConflictError(`A bulk email with id "${j.id}" already exists.`);
      throw error;
    }
  }

  /**
   * Writes the batch items of `recipients` that do not exist yet (a preparation that crashed and
   * runs again writes only the rest), a few requests in flight, calling `written(batch)` for each.
   */
  async writeBatches(
    sid: string,
    jobId: string,
    recipients: Recipient[],
    written: (batch: number) => Promise<void> = async () => {},
  ): Promise<void> {
    const byBatch = new Map<number, Recipient[]>();
    for (const r of recipients) {
      const list = byBatch.get(r.batch);
      if (list) list.push(r);
      else byBatch.set(r.batch, [r]);
    }
    const batches = [...byBatch];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(4, batches.length) }, async () => {
        while (next < batches.length) {
          const [b, rs] = batches[next++] as [number, Recipient[]];
          try {
            await this.table.put(batchItem(sid, jobId, b, 1, rs), {
              expression: 'attribute_not_exists(PK)',
            });
          } catch (error) {
            // Written before (a repeated preparation): it may have moved on since, so it stays.
            if (!(error instanceof ConditionFailed)) throw error;
          }
          await written(b);
        }
      }),
    );
  }

  /**
   * Writes new items (message records with fresh ids) 25 per request: after the outcome, as a
   * single send writes its record after the SMTP exchange.
   */
  async putItems(items: Item[]): Promise<void> {
    const chunks: Item[][] = [];
    for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(4, chunks.length) }, async () => {
        while (next < chunks.length) await this.batchWrite(chunks[next++] as Item[]);
      }),
    );
  }

  private async batchWrite(items: Item[]): Promise<void> {
    let pending = items.map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= 10) throw new Error(`DynamoDB left ${pending.length} writes unprocessed.`);
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      const out = await this.table.doc.send(
        new BatchWriteCommand({ RequestItems: { [this.table.name]: pending } }),
      );
      pending = (out.UnprocessedItems?.[this.table.name] ?? []) as typeof pending;
    }
  }

  async getJob(sid: string, jobId: string): Promise<Job | undefined> {
    const item = await this.table.get({ PK: jobPk(sid, jobId), SK: 'JOB' });
    return item ? jobSchema.parse(strip(item)) : undefined;
  }

  /** The batches already counted done (markBatchDone). */
  async doneBatches(sid: string, jobId: string): Promise<Set<number>> {
    const item = await this.table.get({ PK: jobPk(sid, jobId), SK: 'JOB' });
    return new Set([...((item?.doneBatches as Set<number> | undefined) ?? [])].map(Number));
  }

  async requireJob(sid: string, jobId: string): Promise<Job> {
    const j = await this.getJob(sid, jobId);
    if (!j) throw new NotFoundError('bulk email', jobId);
    return j;
  }

  async listJobs(sid: string, limit: number, cursor?: string): Promise<Page<Job>> {
    const page = await this.table.query(
      {
        IndexName: 'GSI1',
        KeyConditionExpression: 'GSI1PK = :pk',
        ExpressionAttributeValues: { ':pk': jobListPk(sid) },
        ScanIndexForward: false,
        Limit: limit,
      },
      cursor,
    );
    return { items: page.items.map((i) => jobSchema.parse(strip(i))), nextCursor: page.nextCursor };
  }

  /**
   * Moves the job from one of `from` to `status`; false when it was in none of them. `set` writes
   * further attributes; `remove` deletes some.
   */
  async setStatus(
    sid: string,
    jobId: string,
    from: Job['status'][],
    status: Job['status'],
    set: Record<string, unknown> = {},
    remove: string[] = [],
  ): Promise<boolean> {
    const names: Record<string, string> = { '#s': 'status' };
    const values: Item = { ':s': status };
    const sets = ['#s = :s'];
    for (const [i, [k, v]] of Object.entries(set).entries()) {
      names[`#a${i}`] = k;
      values[`:a${i}`] = v;
      sets.push(`#a${i} = :a${i}`);
    }
    const removes = remove.map((k, i) => {
      names[`#r${i}`] = k;
      return `#r${i}`;
    });
    from.forEach((f, i) => {
      values[`:f${i}`] = f;
    });
    try {
      await this.table.update({
        Key: { PK: jobPk(sid, jobId), SK: 'JOB' },
        UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
        ConditionExpression: `#s IN (${from.map((_, i) => `:f${i}`).join(', ')})`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      });
      return true;
    } catch (error) {
      if (error instanceof ConditionFailed) return false;
      throw error;
    }
  }

  /** Writes job attributes that are not its status (waiting time, failure streak). */
  async setJob(
    sid: string,
    jobId: string,
    set: Record<string, unknown>,
    remove: string[] = [],
  ): Promise<void> {
    const names: Record<string, string> = {};
    const values: Item = {};
    const sets = Object.entries(set).map(([k, v], i) => {
      names[`#a${i}`] = k;
      values[`:a${i}`] = v;
      return `#a${i} = :a${i}`;
    });
    const removes = remove.map((k, i) => {
      names[`#r${i}`] = k;
      return `#r${i}`;
    });
    if (!sets.length && !removes.length) return;
    await this.table.update({
      Key: { PK: jobPk(sid, jobId), SK: 'JOB' },
      UpdateExpression: [
        sets.length ? `SET ${sets.join(', ')}` : '',
        removes.length ? `REMOVE ${removes.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join(' '),
      ExpressionAttributeNames: names,
      ...(sets.length ? { ExpressionAttributeValues: values } : {}),
    });
  }

  /** Adds `n` to the job's failure streak, or resets it; returns the new streak. */
  async streak(sid: string, jobId: string, failures: number, reset: boolean): Promise<number> {
    const out = await this.table.update({
      Key: { PK: jobPk(sid, jobId), SK: 'JOB' },
      UpdateExpression: reset ? 'SET failStreak = :n' : 'ADD failStreak :n',
      ExpressionAttributeValues: { ':n': failures },
    });
    return Number(out?.failStreak ?? 0);
  }

  /** The job's counts: the sum of its batches' counters (only the counters are read). */
  async counts(sid: string, jobId: string): Promise<Counts> {
    const items = await this.batchCounters(sid, jobId);
    const sum = countsSchema.parse({});
    for (const item of items) for (const n of COUNT_NAMES) sum[n] += Number(item[n] ?? 0);
    return sum;
  }

  /** Batches that still have recipients queued (resume, continue after a cap period). */
  async batchesWithQueued(sid: string, jobId: string): Promise<number[]> {
    const items = await this.batchCounters(sid, jobId);
    return items.filter((i) => Number(i.queued ?? 0) > 0).map((i) => Number(i.batch));
  }

  /**
   * Batches with recipients still queued or being sent (to run), and those with neither (done:
   * every recipient sent, failed, skipped or cancelled — a batch of skipped ones only, say).
   */
  async batchesByWork(sid: string, jobId: string): Promise<{ toRun: number[]; idle: number[] }> {
    const items = await this.batchCounters(sid, jobId);
    const busy = (i: Item) => Number(i.queued ?? 0) + Number(i.sending ?? 0) > 0;
    return {
      toRun: items.filter(busy).map((i) => Number(i.batch)),
      idle: items.filter((i) => !busy(i)).map((i) => Number(i.batch)),
    };
  }

  /** Batches written so far. */
  async batchCount(sid: string, jobId: string): Promise<number> {
    return (await this.batchCounters(sid, jobId)).length;
  }

  private batchCounters(sid: string, jobId: string): Promise<Item[]> {
    return this.table.queryAll({
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :b)',
      ExpressionAttributeValues: { ':pk': jobPk(sid, jobId), ':b': 'B#' },
      ProjectionExpression: ['batch', ...COUNT_NAMES].map((_, i) => `#p${i}`).join(', '),
      ExpressionAttributeNames: Object.fromEntries(['batch', ...COUNT_NAMES].map((n, i) => [`#p${i}`, n])),
    });
  }

  /**
   * The batch as last read or written by this store (a worker's next move starts from it without
   * reading it again); the version condition of every write catches a copy that is out of date.
   */
  private readonly known = new Map<string, StoredBatch>();

  private remember(sid: string, jobId: string, batch: number, b: StoredBatch | undefined): void {
    const k = `${sid}\u0000${jobId}\u0000${batch}`;
    this.known.delete(k);
    if (!b) return;
    this.known.set(k, b);
    if (this.known.size > 400) this.known.delete(this.known.keys().next().value as string);
  }

  private async readBatch(
    sid: string,
    jobId: string,
    batch: number,
    fresh = true,
  ): Promise<StoredBatch | undefined> {
    if (!fresh) {
      const hit = this.known.get(`${sid}\u0000${jobId}\u0000${batch}`);
      if (hit) return hit;
    }
    const item = await this.table.get({ PK: jobPk(sid, jobId), SK: batchSk(batch) });
    const b = item
      ? {
          version: Number(item.version ?? 0),
          recipients: ((item.rs ?? []) as Item[]).map((r) => recipientSchema.parse(r)),
        }
      : undefined;
    this.remember(sid, jobId, batch, b);
    return b;
  }

  /** Nothing of the batch is queued or being sent any more (its recipients never go back). */
  async batchDone(sid: string, jobId: string, batch: number): Promise<boolean> {
    const b = await this.readBatch(sid, jobId, batch, false);
    return Boolean(b?.recipients.every((r) => r.state !== 'queued' && r.state !== 'sending'));
  }

  /**
   * Adds a done batch to the job's set of them (repeating it changes nothing); returns how many
   * batches are done, so the worker finishing the last one completes the job without summing them.
   */
  async markBatchDone(sid: string, jobId: string, batch: number): Promise<number> {
    const out = await this.table.update({
      Key: { PK: jobPk(sid, jobId), SK: 'JOB' },
      UpdateExpression: 'ADD doneBatches :b',
      ConditionExpression: 'attribute_exists(PK)',
      ExpressionAttributeValues: { ':b': new Set([batch]) },
    });
    return (out?.doneBatches as Set<number> | undefined)?.size ?? 0;
  }

  async batch(sid: string, jobId: string, batch: number): Promise<Recipient[]> {
    return (await this.readBatch(sid, jobId, batch))?.recipients ?? [];
  }

  async recipient(sid: string, jobId: string, key: string): Promise<Recipient | undefined> {
    const at = positionOf(key);
    if (!at) return undefined;
    return (await this.batch(sid, jobId, at.batch)).find((r) => r.key === key);
  }

  /** A page of the job's recipients in key order, optionally in one state; the cursor is the last key. */
  async recipients(
    sid: string,
    jobId: string,
    limit: number,
    cursor: string | undefined,
    state?: RecipientState,
  ): Promise<Page<Recipient>> {
    const after = cursor ?? '';
    const from = positionOf(after)?.batch ?? 1;
    const items: Recipient[] = [];
    let next = from;
    // Batch items in order, a few at a time, until the page is full.
    for (;;) {
      const page = await this.table.query({
        KeyConditionExpression: 'PK = :pk AND SK BETWEEN :a AND :z',
        ExpressionAttributeValues: { ':pk': jobPk(sid, jobId), ':a': batchSk(next), ':z': 'B#99999' },
        Limit: 5,
      });
      for (const item of page.items) {
        for (const raw of (item.rs ?? []) as Item[]) {
          const r = recipientSchema.parse(raw);
          if (r.key <= after || (state && r.state !== state)) continue;
          if (items.length === limit) return { items, nextCursor: items.at(-1)?.key };
          items.push(r);
        }
        next = Number(item.batch) + 1;
      }
      if (!page.nextCursor) return { items, nextCursor: undefined };
    }
  }

  /** Every recipient of the job (reports; a job is at most a few tens of thousands). */
  async allRecipients(sid: string, jobId: string): Promise<Recipient[]> {
    const items = await this.table.queryAll({
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :b)',
      ExpressionAttributeValues: { ':pk': jobPk(sid, jobId), ':b': 'B#' },
    });
    return items.flatMap((i) => ((i.rs ?? []) as Item[]).map((r) => recipientSchema.parse(r)));
  }

  /**
   * Claims queued recipients for one worker (`claim`): queued → sending. Returns the keys it got;
   * a recipient another worker claimed first (a duplicated message) is left out.
   */
  async claim(
    sid: string,
    jobId: string,
    batch: number,
    keys: string[],
    claim: string,
    at: number,
  ): Promise<string[]> {
    return this.move(sid, jobId, batch, keys, (r) =>
      r.state === 'queued'
        ? { ...r, state: 'sending', claim, claimedAt: at, attempts: r.attempts + 1 }
        : undefined,
    );
  }

  /**
   * Records what happened to claimed recipients (sent, failed, or given back to the queue), only
   * while the claim is still this worker's: a recipient declared `unknown` meanwhile keeps that state.
   */
  async finish(
    sid: string,
    jobId: string,
    batch: number,
    claim: string,
    outcomes: Outcome[],
  ): Promise<string[]> {
    const byKey = new Map(outcomes.map((o) => [o.key, o]));
    return this.move(sid, jobId, batch, [...byKey.keys()], (r) => {
      const o = byKey.get(r.key) as Outcome;
      if (r.state !== 'sending' || r.claim !== claim) return undefined;
      const { claim: _c, claimedAt: _t, ...rest } = r;
      const set = Object.fromEntries(Object.entries(o.set ?? {}).filter(([, v]) => v !== undefined));
      return { ...rest, ...set, state: o.state };
    });
  }

  /** Claims older than `staleBefore` belong to a worker that died mid-send: their outcome is unknown. */
  async markUnknown(
    sid: string,
    jobId: string,
    batch: number,
    keys: string[],
    staleBefore: number,
  ): Promise<string[]> {
    return this.move(sid, jobId, batch, keys, (r) => {
      if (r.state !== 'sending' || (r.claimedAt ?? 0) >= staleBefore) return undefined;
      const { claim: _c, ...rest } = r;
      return {
        ...rest,
        state: 'unknown',
        error:
          'The worker sending this email stopped before it could record the outcome; it may or may not have been delivered, so it was not sent again.',
      };
    });
  }

  /** Queued recipients of a cancelled job: queued → cancelled. */
  async cancelQueued(sid: string, jobId: string, batch: number, keys: string[]): Promise<string[]> {
    return this.move(sid, jobId, batch, keys, (r) =>
      r.state === 'queued' ? { ...r, state: 'cancelled' } : undefined,
    );
  }

  /**
   * Records an event (delivered, bounced, opened…) on a recipient once, and counts it for the job
   * in the same transaction; a repeated event (SES sends some twice, a second open) changes nothing.
   */
  async addEvent(
    sid: string,
    jobId: string,
    key: string,
    event: string,
    at: string,
    detail?: string,
  ): Promise<boolean> {
    const pos = positionOf(key);
    if (!pos) return false;
    const pk = jobPk(sid, jobId);
    const path = `rs[${pos.position}]`;
    try {
      await this.table.transact([
        {
          Update: {
            Key: { PK: pk, SK: batchSk(pos.batch) },
            // The version moves too: a worker rewriting the batch from an older copy (move) must
            // fail its condition and read again, or it would wipe this event.
            UpdateExpression: `SET ${path}.events.#e = :at${detail ? `, ${path}.eventDetail = :d` : ''}, version = version + :one`,
            ConditionExpression: `${path}.#k = :key AND attribute_not_exists(${path}.events.#e)`,
            ExpressionAttributeNames: { '#e': event, '#k': 'key' },
            ExpressionAttributeValues: {
              ':at': at,
              ':key': key,
              ':one': 1,
              ...(detail ? { ':d': detail.slice(0, 500) } : {}),
            },
          },
        },
        {
          Update: {
            Key: { PK: pk, SK: 'EVENTS' },
            UpdateExpression: 'ADD #e :one',
            ExpressionAttributeNames: { '#e': event },
            ExpressionAttributeValues: { ':one': 1 },
          },
        },
      ]);
      return true;
    } catch (error) {
      if (error instanceof ConditionFailed) return false;
      throw error;
    }
  }

  /** Events counted for the job (delivered, bounced, complained, opened, clicked, unsubscribed). */
  async eventCounts(sid: string, jobId: string): Promise<Record<string, number>> {
    const item = await this.table.get({ PK: jobPk(sid, jobId), SK: 'EVENTS' });
    const { PK: _p, SK: _s, ...rest } = item ?? {};
    return Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, Number(v)]));
  }

  /**
   * Moves the recipients `keys` of one batch by `step` (undefined: that one stays as it is) in one
   * write of the batch item, conditional on the version it was read at; when another worker wrote
   * it in between, it is read again and the step decided afresh on what is there now. Returns the
   * keys that moved.
   */
  private async move(
    sid: string,
    jobId: string,
    batch: number,
    keys: string[],
    step: (r: Recipient) => Recipient | undefined,
  ): Promise<string[]> {
    if (keys.length === 0) return [];
    const wanted = new Set(keys);
    for (let attempt = 0; ; attempt++) {
      // First from what this store last saw; after a refused write, read afresh.
      const hit = attempt === 0 ? this.known.get(`${sid}\u0000${jobId}\u0000${batch}`) : undefined;
      const stored = hit ?? (await this.readBatch(sid, jobId, batch));
      if (!stored) return [];
      const moved: string[] = [];
      const next = stored.recipients.map((r) => {
        if (!wanted.has(r.key)) return r;
        const after = step(r);
        if (!after) return r;
        moved.push(r.key);
        return after;
      });
      if (moved.length === 0) {
        if (!hit) return [];
        continue; // the copy may be old: decide again on a fresh read
      }
      try {
        await this.table.put(batchItem(sid, jobId, batch, stored.version + 1, next), {
          expression: 'version = :v',
          values: { ':v': stored.version },
        });
        this.remember(sid, jobId, batch, { version: stored.version + 1, recipients: next });
        return moved;
      } catch (error) {
        this.remember(sid, jobId, batch, undefined);
        if (!(error instanceof ConditionFailed) || attempt >= 20) throw error;
        if (!hit) await new Promise((r) => setTimeout(r, 5 + 20 * Math.random() * 2 ** Math.min(attempt, 5)));
      }
    }
  }
}

interface StoredBatch {
  version: number;
  recipients: Recipient[];
}

/** One batch's item: its recipients in position order and their counters, which always agree. */
function batchItem(
  sid: string,
  jobId: string,
  batch: number,
  version: number,
  rs: Recipient[],
): Item & {
  PK: string;
  SK: string;
} {
  const c = countsSchema.parse({});
  for (const r of rs) c[r.state] += 1;
  return {
    PK: jobPk(sid, jobId),
    SK: batchSk(batch),
    entity: 'BULKBATCH',
    batch,
    version,
    ...c,
    rs: rs.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))),
  };
}

/** `R#00002#000017` → batch 2, position 17. */
export function positionOf(key: string): { batch: number; position: number } | undefined {
  const m = /^R#(\d{5})#(\d{6})$/.exec(key);
  return m ? { batch: Number(m[1]), position: Number(m[2]) } : undefined;
}
