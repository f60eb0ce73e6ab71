/**
 * Bulk jobs in the single table. One partition per job (PK `ST#sid#BULK#id`): the job (SK `JOB`),
 * one counter item per batch (SK `B#00001`) and one item per recipient (SK `R#00001#000001`).
 *
 * A recipient's state only moves by a conditional write on its current state (and, once claimed,
 * on the claim of the worker that holds it), batched in transactions together with its batch's
 * counters, so the counters are exact and a retried batch, a duplicated queue message or a second
 * worker can never claim (and send) a recipient twice. Batches have their own counter items so
 * that concurrent batches never write the same item.
 */
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionFailed, type Item, type Page, type Table, type TxItem } from '#lib/data/table';
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

/** A transaction holds at most 100 writes; one goes to the batch counters. */
const TX_LIMIT = 100;

export interface Outcome {
  key: string;
  state: Extract<RecipientState, 'sent' | 'failed' | 'queued' | 'skipped'>;
  set?: Partial<Pick<Recipient, 'messageId' | 'recordId' | 'sentAt' | 'error' | 'skipReason'>>;
  /** Written in the same transaction (the message record on the client). */
  extra?: TxItem[];
}

function strip(item: Item): Item {
  const { PK: _pk, SK: _sk, GSI1PK: _g, GSI1SK: _gs, entity: _e, ...rest } = item;
  return rest;
}

export class BulkStore {
  constructor(readonly table: Table) {}

