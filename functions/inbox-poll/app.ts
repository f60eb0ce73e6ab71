import type { Route } from '#functions/settings/routes/common';
import type { Deps } from '#lib/app/deps';
import { ForbiddenError } from '#lib/domain/errors';
import * as m from '#lib/domain/model';
import type { ScheduleWindow } from '#lib/domain/schedule';
import { type RouteHandler, requireAdmin } from '#lib/http/api';
import { autoReplier } from '#lib/inbox/auto-reply';
import { openBox } from '#lib/inbox/connect';
import type { PollPorts } from '#lib/inbox/poll';
import { reprocessMessage, startPoll } from '#lib/inbox/service';
import { defaultRetry } from '#lib/send/retry';
import { SendService } from '#lib/send/service';
import { CredentialCache, transportPolicyFromEnv } from '#lib/send/transport';
import { pollStarted } from '#lib/settings/schemas';

/** What a schedule hands the poller (the Scheduler target input). */
export interface ScheduledPoll {
  studioId: string;
  boxId: string;
  window?: ScheduleWindow;
  scheduledTime?: string;
}

export function isScheduledPoll(event: unknown): event is ScheduledPoll {
  const e = event as Partial<ScheduledPoll> | undefined;
  return (
    typeof e?.studioId === 'string' &&
    typeof e?.boxId === 'string' &&
    !('routeKey' in (e ?? {})) &&
    !('kind' in (e ?? {}))
  );
}

/** POP3 from the box settings; auto-replies through the same send service as functions/send. */
export function defaultPorts(d: Deps): PollPorts {
  const service = new SendService(d, {
    policy: transportPolicyFromEnv(process.env),
    credentials: new CredentialCache(d.secrets),
    retry: defaultRetry,
  });
  return { open: (box, password) => openBox(box.connection, password), autoReply: autoReplier(service) };
}

const tag = 'Inbox poller';

/** The poll and reprocess routes, each with its OpenAPI entry (the same shape as the settings routes). */
export function inboxRouteTable(d: Deps, ports: PollPorts): Route[] {
  return [
    {
      doc: {
        key: 'POST /email-boxes/{id}/poll',
        tag,
        access: 'admin',
        status: 202,
        summary:
          'Polls the box now: answers at once with the run id; the run goes on until the mailbox is drained.',
        description:
          'The run is recorded `running` before the answer; follow it with GET /email-boxes/{id}/runs/{runId} (live counts). 409 `box_busy` while another run holds the box.',
        response: pollStarted,
        errors: [409, 502],
      },
      handle: async ({ caller, params }) => {
        requireAdmin(caller);
        const run = await startPoll(d, caller.studioId, params.id ?? '');
        return { status: 202, body: { runId: run.id, run } };
      },
    },
    {
      doc: {
        key: 'POST /messages/{id}/reprocess',
        tag,
        access: 'admin',
        summary:
          'Files a quarantined message again from its raw copy, as an import would (box fields, task, auto-reply).',
        response: m.message,
      },
      handle: async ({ caller, params }) => {
        if (!caller.isAdmin) throw new ForbiddenError('Only a studio admin may reprocess messages.');
        const { message } = await reprocessMessage(d, caller.studioId, params.id ?? '', ports);
        return { status: 200, body: message };
      },
    },
  ];
}

export function inboxHandlers(d: Deps, ports: PollPorts): Record<string, RouteHandler> {
  return Object.fromEntries(inboxRouteTable(d, ports).map((r) => [r.doc.key, r.handle]));
}
