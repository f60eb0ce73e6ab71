/**
 * Inbox poller. Invoked by its box's EventBridge schedule (input: studio, box, window and the
 * scheduled time), through the API (run now, reprocess a quarantined message), and by itself
 * (asynchronously) to run a poll the API started or to carry on a run whose budget ran out.
 */
import type { Context } from 'aws-lambda';
import { deps } from '#lib/app/deps';
import { type ApiEvent, httpApi } from '#lib/http/api';
import { isPollJob, runPollJob, scheduledPoll } from '#lib/inbox/service';
import { defaultPorts, inboxHandlers, isScheduledPoll } from './app.ts';

const d = deps();
const ports = defaultPorts(d);
const api = httpApi(inboxHandlers(d, ports), { logger: d.logger, studioClaim: d.config.studioClaim });

/** Stop starting new messages this long before the Lambda timeout. */
const BUDGET_MARGIN_MS = 30_000;

export async function handler(event: ApiEvent | unknown, context: Context) {
  const budgetMs =
    Number(process.env.POLL_BUDGET_MS) || context.getRemainingTimeInMillis() - BUDGET_MARGIN_MS;
  if (isPollJob(event)) {
    const outcome = await runPollJob(d, event, budgetMs, ports);
    d.logger.info('poll run invocation finished', {
      boxId: event.boxId,
      runId: event.runId,
      invocation: event.invocation,
      status: outcome.status,
    });
    return { status: outcome.status, runId: event.runId };
  }
  if (!isScheduledPoll(event)) return api(event as ApiEvent, context);
  const outcome = await scheduledPoll(d, { ...event, trigger: 'schedule', budgetMs }, ports);
  d.logger.info('scheduled poll finished', {
    boxId: event.boxId,
    status: outcome.status,
    reason: outcome.reason,
  });
  return { status: outcome.status, runId: outcome.run?.id, counts: outcome.run?.counts };
}