  /**
   * Writes the job, then each batch (its recipients, then its counters), calling `written(batch)`
   * as soon as one is complete, so sending can start while the rest is written. The job comes
   * first so a worker finds it; its `total` says how many recipients it will have.
   */
  async create(
    sid: string,
    j: Job,
    recipients: Recipient[],
    written: (batch: number) => Promise<void> = async () => {},
  ): Promise<void> {
    const pk = jobPk(sid, j.id);
    try {
      await this.table.put(
        {
          PK: pk,
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
    const byBatch = new Map<number, Recipient[]>();
    for (const r of recipients) byBatch.set(r.batch, [...(byBatch.get(r.batch) ?? []), r]);
    const batches = [...byBatch];
    let next = 0;
    // A few batches in flight: a 10,000-recipient job is 100 of them.
    await Promise.all(
      Array.from({ length: Math.min(4, batches.length) }, async () => {
        while (next < batches.length) {
          const [b, rs] = batches[next++] as [number, Recipient[]];
          const c = countsSchema.parse({});
          for (const r of rs) c[r.state] += 1;
          await this.putItems(rs.map((r) => ({ PK: pk, SK: r.key, entity: 'BULKRCPT', ...r })));
          // The counters last: a batch is complete once they exist.
          await this.table.put({ PK: pk, SK: batchSk(b), entity: 'BULKBATCH', batch: b, ...c });
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
    // A few requests in flight: a 10,000-recipient job is 400 of them.
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(8, chunks.length) }, async () => {
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

  /** The job's counts: the sum of its batches' counters. */
  async counts(sid: string, jobId: string): Promise<Counts> {
    const items = await this.table.queryAll({
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :b)',
      ExpressionAttributeValues: { ':pk': jobPk(sid, jobId), ':b': 'B#' },
    });
    const sum = countsSchema.parse({});
    for (const item of items) for (const n of COUNT_NAMES) sum[n] += Number(item[n] ?? 0);
    return sum;
  }

  /** Batches that still have recipients queued (resume, continue after a cap period). */
  async batchesWithQueued(sid: string, jobId: string): Promise<number[]> {
    const items = await this.table.queryAll({
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :b)',
      ExpressionAttributeValues: { ':pk': jobPk(sid, jobId), ':b': 'B#' },
    });
    return items.filter((i) => Number(i.queued ?? 0) > 0).map((i) => Number(i.batch));
  }

  async batch(sid: string, jobId: string, batch: number): Promise<Recipient[]> {
    const items = await this.table.queryAll({
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :r)',
      ExpressionAttributeValues: { ':pk': jobPk(sid, jobId), ':r': `R#${pad(batch, 5)}#` },
      ConsistentRead: true,
    });
    return items.map((i) => recipientSchema.parse(strip(i)));
  }

  async recipient(sid: string, jobId: string, key: string): Promise<Recipient | undefined> {
    const item = await this.table.get({ PK: jobPk(sid, jobId), SK: key });
    return item ? recipientSchema.parse(strip(item)) : undefined;
  }

  async recipients(
    sid: string,
    jobId: string,
    limit: number,
    cursor: string | undefined,
    state?: RecipientState,
  ): Promise<Page<Recipient>> {
    const input = {
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :r)',
      ExpressionAttributeValues: { ':pk': jobPk(sid, jobId), ':r': 'R#', ...(state ? { ':s': state } : {}) },
      ...(state ? { FilterExpression: '#st = :s', ExpressionAttributeNames: { '#st': 'state' } } : {}),
    };
    const page = state
      ? await this.table.queryFiltered(input, limit, cursor, ['PK', 'SK'])
      : await this.table.query({ ...input, Limit: limit }, cursor);
    return {
      items: page.items.map((i) => recipientSchema.parse(strip(i as Item))),
      nextCursor: page.nextCursor,
    };
  }

  /** Every recipient of the job (reports; a job is at most a few tens of thousands). */
  async allRecipients(sid: string, jobId: string): Promise<Recipient[]> {
    const items = await this.table.queryAll({
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :r)',
      ExpressionAttributeValues: { ':pk': jobPk(sid, jobId), ':r': 'R#' },
    });
    return items.map((i) => recipientSchema.parse(strip(i)));
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
    const pk = jobPk(sid, jobId);
    const write = (key: string): TxItem => ({
      Update: {
        Key: { PK: pk, SK: key },
        UpdateExpression: 'SET #st = :sending, claim = :c, claimedAt = :t ADD attempts :one',
        ConditionExpression: '#st = :queued',
        ExpressionAttributeNames: { '#st': 'state' },
        ExpressionAttributeValues: {
          ':sending': 'sending',
          ':queued': 'queued',
          ':c': claim,
          ':t': at,
          ':one': 1,
        },
      },
    });
    return this.moveAll(sid, jobId, batch, keys, write, { queued: -1, sending: 1 });
  }

  /**
   * Records what happened to claimed recipients (sent, failed, or given back to the queue),
   * conditional on the claim still being this worker's: a recipient declared `unknown` meanwhile
   * keeps that state.
   */
  async finish(
    sid: string,
    jobId: string,
    batch: number,
    claim: string,
    outcomes: Outcome[],
  ): Promise<string[]> {
    const pk = jobPk(sid, jobId);
    const done: string[] = [];
    // Outcomes with the same state share a transaction, so one counter update covers them.
    for (const state of ['sent', 'failed', 'queued', 'skipped'] as const) {
      const group = outcomes.filter((o) => o.state === state);
      const byKey = new Map(group.map((o) => [o.key, o]));
      const write = (key: string): TxItem[] => {
        const o = byKey.get(key) as Outcome;
        const names: Record<string, string> = { '#st': 'state' };
        const values: Item = { ':st': state, ':sending': 'sending', ':c': claim };
        const sets = ['#st = :st'];
        for (const [i, [k, v]] of Object.entries(o.set ?? {}).entries()) {
          if (v === undefined) continue;
          names[`#f${i}`] = k;
          values[`:f${i}`] = v;
          sets.push(`#f${i} = :f${i}`);
        }
        return [
          {
            Update: {
              Key: { PK: pk, SK: key },
              UpdateExpression: `SET ${sets.join(', ')} REMOVE claim, claimedAt`,
              ConditionExpression: '#st = :sending AND claim = :c',
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: values,
            },
          },
          ...(o.extra ?? []),
        ];
      };
      done.push(
        ...(await this.moveAll(sid, jobId, batch, [...byKey.keys()], write, { sending: -1, [state]: 1 })),
      );
    }
    return done;
  }

  /** Claims older than `staleBefore` belong to a worker that died mid-send: their outcome is unknown. */
  async markUnknown(
    sid: string,
    jobId: string,
    batch: number,
    keys: string[],
    staleBefore: number,
  ): Promise<string[]> {
    const pk = jobPk(sid, jobId);
    const write = (key: string): TxItem => ({
      Update: {
        Key: { PK: pk, SK: key },
        UpdateExpression: 'SET #st = :unknown, #err = :why REMOVE claim',
        ConditionExpression: '#st = :sending AND claimedAt < :t',
        ExpressionAttributeNames: { '#st': 'state', '#err': 'error' },
        ExpressionAttributeValues: {
          ':unknown': 'unknown',
          ':sending': 'sending',
          ':t': staleBefore,
          ':why':
            'The worker sending this email stopped before it could record the outcome; it may or may not have been delivered, so it was not sent again.',
        },
      },
    });
    return this.moveAll(sid, jobId, batch, keys, write, { sending: -1, unknown: 1 });
  }

  /** Queued recipients of a cancelled job: queued → cancelled. */
  async cancelQueued(sid: string, jobId: string, batch: number, keys: string[]): Promise<string[]> {
    const pk = jobPk(sid, jobId);
    const write = (key: string): TxItem => ({
      Update: {
        Key: { PK: pk, SK: key },
        UpdateExpression: 'SET #st = :cancelled',
        ConditionExpression: '#st = :queued',
        ExpressionAttributeNames: { '#st': 'state' },
        ExpressionAttributeValues: { ':cancelled': 'cancelled', ':queued': 'queued' },
      },
    });
    return this.moveAll(sid, jobId, batch, keys, write, { queued: -1, cancelled: 1 });
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
    const pk = jobPk(sid, jobId);
    try {
      await this.table.transact([
        {
          Update: {
            Key: { PK: pk, SK: key },
            UpdateExpression: `SET events.#e = :at${detail ? ', eventDetail = :d' : ''}`,
            ConditionExpression: 'attribute_exists(PK) AND attribute_not_exists(events.#e)',
            ExpressionAttributeNames: { '#e': event },
            ExpressionAttributeValues: { ':at': at, ...(detail ? { ':d': detail } : {}) },
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
   * Applies `write` to each key in transactions with the batch's counters; when a transaction is
   * refused because some recipient is no longer in the expected state, each key is tried alone,
   * so the others still move. Returns the keys that moved.
   */
  private async moveAll(
    sid: string,
    jobId: string,
    batch: number,
    keys: string[],
    write: (key: string) => TxItem | TxItem[],
    delta: Partial<Record<RecipientState, number>>,
  ): Promise<string[]> {
    const moved: string[] = [];
    if (keys.length === 0) return moved;
    const perKey = Math.max(1, [write(keys[0] ?? '')].flat().length);
    const size = Math.max(1, Math.floor((TX_LIMIT - 1) / perKey));
    for (let i = 0; i < keys.length; i += size) {
      const chunk = keys.slice(i, i + size);
      try {
        await this.table.transact([
          ...chunk.flatMap((k) => [write(k)].flat()),
          this.counter(sid, jobId, batch, delta, chunk.length),
        ]);
        moved.push(...chunk);
      } catch (error) {
        if (!(error instanceof ConditionFailed) || chunk.length === 1) {
          if (error instanceof ConditionFailed) continue;
          throw error;
        }
        for (const k of chunk) {
          try {
            await this.transact([...[write(k)].flat(), this.counter(sid, jobId, batch, delta, 1)]);
            moved.push(k);
          } catch (e) {
            if (!(e instanceof ConditionFailed)) throw e;
          }
        }
      }
    }
    return moved;
  }

  /**
   * A transaction, tried again when it only collided with another one on the same items (two
   * workers of one batch, after a duplicated message): DynamoDB cancels both sides then.
   */
  private async transact(items: TxItem[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.table.transact(items);
      } catch (error) {
        const e = error as { name?: string; CancellationReasons?: { Code?: string }[] };
        const conflict =
          e.name === 'TransactionConflictException' ||
          (e.name === 'TransactionCanceledException' &&
            e.CancellationReasons?.some((r) => r.Code === 'TransactionConflict'));
        if (!conflict || attempt >= 8) throw error;
        await new Promise((r) => setTimeout(r, 20 * 2 ** attempt * Math.random()));
      }
    }
  }

  private counter(
    sid: string,
    jobId: string,
    batch: number,
    delta: Partial<Record<RecipientState, number>>,
    n: number,
  ): TxItem {
    const entries = Object.entries(delta);
    return {
      Update: {
        Key: { PK: jobPk(sid, jobId), SK: batchSk(batch) },
        UpdateExpression: `ADD ${entries.map((_, i) => `#c${i} :c${i}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(entries.map(([k], i) => [`#c${i}`, k])),
        ExpressionAttributeValues: Object.fromEntries(entries.map(([, v], i) => [`:c${i}`, (v ?? 0) * n])),
      },
    };
  }
}
