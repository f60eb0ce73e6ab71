/**
 * The inbox poller's use cases: a poll that reports its result as an event (which `notify`
 * turns into email), and the replay of a quarantined message.
 */
import { randomUUID } from 'node:crypto';
import type { Deps } from '#lib/app/deps';
import { ConditionFailed } from '#lib/data/table';
import { AppError, ConflictError, NotFoundError, UpstreamError, ValidationError } from '#lib/domain/errors';
import { automaticReason } from '#lib/domain/inbound';
import { type Message, type Run, runCounts } from '#lib/domain/model';
import { count } from '#lib/metrics';
import {
  MAX_EVENT_ERRORS,
  POLL_EVENT_SOURCE,
  POLL_FAILED,
  POLL_SUCCEEDED,
  type PollOutcomeDetail,
} from './events.ts';
import { parsedFields, parseStored, UnparseableMessageError } from './parse.ts';
import {
  classify,
  isTooLarge,
  ownAddresses,
  type PollOutcome,
  type PollPorts,
  type PollRequest,
  pollBox,
  sendAutoReply,
  taskTitle,
  threadAndClient,
} from './poll.ts';

export { POLL_EVENT_SOURCE, POLL_FAILED, POLL_SUCCEEDED };

/**
 * Polls a box and publishes the run's outcome; skipped and busy polls publish nothing, nor does
 * an invocation whose run a next one carries on (the last one publishes the whole run).
 */
export async function pollAndReport(d: Deps, request: PollRequest, ports: PollPorts): Promise<PollOutcome> {
  const started = Date.now();
  const outcome = await pollBox(d, request, ports);
  if (!outcome.run || outcome.continued) return outcome;
  const box = await d.repos.emailBoxes.get(request.studioId, request.boxId);
  const detail: PollOutcomeDetail = {
    studioId: request.studioId,
    boxId: request.boxId,
    boxDescription: box?.description ?? request.boxId,
    runId: outcome.run.id,
    trigger: request.trigger,
    status:
      outcome.run.status === 'failed' ? 'failed' : outcome.run.status === 'partial' ? 'partial' : 'succeeded',
    counts: outcome.run.counts,
    // A run that quarantined thousands of messages must still fit in one event.
    errors: outcome.run.errors.slice(0, MAX_EVENT_ERRORS),
    errorCount: outcome.errorCount ?? outcome.run.errors.length,
    failure: outcome.failure,
    scheduledTime: request.trigger === 'schedule' ? request.scheduledTime : undefined,
    startedAt: outcome.run.startedAt,
    finishedAt: outcome.run.finishedAt ?? new Date().toISOString(),
    durationMs: Date.now() - started,
  };
  // Runs this one found killed past their deadline: reported as failed, so the admin hears of them.
  const timedOut = (outcome.timedOut ?? []).map((r) => ({
    source: POLL_EVENT_SOURCE,
    detailType: POLL_FAILED,
    detail: {
      ...detail,
      runId: r.id,
      status: 'failed',
      counts: r.counts,
      errors: r.errors.slice(0, MAX_EVENT_ERRORS),
      errorCount: r.errors.length,
      failure: {
        kind: 'timed-out',
        message: 'The poll did not finish within its time limit and was stopped.',
        advice:
          'Nothing was lost: what it stored is kept and the next run continues. If this repeats, the server is slow; check the box.',
      },
      startedAt: r.startedAt,
      finishedAt: r.finishedAt ?? detail.finishedAt,
    } as unknown as Record<string, unknown>,
  }));
  count(d.metrics, {
    PollsFailed: detail.status === 'failed' ? 1 : 0,
    MessagesImported: detail.counts.imported,
    MessagesQuarantined: detail.counts.quarantined,
    TasksCreated: detail.counts.tasks,
    AutoRepliesSent: detail.counts.autoReplies,
  });
  await d.events.publish([
    {
      source: POLL_EVENT_SOURCE,
      detailType: detail.status === 'failed' ? POLL_FAILED : POLL_SUCCEEDED,
      detail: detail as unknown as Record<string, unknown>,
    },
    ...timedOut,
  ]);
  return outcome;
}

