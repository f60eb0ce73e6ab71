import type { Deps } from '#lib/app/deps';
import { ForbiddenError, NotFoundError } from '#lib/domain/errors';
import type { ScheduleWindow } from '#lib/domain/schedule';
import { type RouteHandler, requireAdmin } from '#lib/http/api';
import { autoReplier } from '#lib/inbox/auto-reply';
import { openBox } from '#lib/inbox/connect';
import type { PollPorts } from '#lib/inbox/poll';
import { pollAndReport, reprocessMessage } from '#lib/inbox/service';
import { mailHostPolicy } from '#lib/net/guard';
import { defaultRetry } from '#lib/send/retry';
import { SendService } from '#lib/send/service';
import { CredentialCache, transportPolicyFromEnv } from '#lib/send/transport';

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

/** A run started from the API must answer within API Gateway's 29 s; the next run continues. */
const MANUAL_BUDGET_MS = 20_000;

export function inboxHandlers(d: Deps, ports: PollPorts): Record<string, RouteHandler> {
  return {
    'POST /email-boxes/{id}/poll': async ({ caller, params }) => {
      requireAdmin(caller);
      const boxId = params.id ?? '';
      if (!(await d.repos.emailBoxes.get(caller.studioId, boxId)))
        throw new NotFoundError('email box', boxId);
      const outcome = await pollAndReport(
        d,
        { studioId: caller.studioId, boxId, trigger: 'manual', budgetMs: MANUAL_BUDGET_MS },
        ports,
      );
      if (outcome.status === 'busy') {
        return { status: 409, body: { error: { code: 'box_busy', message: outcome.reason } } };
      }
      return { status: outcome.status === 'failed' ? 502 : 200, body: outcome };
    },
    'POST /messages/{id}/reprocess': async ({ caller, params }) => {
      if (!caller.isAdmin) throw new ForbiddenError('Only a studio admin may reprocess messages.');
      return { status: 200, body: await reprocessMessage(d, caller.studioId, params.id ?? '') };
    },
  };
}
