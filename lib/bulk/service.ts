/**
 * The bulk-email API's domain: preview a selection, create a job (now or at a time), follow its
 * progress and results, pause / resume / cancel it, the studio's bulk settings, saved client
 * filters and the block list. Handlers in functions/bulk/app.ts map requests onto these.
 */
import { randomUUID } from 'node:crypto';
import type { Repositories } from '#lib/data/repositories';
import { ForbiddenError, ValidationError } from '#lib/domain/errors';
import { identityCovers } from '#lib/domain/model';
import { resolveEffective } from '#lib/domain/settings';
import type { BlobStore } from '#lib/ports/index';
import { EmailNotSetUpError } from '#lib/send/errors';
import { checkMergeFields } from '#lib/send/render';
import { attachmentBlobKey } from './attachments.ts';
import type { BlockList } from './blocks.ts';
import {
  type ClientFilter,
  type Counts,
  type Job,
  mergeSnapshot,
  type Recipient,
  type Selection,
} from './model.ts';
import type { BulkQueue, JobTimer } from './ports.ts';
import type { CreateInput } from './schemas.ts';
import { candidates, choose, selects } from './select.ts';
import { filterRepository, settingsRepository } from './settings.ts';
import { type BulkStore, recipientKey } from './store.ts';
import { continueTimer, startTimer } from './worker.ts';

/** Recipients per batch (one queue message, one counter item). */
export const BATCH_SIZE = 100;

export interface BulkServiceDeps {
  repos: Repositories;
  store: BulkStore;
  blocks: BlockList;
  queue: BulkQueue;
  timer: JobTimer;
  blobs: Pick<BlobStore, 'exists' | 'put'>;
  now: () => Date;
}

export interface Caller {
  userId: string;
  isAdmin: boolean;
}

export class BulkService {
  readonly filters: ReturnType<typeof filterRepository>;
  readonly settingsRepo: ReturnType<typeof settingsRepository>;

  constructor(private readonly d: BulkServiceDeps) {
    this.filters = filterRepository(d.repos.table);
    this.settingsRepo = settingsRepository(d.repos.table);
  }

  private async savedConditions(sid: string, s: Selection) {
    if (!s.filterId) return [];
    const f = await this.filters.get(sid, s.filterId);
    if (!f)
      throw ValidationError.field('selection.filterId', `names no saved client filter ("${s.filterId}").`);
    return (f as ClientFilter).conditions;
  }

  /** Who a selection reaches and who it skips, with the reason. */
  async preview(sid: string, s: Selection, exclude: string[] = []) {
    const { recipients, skipped } = await this.resolve(sid, s, exclude);
    return { recipients, skipped };
  }

  /** The preview, and the clients chosen (their merge fields go with each recipient). */
  private async resolve(sid: string, s: Selection, exclude: string[] = []) {
    const [conditions, { found, missing }] = await Promise.all([
      this.savedConditions(sid, s),
      candidates(this.d.repos.table, sid, s),
    ]);
    const out = new Set(exclude);
    const chosen = found.filter((c) => !out.has(c.id) && selects(c, s, conditions));
    const addresses = chosen.flatMap((c) => c.emails.map((e) => e.address));
    const blocked = await this.d.blocks.blocked(sid, addresses);
    return { ...choose(chosen, missing, blocked), clients: new Map(chosen.map((c) => [c.id, c])) };
  }