/** Another run holds the box's lease: answered 409 `box_busy`. */
export class BoxBusyError extends AppError {
  override readonly name = 'BoxBusyError';
  override readonly status = 409;
  override readonly code = 'box_busy';
}

/** The payload with which the poller invokes itself to run (or carry on) a run. */
export interface PollJob {
  kind: typeof POLL_JOB;
  studioId: string;
  boxId: string;
  runId: string;
  startedAt: string;
  trigger: PollRequest['trigger'];
  /** 1 for the first invocation of the run; each continuation adds one (see MAX_RUN_INVOCATIONS). */
  invocation: number;
}
export const POLL_JOB = 'inbox-poll-run';

export function isPollJob(event: unknown): event is PollJob {
  const e = event as Partial<PollJob> | undefined;
  return e?.kind === POLL_JOB && typeof e.runId === 'string' && typeof e.studioId === 'string';
}

/**
 * At most this many invocations carry one run on (about 95 minutes with a 5-minute Lambda); a
 * mailbox still not drained then ends `partial` and the next scheduled or manual poll goes on.
 */
export const MAX_RUN_INVOCATIONS = 20;
/** How long the API holds the box for a run it started, until the poller takes the lease over. */
const START_LEASE_MS = 120_000;
/** Live counts are written at most this often (and at the end of each invocation). */
const PROGRESS_EVERY_MS = 2_000;

const jobOf = (sid: string, run: Run, invocation: number): PollJob => ({
  kind: POLL_JOB,
  studioId: sid,
  boxId: run.boxId,
  runId: run.id,
  startedAt: run.startedAt,
  // Only polls continue (a pushed message is one import, never a continued run).
  trigger: run.trigger === 'schedule' ? 'schedule' : 'manual',
  invocation,
});

/**
 * `POST /email-boxes/{id}/poll`: takes the box under a new run id, records the run `running`
 * and starts the poller without waiting for it. The run id exists before the caller hears of it,
 * so GET /email-boxes/{id}/runs/{runId} always finds the run. Busy box: BoxBusyError.
 */
export async function startPoll(d: Deps, sid: string, boxId: string): Promise<Run> {
  const box = await d.repos.emailBoxes.get(sid, boxId);
  if (!box) throw new NotFoundError('email box', boxId);
  const now = d.now();
  const run: Run = {
    id: randomUUID(),
    boxId,
    startedAt: now.toISOString(),
    status: 'running',
    trigger: 'manual',
    counts: runCounts.parse({}),
    errors: [],
  };
  if (!(await d.repos.boxState.acquireLease(sid, boxId, run.id, START_LEASE_MS, now.getTime())))
    throw new BoxBusyError('Another poll of this box is running; wait for it to finish.');
  await d.repos.runs.put(sid, run);
  try {
    await d.invoker.invoke({ ...jobOf(sid, run, 1) });
  } catch (error) {
    // The AWS error text (role and function ARNs) goes to the log only, never to the caller.
    d.logger.warn('poller not started', { runId: run.id, errorMessage: (error as Error).message });
    const message = 'The poller could not be started.';
    await d.repos.runs.put(sid, {
      ...run,
      status: 'failed',
      finishedAt: d.now().toISOString(),
      errors: [{ kind: 'not-started', message }],
    });
    await d.repos.boxState.releaseLease(sid, boxId, run.id);
    throw new UpstreamError(`${message} Try again in a minute.`);
  }
  return run;
}

/**
 * Adds to the poller's ports: live counts written as the run goes, and, when the budget runs out,
 * a next invocation that carries the run on (up to MAX_RUN_INVOCATIONS).
 */
