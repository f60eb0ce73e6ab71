/**
 * The bulk worker: handles one queue message at a time. `start` fans a job out into one message
 * per batch; `batch` sends that batch's queued recipients, a few at a time:
 *
 * 1. recipients another worker claimed long ago (it died mid-send) become `unknown`, not re-sent;
 * 2. the studio's ledger grants as many sends as the caps, the provider quota and the rate allow
 *    (the rest wait: a one-off timer continues the job when the cap's window has room);
 * 3. the granted ones are claimed (queued → sending, conditional, in one transaction), sent at
 *    their rate slots, and their outcomes written (sending → sent/failed, conditional on the claim)
 *    together with the message record on the client.
 *
 * A message may arrive twice or again after a crash: every step is safe to repeat.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import * as z from 'zod';
import { clientTimelinePk } from '#lib/data/keys';
import type { Repositories } from '#lib/data/repositories';
import type { Item } from '#lib/data/table';
import { client as clientSchema, type Message } from '#lib/domain/model';
import type { BlobStore } from '#lib/ports/index';
import type { BlockList } from './blocks.ts';
import type { SendLedger } from './ledger.ts';
import {
  type BatchContext,
  type BulkMailer,
  BulkNotReadyError,
  type MergeClient,
  type SendOutcome,
} from './mailer.ts';
import {
  type BulkMessage,
  type BulkSettings,
  type Job,
  type Recipient,
  recipient as recipientSchema,
} from './model.ts';
import type { BulkQueue, JobTimer, ProviderQuota } from './ports.ts';
import type { BulkStore, Outcome } from './store.ts';

export interface WorkerDeps {
  store: BulkStore;
  ledger: SendLedger;
  blocks: BlockList;
  mailer: BulkMailer;
  repos: Repositories;
  blobs: BlobStore;
  queue: BulkQueue;
  timer: JobTimer;
  quota?: ProviderQuota;
  settings: (sid: string) => Promise<BulkSettings>;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  now: () => Date;
}

export interface WorkerOptions {
  /** Recipients claimed at once; a worker that dies leaves at most this many `unknown`. */
  claimSize: number;
  /** Sends in flight at once (the pooled SMTP connections). */
  concurrency: number;
  /** A claim older than this belongs to a worker that died (longer than any batch takes). */
  leaseMs: number;
  /** How long a batch whose sends were refused "not now" waits before it is tried again. */
  retryLaterMs: number;
  /** Waits for a send slot; tests may pass one that does not wait. */
  sleep: (ms: number) => Promise<void>;
  /** Keep a raw copy of every sent message, as single sends do. */
  keepRaw: boolean;
  /** How long a job's settings, letter and password are reused between its batches. */
  contextTtlMs: number;
}

export const defaultWorkerOptions: WorkerOptions = {
  claimSize: 50,
  concurrency: 5,
  leaseMs: 10 * 60_000,
  retryLaterMs: 60_000,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  keepRaw: true,
  contextTtlMs: 30_000,
};

/** SMTP 5.1.x: the mailbox does not exist (or the address is bad); the address goes on the block list. */
const NO_SUCH_USER = /\b5\.1\.[0-9]\b/;

export const continueTimer = (jobId: string) => `bulk-${jobId}-continue`;
export const startTimer = (jobId: string) => `bulk-${jobId}-start`;

export class BulkWorker {
  private readonly o: WorkerOptions;
  constructor(
    private readonly d: WorkerDeps,
    options: Partial<WorkerOptions> = {},
  ) {
    this.o = { ...defaultWorkerOptions, ...options };
  }

  async handle(message: BulkMessage): Promise<void> {
    if (message.kind === 'prepare') return this.prepare(message.studioId, message.jobId);
    if (message.kind === 'start') return this.start(message.studioId, message.jobId);
    return this.batch(message.studioId, message.jobId, message.batch);
  }

