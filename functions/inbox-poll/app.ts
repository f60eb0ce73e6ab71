import type { Context } from 'aws-lambda';
import type { Deps } from '#lib/app/deps';
import { AppError, NotFoundError } from '#lib/domain/errors';
import type { ScheduleWindow } from '#lib/domain/schedule';
import { type ApiEvent, apiRouter, lambdaHandler } from '#lib/http/api';
import type { Handlers } from '#lib/http/routes';
import { autoReplier } from '#lib/inbox/auto-reply';
import { openBox } from '#lib/inbox/connect';
import type { PollPorts } from '#lib/inbox/poll';
import { pollAndReport, reprocessMessage } from '#lib/inbox/service';
import { mailHostPolicy } from '#lib/net/guard';
import { defaultRetry } from '#lib/send/retry';
import { SendService } from '#lib/send/service';
import { CredentialCache, transportPolicyFromEnv } from '#lib/send/transport';
import { inboxPollRoutes } from './routes.ts';

/** What a schedule hands the poller (the Scheduler target input). */
export interface ScheduledPoll {
  studioId: string;
  boxId: string;
  window?: ScheduleWindow;
  scheduledTime?: string;
}

export function isScheduledPoll(event: unknown): event is ScheduledPoll {
  const e = event as Partial<ScheduledPoll> | undefined;
  return typeof e?.studioId === 'string' && typeof e?.boxId === 'string' && !('routeKey' in (e ?? {}));
}

/** POP3 from the box settings; auto-replies through the same send service as functions/send. */
export function defaultPorts(d: Deps): PollPorts {
  const service = new SendService(d, {
    policy: { ...transportPolicyFromEnv(process.env), mailHosts: mailHostPolicy(d.config) },
    credentials: new CredentialCache(d.secrets),
    retry: defaultRetry,
  });
  return {
    open: (box, password) => openBox(box.connection, password, {}, mailHostPolicy(d.config)),
    autoReply: autoReplier(service),
  };
}

/** A run of the box is already going: 409 `box_busy`, through the one error type. */
export class BoxBusyError extends AppError {
  override readonly name = 'BoxBusyError';
  override readonly status = 409;
  override readonly code = 'box_busy';
}

/** A run started from the API must answer within API Gateway's 29 s; the next run continues. */
const MANUAL_BUDGET_MS = 20_000;

export function inboxHandlers(d: Deps, ports: PollPorts): Handlers<typeof inboxPollRoutes> {
  return {
    'POST /email-boxes/{id}/poll': async ({ caller, params }) => {
      const boxId = params.id ?? '';
      if (!(await d.repos.emailBoxes.get(caller.studioId, boxId)))
        throw new NotFoundError('email box', boxId);
      const outcome = await pollAndReport(
        d,
        { studioId: caller.studioId, boxId, trigger: 'manual', budgetMs: MANUAL_BUDGET_MS },
        ports,
      );
      if (outcome.status === 'busy')
        throw new BoxBusyError(outcome.reason ?? 'A poll of this box is already running.');
      return { status: outcome.status === 'failed' ? 502 : 200, body: outcome };
    },
    'POST /messages/{id}/reprocess': async ({ caller, params }) => ({
      status: 200,
      body: await reprocessMessage(d, caller.studioId, params.id ?? ''),
    }),
  };
}

export interface InboxPollOptions {
  /** POP3 and auto-replies; default `defaultPorts(d)`. */
  ports?: PollPorts;
  /** Poll budget of a scheduled run; default POLL_BUDGET_MS, else the remaining time minus a margin. */
  budgetMs?: number;
}

/** Stop starting new messages this long before the Lambda timeout. */
const BUDGET_MARGIN_MS = 30_000;

/**
 * The inbox-poll function's Lambda handler over `d` (the composition root calls this): a box's
 * schedule invokes it with a ScheduledPoll, the API with a request for one of its routes. Both go
 * through the same middleware, so scheduled runs log with a request id and the cold-start flag.
 */
export function inboxPollFunction(d: Deps, options: InboxPollOptions = {}) {
  const ports = options.ports ?? defaultPorts(d);
  const api = apiRouter(inboxPollRoutes, inboxHandlers(d, ports), {
    logger: d.logger,
    studioClaim: d.config.studioClaim,
  });
  return lambdaHandler(d.logger, async (event: ApiEvent | ScheduledPoll, context: Context) => {
    if (!isScheduledPoll(event)) return api(event as ApiEvent, context);
    const budgetMs =
      options.budgetMs ??
      (Number(process.env.POLL_BUDGET_MS) || context.getRemainingTimeInMillis() - BUDGET_MARGIN_MS);
    const outcome = await pollAndReport(d, { ...event, trigger: 'schedule', budgetMs }, ports);
    d.logger.info('scheduled poll finished', {
      boxId: event.boxId,
      status: outcome.status,
      reason: outcome.reason,
    });
    return { status: outcome.status, runId: outcome.run?.id, counts: outcome.run?.counts };
  });
}