export function runPorts(d: Deps, sid: string, ports: PollPorts, invocation: number): PollPorts {
  let written = Date.now();
  return {
    ...ports,
    progress: async (run) => {
      await ports.progress?.(run);
      if (Date.now() - written < PROGRESS_EVERY_MS) return;
      written = Date.now();
      await d.repos.runs.put(sid, run);
    },
    continueRun: async (run) => {
      if (invocation >= MAX_RUN_INVOCATIONS) return false;
      await d.invoker.invoke({ ...jobOf(sid, run, invocation + 1) });
      return true;
    },
  };
}

/** A scheduled poll: a new run, carried on by next invocations while the budget runs out. */
export function scheduledPoll(d: Deps, request: PollRequest, ports: PollPorts): Promise<PollOutcome> {
  return pollAndReport(d, request, runPorts(d, request.studioId, ports, 1));
}

/**
 * The poller's side of a PollJob: runs (or carries on) the run the job names. A run that cannot
 * go on (the box was deleted, or another run took the box after the lease lapsed) is closed with
 * the reason, so it never stays `running`.
 */
export async function runPollJob(d: Deps, job: PollJob, budgetMs: number, ports: PollPorts) {
  const sid = job.studioId;
  const run = await d.repos.runs.get(sid, job.boxId, job.runId);
  if (!run) return { status: 'skipped' as const, reason: `No run ${job.runId} of box ${job.boxId}.` };
  if (run.status !== 'running')
    return { status: 'skipped' as const, reason: `Run ${run.id} is ${run.status}.` };
  const outcome = await pollAndReport(
    d,
    { studioId: sid, boxId: job.boxId, trigger: job.trigger, budgetMs, run },
    runPorts(d, sid, ports, job.invocation),
  );
  if (outcome.status === 'busy' || outcome.status === 'skipped') {
    await d.repos.runs.put(sid, {
      ...run,
      status: job.invocation === 1 ? 'failed' : 'partial',
      finishedAt: d.now().toISOString(),
      errors: [...run.errors, { kind: `run-${outcome.status}`, message: outcome.reason ?? outcome.status }],
    });
    await d.repos.boxState.releaseLease(sid, job.boxId, run.id);
  }
  return outcome;
}

/** Mail older than this gets no auto-reply when it is filed late (reprocess). */
export const AUTO_REPLY_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** Longest name or address kept on a record: a 450 KB display name must not stop the filing. */
const MAX_ADDRESS_FIELD = 320;

const fitAddress = <A extends { address: string; name?: string }>(a: A): A => ({
  ...a,
  address: a.address.slice(0, MAX_ADDRESS_FIELD),
  name: a.name?.slice(0, MAX_ADDRESS_FIELD),
});

/** The message with every free-text header field cut to a size a record always holds. */
function fitted(message: Message): Message {
  return {
    ...message,
    from: message.from ? fitAddress(message.from) : undefined,
    to: message.to.map(fitAddress),
    cc: message.cc.map(fitAddress),
    messageId: message.messageId?.slice(0, 1_000),
    inReplyTo: message.inReplyTo?.slice(0, 1_000),
    references: message.references.map((r) => r.slice(0, 1_000)),
  };
}

export interface ReprocessOutcome {
  message: Message;
  /** The task created for it, when the box creates tasks and one is due. */
  taskId?: string;
  autoReplied: boolean;
}

/**
 * Files a quarantined message again from its stored raw copy (after a parser fix, say), as an
 * import would have: the box's department, user, email type and status; thread and client; the
 * task when one is due, in the same transaction; the auto-reply, once (the per-message claim), and
 * never for mail dated more than a day ago. A record too large for DynamoDB is retried with its
 * header fields cut down; if even that fails, the message stays quarantined with the reason.
 */