  /**
   * Writes the job's batches from its stored recipient list, sending each as soon as it is
   * written when the job starts now. Run again (a crash, a redelivered message, a resume) it
   * writes only the batches still missing, so nothing is lost or written twice.
   */
  async prepare(sid: string, jobId: string): Promise<void> {
    const { store } = this.d;
    const job = await store.getJob(sid, jobId);
    if (!job?.recipientsKey || job.prepared) return;
    if (job.status === 'cancelled' || job.status === 'completed') return;
    const list = JSON.parse((await this.d.blobs.getBuffer(job.recipientsKey)).toString('utf8')) as unknown;
    const recipients = recipientList.parse(list);
    const sendNow =
      (job.status === 'preparing' || job.status === 'running') &&
      Date.parse(job.startAt) <= this.d.now().getTime();
    await store.writeBatches(sid, jobId, recipients, async (batch) => {
      if (sendNow) await this.d.queue.send([{ kind: 'batch', studioId: sid, jobId, batch }]);
    });
    await store.setJob(sid, jobId, { prepared: true });
    const due = Date.parse(job.startAt) <= this.d.now().getTime();
    await store.setStatus(sid, jobId, ['preparing'], due ? 'running' : 'scheduled');
    await this.d.blobs
      .delete(job.recipientsKey)
      .catch((error: unknown) =>
        this.d.logger.warn('bulk recipient list not deleted', { jobId, errorMessage: String(error) }),
      );
    const now = await store.getJob(sid, jobId);
    if (now?.status === 'cancelled') {
      // Cancelled while being prepared: the batches written after the cancel are cancelled too.
      for (const batch of await store.batchesWithQueued(sid, jobId)) {
        const queued = (await store.batch(sid, jobId, batch)).filter((r) => r.state === 'queued');
        await store.cancelQueued(
          sid,
          jobId,
          batch,
          queued.map((r) => r.key),
        );
      }
    } else if (now?.status === 'running') {
      // Batches not sent while written (the start came during the preparation) are sent now;
      // the last batch may have finished before the job was running.
      if (!sendNow) await this.start(sid, jobId);
      else await this.completeIfDone(sid, jobId);
    }
  }

  /**
   * Starts (or continues) a job: one message per batch that still has recipients queued or being
   * sent. Batches with neither (all skipped, say) are counted done first: the job completes when
   * every batch is, and no message would ever come for those.
   */
  async start(sid: string, jobId: string): Promise<void> {
    const job = await this.d.store.getJob(sid, jobId);
    if (!job) return;
    if (job.status === 'scheduled') await this.d.store.setStatus(sid, jobId, ['scheduled'], 'running');
    else if (job.status !== 'running') return;
    if (job.waitingUntil) await this.d.store.setJob(sid, jobId, {}, ['waitingUntil']);
    const [{ toRun: batches, idle }, done] = await Promise.all([
      this.d.store.batchesByWork(sid, jobId),
      this.d.store.doneBatches(sid, jobId),
    ]);
    for (const batch of idle) if (!done.has(batch)) await this.d.store.markBatchDone(sid, jobId, batch);
    if (batches.length === 0) return void (await this.completeIfDone(sid, jobId));
    for (let i = 0; i < batches.length; i += 10)
      await this.d.queue.send(
        batches.slice(i, i + 10).map((batch) => ({ kind: 'batch', studioId: sid, jobId, batch })),
      );
  }

  async batch(sid: string, jobId: string, batch: number): Promise<void> {
    const { store } = this.d;
    const job = await store.getJob(sid, jobId);
    if (!job) return;
    const recipients = await store.batch(sid, jobId, batch);
    const nowMs = () => this.d.now().getTime();
    const stale = recipients.filter(
      (r) => r.state === 'sending' && (r.claimedAt ?? 0) < nowMs() - this.o.leaseMs,
    );
    if (stale.length) {
      const marked = await store.markUnknown(
        sid,
        jobId,
        batch,
        stale.map((r) => r.key),
        nowMs() - this.o.leaseMs,
      );
      if (marked.length)
        this.d.logger.warn('bulk recipients with unknown outcome', { jobId, batch, count: marked.length });
    }
    const queued = recipients.filter((r) => r.state === 'queued');
    if (job.status === 'cancelled') {
      await store.cancelQueued(
        sid,
        jobId,
        batch,
        queued.map((r) => r.key),
      );
      return void (await this.completeIfDone(sid, jobId, batch));
    }
    if (!sending(job, nowMs())) return;
    if (job.waitingUntil && Date.parse(job.waitingUntil) > nowMs()) return;
    if (queued.length === 0) return void (await this.completeIfDone(sid, jobId, batch));

    const settings = await this.settings(sid);
    let ctx: BatchContext;
    try {
      ctx = this.d.mailer.withTransport(await this.context(sid, job, settings));
    } catch (error) {
      if (!(error instanceof BulkNotReadyError)) throw error;
      await store.setStatus(sid, jobId, ['preparing', 'running'], 'paused', { pauseReason: error.message });
      return;
    }
    try {
      await this.sendBatch(sid, job, batch, queued, ctx, settings);
    } finally {
      ctx.open?.release();
    }
  }