  async create(
    sid: string,
    caller: Caller,
    input: CreateInput,
    publicUrl?: string,
  ): Promise<{ job: Job; skipped: number }> {
    const userId = input.userId ?? caller.userId;
    if (userId !== caller.userId && !caller.isAdmin)
      throw new ForbiddenError('Only an admin may send a bulk email as another user.', { field: 'userId' });
    const { repos } = this.d;
    const [company, userSettings, letter] = await Promise.all([
      repos.companyEmail.get(sid, 'company'),
      repos.userEmail.get(sid, userId),
      repos.formLetters.get(sid, input.formLetterId),
    ]);
    if (!company) throw new EmailNotSetUpError();
    if (!letter)
      throw ValidationError.field(
        'formLetterId',
        `names no form letter in this studio ("${input.formLetterId}").`,
      );
    if (letter.html === undefined && letter.text === undefined)
      throw ValidationError.field('formLetterId', 'this form letter has no body (neither HTML nor text).');
    checkMergeFields({ subject: letter.subject, html: letter.html, text: letter.text, origin: 'formLetter' });
    if (input.senderIdentityId) {
      const identity = await repos.senderIdentities.get(sid, input.senderIdentityId);
      const from = resolveEffective(company, userSettings).emailAddress.value;
      if (!identity)
        throw ValidationError.field(
          'senderIdentityId',
          `names no sender identity of this studio ("${input.senderIdentityId}").`,
        );
      if (!identityCovers(identity.identity, from))
        throw ValidationError.field(
          'senderIdentityId',
          `does not cover the From address ${from}; choose the identity of that address or its domain.`,
        );
    }
    const files = [
      ...letter.attachments.map((a, i) => ({ a, field: `formLetter.attachments[${i}]` })),
      ...input.attachments.map((a, i) => ({ a, field: `attachments[${i}]` })),
    ];
    for (const { a, field } of files)
      if (!(await this.d.blobs.exists(attachmentBlobKey(sid, a.id))))
        throw ValidationError.field(
          field,
          `names no uploaded file ("${a.id}"); upload it first (POST /attachments).`,
        );
    const selection: Selection = input.selection ?? { clientIds: input.recipients };
    const { recipients, skipped, clients } = await this.resolve(sid, selection, input.exclude);
    if (recipients.length === 0)
      throw ValidationError.field(
        input.recipients ? 'recipients' : 'selection',
        'reaches nobody who can be emailed (see POST /bulk-emails/preview for why).',
      );

    const now = this.d.now();
    const startAt = input.startAt ? new Date(input.startAt) : now;
    const later = startAt.getTime() > now.getTime();
    const id = randomUUID();
    const all: Recipient[] = [
      ...recipients.map((r) => ({ ...r, state: 'queued' as const })),
      ...skipped.map((r) => ({
        ...r,
        address: r.address ?? '',
        state: 'skipped' as const,
        skipReason: r.reason,
      })),
    ].map((r, i) => {
      const batch = Math.floor(i / BATCH_SIZE) + 1;
      const c = r.state === 'queued' ? clients.get(r.clientId) : undefined;
      return {
        key: recipientKey(batch, i % BATCH_SIZE),
        batch,
        clientId: r.clientId,
        address: r.address,
        ...(r.name ? { name: r.name } : {}),
        state: r.state,
        ...('skipReason' in r && r.skipReason ? { skipReason: r.skipReason } : {}),
        attempts: 0,
        events: {},
        // The client's merge fields as confirmed, so sending need not read every client again.
        ...(c ? { merge: mergeSnapshot(c) } : {}),
      };
    });
    const recipientsKey = `bulk/${sid}/${id}/recipients.json`;
    const job: Job = {
      id,
      ...(input.name ? { name: input.name } : {}),
      status: 'preparing',
      formLetterId: input.formLetterId,
      userId,
      ...(input.senderIdentityId ? { senderIdentityId: input.senderIdentityId } : {}),
      startAt: startAt.toISOString(),
      createdAt: now.toISOString(),
      createdBy: caller.userId,
      failStreak: 0,
      total: all.length,
      batches: Math.ceil(all.length / BATCH_SIZE),
      attachments: input.attachments,
      ...(publicUrl ? { publicUrl } : {}),
      recipientsKey,
    };
    // The confirmed list is kept in one object first, then the job: the worker writes the batches
    // from it (and starts sending as each is written), so the answer does not wait for them.
    await this.d.blobs.put(recipientsKey, JSON.stringify(all), 'application/json');
    await this.d.store.putJob(sid, job);
    await this.d.queue.send([{ kind: 'prepare', studioId: sid, jobId: id }]);
    if (later) await this.d.timer.at(startTimer(id), startAt, { kind: 'start', studioId: sid, jobId: id });
    return { job, skipped: skipped.length };
  }

  async progress(sid: string, jobId: string) {
    const job = await this.d.store.requireJob(sid, jobId);
    const [counts, events] = await Promise.all([
      this.d.store.counts(sid, jobId),
      this.d.store.eventCounts(sid, jobId),
    ]);
    return view(job, counts, events.delivered ?? 0, this.d.now());
  }

  async pause(sid: string, jobId: string, by: string) {
    await this.d.store.requireJob(sid, jobId);
    const ok = await this.d.store.setStatus(sid, jobId, ['preparing', 'running', 'scheduled'], 'paused', {
      pauseReason: `Paused by ${by}.`,
    });
    if (!ok) throw new JobStateError('pause', (await this.d.store.requireJob(sid, jobId)).status);
    return this.progress(sid, jobId);
  }

