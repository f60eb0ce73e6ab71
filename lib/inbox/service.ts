/**
 * The inbox poller's use cases: a poll that reports its result as an event (which `notify`
 * turns into email), and the replay of a quarantined message.
 */
import type { Deps } from '#lib/app/deps';
import { NotFoundError, ValidationError } from '#lib/domain/errors';
import { automaticReason } from '#lib/domain/inbound';
import type { Message } from '#lib/domain/model';
import { count } from '#lib/metrics';
import {
  MAX_EVENT_ERRORS,
  POLL_EVENT_SOURCE,
  POLL_FAILED,
  POLL_SUCCEEDED,
  type PollOutcomeDetail,
} from './events.ts';
import { parsedFields, parseStored, UnparseableMessageError } from './parse.ts';
import { type PollOutcome, type PollPorts, type PollRequest, pollBox, threadAndClient } from './poll.ts';

export { POLL_EVENT_SOURCE, POLL_FAILED, POLL_SUCCEEDED };

/** Polls a box and publishes the run's outcome; skipped and busy polls publish nothing. */
export async function pollAndReport(d: Deps, request: PollRequest, ports: PollPorts): Promise<PollOutcome> {
  const started = Date.now();
  const outcome = await pollBox(d, request, ports);
  if (!outcome.run) return outcome;
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

/** Parses a quarantined message again from its stored raw copy (after a parser fix, say). */
export async function reprocessMessage(d: Deps, sid: string, id: string): Promise<Message> {
  const message = await d.repos.messages.get(sid, id);
  if (!message) throw new NotFoundError('message', id);
  if (message.status !== 'quarantined') {
    throw ValidationError.field(
      'id',
      `message "${id}" is ${message.status}, not quarantined; only quarantined messages are reprocessed.`,
    );
  }
  try {
    const parsed = await parseStored(d.blobs, message.rawKey, `parts/${sid}/${id}`);
    // Filed as an import would have filed it: a reply joins its thread and client.
    const { thread, clientId } = await threadAndClient(d, sid, parsed);
    const updated: Message = {
      ...message,
      status: 'imported',
      error: undefined,
      clientId,
      threadId: thread?.threadId ?? message.threadId,
      automatic: automaticReason(parsed.headers, parsed.from?.address) !== undefined,
      ...parsedFields(parsed, message.date),
    };
    await d.repos.messages.reindex(sid, updated);
    return updated;
  } catch (error) {
    if (!(error instanceof UnparseableMessageError)) throw error;
    const still = { ...message, error: error.message };
    await d.repos.messages.save(sid, still);
    return still;
  }
}