  private async sendBatch(
    sid: string,
    first: Job,
    batch: number,
    waiting: Recipient[],
    ctx: BatchContext,
    settings: BulkSettings,
  ): Promise<void> {
    const { store } = this.d;
    const jobId = first.id;
    const nowMs = () => this.d.now().getTime();
    const job = first;
    let queued = waiting;
    const clients = await this.clients(sid, queued);
    const limits = await this.limits(ctx, settings);
    const streak = job.failStreak;

    // One reservation for the batch: the caps, the provider quota and the rate slots.
    const reservedAt = nowMs();
    const grant = await this.d.ledger.reserve(sid, queued.length, limits, reservedAt);
    const slotOf = new Map(queued.slice(0, grant.granted).map((r, i) => [r.key, grant.slots[i] ?? 0]));
    if (grant.granted < queued.length && grant.waitUntil) {
      // The cap is reached: the rest of the job waits for the window to make room.
      const until = new Date(grant.waitUntil);
      await store.setJob(sid, jobId, { waitingUntil: until.toISOString() });
      await this.d.timer.at(continueTimer(jobId), until, { kind: 'start', studioId: sid, jobId });
    }
    queued = queued.slice(0, grant.granted);
    // Sends reserved but not made (paused, refused "not now") go back; after a crash they stay
    // counted, which errs on the side of the cap.
    const slots = { of: slotOf, intervalMs: grant.intervalMs };
    const unused = await this.sendGranted(sid, job, batch, queued, ctx, settings, clients, slots, streak);
    if (unused > 0) await this.d.ledger.giveBack(sid, unused, reservedAt);
    await this.completeIfDone(sid, jobId, batch);
  }

  /** Sends the granted recipients a chunk at a time; returns how many reserved sends were not used. */
  private async sendGranted(
    sid: string,
    first: Job,
    batch: number,
    granted: Recipient[],
    ctx: BatchContext,
    settings: BulkSettings,
    clients: Map<string, MergeClient>,
    slots: { of: Map<string, number>; intervalMs: number },
    streakBefore: number,
  ): Promise<number> {
    const { store } = this.d;
    const jobId = first.id;
    const nowMs = () => this.d.now().getTime();
    let job = first;
    let streak = streakBefore;
    let unused = granted.length;
    let queued = granted;
    while (queued.length > 0) {
      // Paused or cancelled meanwhile: stop before claiming more.
      if (!sending(job, nowMs())) break;
      const chunk = queued.slice(0, this.o.claimSize);
      const claim = randomUUID();
      const claimed = new Set(
        await store.claim(
          sid,
          jobId,
          batch,
          chunk.map((r) => r.key),
          claim,
          nowMs(),
        ),
      );
      const mine = chunk.filter((r) => claimed.has(r.key));
      const results = await this.sendAll(
        sid,
        job,
        ctx,
        mine,
        clients,
        slots.of,
        slots.intervalMs,
        streak,
        settings.pauseAfterFailures,
      );
      const outcomes = await Promise.all(results.map((x) => this.outcome(sid, job, x.r, x.sent, x.sentAt)));
      await store.finish(sid, jobId, batch, claim, outcomes);
      await store.putItems(outcomes.flatMap((o) => o.records ?? []));
      unused -= results.filter((x) => x.sent).length;
      for (const x of results) await this.afterSend(sid, jobId, x.r, x.sent);

      // The run of failures, across chunks and batches: reset by any success.
      const ends = trailingFailures(results);
      const anySent = results.some((x) => x.sent?.ok);
      // Nothing to write when the streak was nought and stays so.
      if (ends > 0 || (anySent && (streak > 0 || job.failStreak > 0)))
        streak = await store.streak(sid, jobId, ends, anySent);
      else if (anySent) streak = 0;
      const transient = results.some((x) => x.sent && !x.sent.ok && x.sent.diagnosis.retryable);
      if (streak >= settings.pauseAfterFailures) {
        const last = [...results].reverse().find((x) => x.sent && !x.sent.ok)?.sent;
        const why =
          last && !last.ok
            ? [last.diagnosis.problem, last.diagnosis.serverReply].filter(Boolean).join(' Server said: ')
            : '';
        await store.setStatus(sid, jobId, ['preparing', 'running'], 'paused', {
          pauseReason: `Paused after ${streak} failed emails in a row. ${why}`.trim(),
        });
        return unused;
      }
      if (transient) {
        // "Not now" after the retries: the batch comes back later instead of burning through.
        await this.d.timer.at(`bulk-${jobId}-retry-${batch}`, new Date(nowMs() + this.o.retryLaterMs), {
          kind: 'batch',
          studioId: sid,
          jobId,
          batch,
        });
        return unused;
      }
      queued = queued.slice(chunk.length);
      if (queued.length) job = (await store.getJob(sid, jobId)) ?? job;
    }
    return unused;
  }