  async resume(sid: string, jobId: string) {
    const job = await this.d.store.requireJob(sid, jobId);
    const later = Date.parse(job.startAt) > this.d.now().getTime();
    const ok = await this.d.store.setStatus(
      sid,
      jobId,
      ['paused'],
      later ? 'scheduled' : 'running',
      { failStreak: 0 },
      ['pauseReason'],
    );
    if (!ok) throw new JobStateError('resume', job.status);
    // A preparation that stopped (paused meanwhile, or it crashed) goes on from where it was.
    if (!job.prepared && job.recipientsKey)
      await this.d.queue.send([{ kind: 'prepare', studioId: sid, jobId }]);
    if (!later) await this.d.queue.send([{ kind: 'start', studioId: sid, jobId }]);
    return this.progress(sid, jobId);
  }

  /** Stops what has not been sent: every queued recipient becomes `cancelled`. */
  async cancel(sid: string, jobId: string) {
    const job = await this.d.store.requireJob(sid, jobId);
    const ok = await this.d.store.setStatus(
      sid,
      jobId,
      ['preparing', 'running', 'scheduled', 'paused'],
      'cancelled',
      {
        finishedAt: this.d.now().toISOString(),
      },
    );
    if (!ok) throw new JobStateError('cancel', job.status);
    await Promise.all([this.d.timer.cancel(startTimer(jobId)), this.d.timer.cancel(continueTimer(jobId))]);
    for (const batch of await this.d.store.batchesWithQueued(sid, jobId)) {
      const queued = (await this.d.store.batch(sid, jobId, batch)).filter((r) => r.state === 'queued');
      await this.d.store.cancelQueued(
        sid,
        jobId,
        batch,
        queued.map((r) => r.key),
      );
    }
    return this.progress(sid, jobId);
  }

  async report(sid: string, jobId: string) {
    const job = await this.d.store.requireJob(sid, jobId);
    const [counts, events] = await Promise.all([
      this.d.store.counts(sid, jobId),
      this.d.store.eventCounts(sid, jobId),
    ]);
    const e = { delivered: 0, bounced: 0, complained: 0, opened: 0, clicked: 0, ...events };
    const share = (n: number) => (counts.sent ? Math.round((n / counts.sent) * 10_000) / 10_000 : 0);
    return {
      id: job.id,
      status: job.status,
      total: job.total,
      counts,
      events: {
        delivered: e.delivered,
        bounced: e.bounced,
        complained: e.complained,
        opened: e.opened,
        clicked: e.clicked,
      },
      rates: {
        delivered: share(e.delivered),
        bounced: share(e.bounced),
        complained: share(e.complained),
        opened: share(e.opened),
        clicked: share(e.clicked),
      },
      unsubscribed: events.unsubscribed ?? 0,
    };
  }
}

export class JobStateError extends ValidationError {
  constructor(action: string, status: string) {
    super([{ field: 'status', message: `a ${status} bulk email cannot ${action}.` }]);
  }
}

/** Progress as the API shows it. */
export function view(job: Job, counts: Counts, delivered: number, now: Date) {
  const waiting = job.waitingUntil && Date.parse(job.waitingUntil) > now.getTime() ? counts.queued : 0;
  const startedAt = Date.parse(job.startAt);
  const end = job.finishedAt ? Date.parse(job.finishedAt) : now.getTime();
  const minutes = Math.max((end - startedAt) / 60_000, 1 / 60);
  const ratePerMinute =
    counts.sent + counts.failed > 0 ? Math.round(((counts.sent + counts.failed) / minutes) * 100) / 100 : 0;
  const left = counts.queued + counts.sending;
  let expectedFinishAt: string | undefined;
  if (job.status === 'running' && left > 0 && ratePerMinute > 0) {
    const from = waiting ? Date.parse(job.waitingUntil as string) : now.getTime();
    expectedFinishAt = new Date(from + (left / ratePerMinute) * 60_000).toISOString();
  } else if (job.status === 'scheduled') expectedFinishAt = undefined;
  return {
    id: job.id,
    ...(job.name ? { name: job.name } : {}),
    status: job.status,
    formLetterId: job.formLetterId,
    userId: job.userId,
    createdAt: job.createdAt,
    startAt: job.startAt,
    ...(job.finishedAt ? { finishedAt: job.finishedAt } : {}),
    ...(job.pauseReason ? { pauseReason: job.pauseReason } : {}),
    total: job.total,
    counts,
    delivered,
    waiting,
    ...(waiting && job.waitingUntil ? { waitingUntil: job.waitingUntil } : {}),
    ratePerMinute,
    ...(expectedFinishAt ? { expectedFinishAt } : {}),
  };
}
