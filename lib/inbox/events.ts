/**
 * The contract of the poll outcome events: what `pollAndReport` publishes and `notify` reads.
 * Kept apart from the poller so the notify bundle does not pull in POP3 and parsing. No AWS here.
 */
import * as z from 'zod';
import { runCounts } from '#lib/domain/model';

// The names themselves live in lib/events.ts, which infra/ imports too.
export { POLL_EVENT_SOURCE, POLL_FAILED, POLL_SUCCEEDED, pollOutcomeEvents } from '#lib/events';

/** At most this many run errors travel in an event (EventBridge caps an entry at 256 KB). */
export const MAX_EVENT_ERRORS = 20;

export const pollFailure = z.object({
  kind: z.string(),
  message: z.string(),
  advice: z.string(),
  field: z.string().optional(),
  serverReply: z.string().optional(),
});

export const pollOutcomeDetail = z.object({
  studioId: z.string().min(1),
  boxId: z.string().min(1),
  boxDescription: z.string().optional(),
  runId: z.string().min(1),
  trigger: z.enum(['schedule', 'manual', 'push']).default('schedule'),
  status: z.enum(['succeeded', 'partial', 'failed']),
  counts: runCounts.prefault({}),
  errors: z.array(z.object({ kind: z.string(), message: z.string() })).default([]),
  /** How many errors the run had; `errors` carries the first MAX_EVENT_ERRORS of them. */
  errorCount: z.number().int().optional(),
  failure: pollFailure.optional(),
  /** The minute the schedule asked for (scheduled runs). */
  scheduledTime: z.string().optional(),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationMs: z.number().optional(),
});
export type PollOutcomeDetail = z.infer<typeof pollOutcomeDetail>;