  private readonly settingsCache = new Map<string, { at: number; value: Promise<BulkSettings> }>();

  /** The studio's bulk settings, reused for a little while like the context. */
  private settings(sid: string): Promise<BulkSettings> {
    const hit = this.settingsCache.get(sid);
    if (hit && Date.now() - hit.at < this.o.contextTtlMs) return hit.value;
    const value = this.d.settings(sid);
    this.settingsCache.set(sid, { at: Date.now(), value });
    value.catch(() => this.settingsCache.delete(sid));
    if (this.settingsCache.size > 100)
      this.settingsCache.delete(this.settingsCache.keys().next().value as string);
    return value;
  }

  /** Settings, letter, signature and password read once per job for a little while, not per batch. */
  private readonly contexts = new Map<string, { at: number; ctx: Promise<BatchContext> }>();

  private context(sid: string, job: Job, settings: BulkSettings): Promise<BatchContext> {
    const key = `${sid}\u0000${job.id}`;
    const hit = this.contexts.get(key);
    if (hit && Date.now() - hit.at < this.o.contextTtlMs) return hit.ctx.then((c) => ({ ...c, settings }));
    const ctx = this.d.mailer.context(sid, job, settings);
    this.contexts.set(key, { at: Date.now(), ctx });
    ctx.catch(() => this.contexts.delete(key));
    if (this.contexts.size > 100) this.contexts.delete(this.contexts.keys().next().value as string);
    return ctx;
  }

  private async limits(ctx: BatchContext, settings: BulkSettings) {
    if (ctx.effective.transport.value.method === 'ses' && this.d.quota) {
      const q = await this.d.quota.ses();
      return { caps: settings.caps, ratePerSecond: q.ratePerSecond, remaining24h: q.remaining24h };
    }
    return { caps: settings.caps, ratePerSecond: settings.smtpRatePerSecond };
  }

  /** Each recipient's merge fields: kept on the recipient since it was created, else read from the client. */
  private async clients(sid: string, rs: Recipient[]): Promise<Map<string, MergeClient>> {
    const out = new Map<string, MergeClient>();
    for (const r of rs) if (r.merge) out.set(r.clientId, r.merge);
    const ids = [...new Set(rs.filter((r) => !out.has(r.clientId)).map((r) => r.clientId))];
    if (ids.length === 0) return out;
    const items = await this.d.repos.table.batchGet<Item>(
      ids.map((id) => ({ PK: clientTimelinePk(sid, id), SK: 'CLIENT' })),
    );
    for (const i of items) out.set(String(i.id), clientSchema.parse(i));
    return out;
  }