export async function reprocessMessage(
  d: Deps,
  sid: string,
  id: string,
  ports: Pick<PollPorts, 'autoReply' | 'dailyReplyCap'> = {},
): Promise<ReprocessOutcome> {
  const message = await d.repos.messages.get(sid, id);
  if (!message) throw new NotFoundError('message', id);
  if (message.status !== 'quarantined') {
    throw ValidationError.field(
      'id',
      `message "${id}" is ${message.status}, not quarantined; only quarantined messages are reprocessed.`,
    );
  }
  const box = message.boxId ? await d.repos.emailBoxes.get(sid, message.boxId) : undefined;
  let parsed: Awaited<ReturnType<typeof parseStored>>;
  try {
    parsed = await parseStored(d.blobs, message.rawKey, `parts/${sid}/${id}`);
  } catch (error) {
    if (!(error instanceof UnparseableMessageError)) throw error;
    return keepQuarantined(d, sid, message, error.message);
  }
  // Filed as an import would have filed it: a reply joins its thread and client.
  const own = box ? await ownAddresses(d, sid, box) : [];
  const built = box
    ? await classify(d, { sid, box, own }, parsed)
    : {
        ...(await threadAndClient(d, sid, parsed)),
        automatic: automaticReason(parsed.headers, parsed.from?.address),
      };
  const threadId = 'threadId' in built ? built.threadId : built.thread?.threadId;
  const updated: Message = {
    ...message,
    status: 'imported',
    error: undefined,
    clientId: built.clientId,
    threadId: threadId ?? message.threadId,
    automatic: built.automatic !== undefined,
    ...parsedFields(parsed, message.date),
    departmentId: box?.departmentId,
    userId: box?.userId,
    emailTypeId: box?.emailTypeId,
    emailStatusId: box?.emailStatusId,
  };
  const actions = 'actions' in built ? built.actions : undefined;
  const task =
    box && actions?.createTask
      ? {
          id: randomUUID(),
          title: taskTitle(parsed.from, updated.subject),
          typeId: box.taskTypeId,
          statusId: box.taskStatusId,
          departmentId: box.departmentId,
          userId: box.userId,
          clientId: updated.clientId,
          messageId: id,
          boxId: box.id,
        }
      : undefined;
  const record = (m: Message) =>
    d.repos.messages.reindex(sid, m, {
      // Two reprocesses at once: one files the message (and its task), the other is refused.
      onlyIfStatus: 'quarantined',
      extra: task ? [d.repos.tasks.createWrite(sid, task)] : [],
    });
  let filed = updated;
  try {
    try {
      await record(filed);
    } catch (error) {
      if (!isTooLarge(error)) throw error;
      filed = fitted(updated);
      await record(filed);
    }
  } catch (error) {
    if (error instanceof ConditionFailed)
      throw new ConflictError(`Message "${id}" was reprocessed at the same time; reload it.`);
    if (!isTooLarge(error)) throw error;
    return keepQuarantined(
      d,
      sid,
      message,
      `The message's details are still too large to record (${(error as Error).message}); its raw copy is kept.`,
    );
  }

  const targets = 'targets' in built ? built.targets : [];
  const recent = d.now().getTime() - Date.parse(filed.date) <= AUTO_REPLY_MAX_AGE_MS;
  let autoReplied = false;
  if (box && actions?.autoReply && recent && ports.autoReply) {
    try {
      autoReplied = await sendAutoReply(
        d,
        { sid, box, ports: ports as PollPorts, log: d.logger },
        filed,
        targets,
      );
    } catch (error) {
      // Filed is filed: a failed reply is logged, as a failed reply of an import is.
      d.logger.warn('auto-reply of a reprocessed message failed', {
        messageId: id,
        errorMessage: (error as Error).message,
      });
    }
  }
  return { message: filed, taskId: task?.id, autoReplied };
}

async function keepQuarantined(
  d: Deps,
  sid: string,
  message: Message,
  reason: string,
): Promise<ReprocessOutcome> {
  const still = { ...message, error: reason.slice(0, 1_000) };
  await d.repos.messages.save(sid, still);
  return { message: still, autoReplied: false };
}