  /**
   * Sends each claimed recipient at its slot, `concurrency` at a time. Once the run of failures
   * reaches the pause threshold the rest are not sent (they go back to the queue).
   */
  private async sendAll(
    sid: string,
    job: Job,
    ctx: BatchContext,
    rs: Recipient[],
    clients: Map<string, MergeClient>,
    slots: Map<string, number>,
    intervalMs: number,
    streakBefore: number,
    pauseAfter: number,
  ) {
    const results: { r: Recipient; sent?: SendOutcome; sentAt?: string }[] = rs.map((r) => ({ r }));
    let next = 0;
    let streak = streakBefore;
    // A slot that is late is not caught up in a burst: sends stay `intervalMs` apart.
    let nextAt = 0;
    const lane = async () => {
      while (next < results.length) {
        const slot = results[next++] as (typeof results)[number];
        if (streak >= pauseAfter) continue;
        const at = Math.max(slots.get(slot.r.key) ?? 0, nextAt, this.d.now().getTime());
        nextAt = at + intervalMs;
        const wait = at - this.d.now().getTime();
        if (wait > 0) await this.o.sleep(wait);
        const sentAt = this.d.now();
        slot.sent = await this.d.mailer.send(sid, job, ctx, slot.r, clients.get(slot.r.clientId), sentAt);
        slot.sentAt = sentAt.toISOString();
        streak = slot.sent.ok ? 0 : streak + 1;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, rs.length) }, lane));
    return results;
  }

  /** The recipient's new state and, for a send attempt, its message record on the client. */
  private async outcome(
    sid: string,
    job: Job,
    r: Recipient,
    sent: SendOutcome | undefined,
    sentAt?: string,
  ): Promise<Outcome & { records?: Item[] }> {
    if (!sent) return { key: r.key, state: 'queued' };
    if (!sent.ok && sent.diagnosis.retryable)
      return { key: r.key, state: 'queued', set: { error: errorLine(sent) } };
    const id = randomUUID();
    const rawKey = `raw/${sid}/out/${id}.eml`;
    if (this.o.keepRaw) {
      try {
        await this.d.blobs.put(rawKey, sent.raw, 'message/rfc822');
      } catch (error) {
        this.d.logger.error('raw copy of a bulk email not stored', { errorMessage: String(error) });
      }
    }
    const date = sentAt ?? this.d.now().toISOString();
    const record: Message = {
      id,
      direction: 'out',
      status: sent.ok ? 'sent' : 'failed',
      clientId: r.clientId,
      threadId: randomUUID(),
      messageId: sent.messageId,
      providerMessageId: sent.ok ? sent.providerMessageId : undefined,
      references: [],
      from: undefined,
      to: [{ address: r.address, ...(r.name ? { name: r.name } : {}) }],
      cc: [],
      subject: sent.rendered.subject,
      date,
      snippet: sent.rendered.text.replace(/\s+/g, ' ').trim().slice(0, 200),
      rawKey,
      attachments: [],
      automatic: false,
      sentBy: job.userId,
      error: sent.ok ? undefined : errorLine(sent),
    };
    return {
      key: r.key,
      state: sent.ok ? 'sent' : 'failed',
      set: {
        messageId: sent.ok ? (sent.providerMessageId ?? sent.messageId) : sent.messageId,
        recordId: id,
        sentAt: date,
        ...(sent.ok ? {} : { error: errorLine(sent) }),
      },
      records: this.d.repos.messages
        .createWrites(sid, record)
        .flatMap((w) => ('Put' in w ? [w.Put.Item] : [])),
    };
  }

  /** A "no such user" reply blocks the address, as a bounce would. */
  private async afterSend(
    sid: string,
    jobId: string,
    r: Recipient,
    sent: SendOutcome | undefined,
  ): Promise<void> {
    if (!sent || sent.ok) return;
    const words = sent.diagnosis.serverReply ?? '';
    if (sent.diagnosis.serverCode === 550 || NO_SUCH_USER.test(words)) {
      if (!NO_SUCH_USER.test(words) && sent.diagnosis.kind !== 'recipient') return;
      await this.d.blocks.block(sid, {
        address: r.address,
        reason: 'bounced',
        at: this.d.now().toISOString(),
        detail: words.slice(0, 500),
        jobId,
      });
    }
  }

  /**
   * Marks the job completed once nothing is queued or being sent. With a batch: that batch is
   * added to the job's done ones when nothing of it is left, and the job completes when all its
   * batches are done; without (start, cancel): the batches' counters are summed.
   */
  async completeIfDone(sid: string, jobId: string, batch?: number): Promise<boolean> {
    const { store } = this.d;
    if (batch !== undefined) {
      if (!(await store.batchDone(sid, jobId, batch))) return false;
      const done = await store.markBatchDone(sid, jobId, batch);
      const job = await store.getJob(sid, jobId);
      if (!job || done < job.batches || job.status !== 'running') return false;
      return this.complete(sid, jobId);
    }
    const [c, job] = await Promise.all([store.counts(sid, jobId), store.getJob(sid, jobId)]);
    if (!job || c.queued + c.sending > 0) return false;
    // Batches still being written (the job is created batch by batch) are not done yet.
    const counted = c.queued + c.sending + c.sent + c.failed + c.skipped + c.cancelled + c.unknown;
    if (counted < job.total) return false;
    return this.complete(sid, jobId);
  }

  private async complete(sid: string, jobId: string): Promise<boolean> {
    const done = await this.d.store.setStatus(sid, jobId, ['running'], 'completed', {
      finishedAt: this.d.now().toISOString(),
    });
    if (done) await this.d.timer.cancel(continueTimer(jobId));
    return done;
  }
}

/** Running, or being prepared with its start already due: its written batches send. */
function sending(job: Job, now: number): boolean {
  return job.status === 'running' || (job.status === 'preparing' && Date.parse(job.startAt) <= now);
}

const recipientList = z.array(recipientSchema);

function trailingFailures(results: { sent?: SendOutcome }[]): number {
  let n = 0;
  for (const x of [...results].reverse()) {
    if (!x.sent) continue;
    if (x.sent.ok) break;
    n += 1;
  }
  return n;
}

function errorLine(sent: SendOutcome & { ok: false }): string {
  const d = sent.diagnosis;
  return [d.problem, d.serverReply].filter(Boolean).join(' Server said: ').slice(0, 1000);
}
