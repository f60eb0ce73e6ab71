import type { Context } from 'aws-lambda';
import type { Deps } from '#lib/app/deps';
import { parseSesNotification } from '#lib/domain/receiving';
import type { ScheduleWindow } from '#lib/domain/schedule';
import { isGraphConnection } from '#lib/graph/detect';
import { graphSettingsFromEnv } from '#lib/graph/settings';
import { type ApiEvent, apiRouter, lambdaHandler } from '#lib/http/api';
import type { Handlers } from '#lib/http/routes';
import { autoReplier } from '#lib/inbox/auto-reply';
import { openMailbox } from '#lib/inbox/connect';
import { mailboxIdentity, type PollPorts } from '#lib/inbox/poll';
import { importPushed } from '#lib/inbox/push';
import {
  isPollJob,
  type PollJob,
  reprocessMessage,
  runPollJob,
  scheduledPoll,
  startPoll,
} from '#lib/inbox/service';
import { mailHostPolicy } from '#lib/net/guard';
import { oauthFromEnv } from '#lib/oauth/from-deps';
import type { OAuthService } from '#lib/oauth/service';
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
  return (
    typeof e?.studioId === 'string' &&
    typeof e?.boxId === 'string' &&
    !('routeKey' in (e ?? {})) &&
    // A PollJob (the poller invoking itself) also names a studio and a box.
    !('kind' in (e ?? {}))
  );
}

/**
 * POP3, IMAP or (for an Exchange Online box) Microsoft Graph from the box settings (an OAuth2 box
 * with tokens from `oauth`, by default configured from
 * OAUTH_*); auto-replies through the same send service as functions/send.
 */
export function defaultPorts(
  d: Deps,
  oauth: OAuthService | undefined = oauthFromEnv(d, process.env),
): PollPorts {
  const service = new SendService(d, {
    policy: { ...transportPolicyFromEnv(process.env), mailHosts: mailHostPolicy(d.config) },
    credentials: new CredentialCache(d.secrets),
    retry: defaultRetry,
  });
  const graph = graphSettingsFromEnv(process.env);
  return {
    // An OAuth2 box logs in with an access token, refreshed by the OAuth2 service when due.
    open: (box, password, studioId, run) =>
      isGraphConnection(box.connection)
        ? // The Graph connector is loaded by the first Exchange Online box, not at cold start.
          import('#lib/graph/box').then(({ openGraphBox }) =>
            openGraphBox(box, password, {
              settings: graph,
              repos: d.repos,
              studioId,
              identity: mailboxIdentity(box),
              ...(oauth ? { signIn: (o) => oauth.accessToken(studioId, box.id, o) } : {}),
              ...(run ? { deadline: run.deadline } : {}),
            }),
          )
        : openMailbox(box, password, {
            policy: mailHostPolicy(d.config),
            accessToken:
              oauth && box.connection.authentication === 'oauth2'
                ? () => oauth.accessToken(studioId, box.id)
                : undefined,
          }),
    autoReply: autoReplier(service),
  };
}

export function inboxHandlers(d: Deps, ports: PollPorts): Handlers<typeof inboxPollRoutes> {
  return {
    'POST /email-boxes/{id}/poll': async ({ caller, params }) => {
      const run = await startPoll(d, caller.studioId, params.id ?? '');
      return { status: 202, body: { runId: run.id, run } };
    },
    'POST /messages/{id}/reprocess': async ({ caller, params }) => {
      const { message } = await reprocessMessage(d, caller.studioId, params.id ?? '', ports);
      return { status: 200, body: message };
    },
  };
}

/** An SQS delivery (the receiving queue): each record's body is SES's notice through SNS. */
export interface QueueEvent {
  Records: { messageId: string; body: string; eventSource?: string }[];
}

export function isQueueEvent(event: unknown): event is QueueEvent {
  const records = (event as Partial<QueueEvent> | undefined)?.Records;
  return Array.isArray(records) && records.every((r) => r?.eventSource === 'aws:sqs');
}

/**
 * Imports each pushed message of an SQS batch on its own: a record that fails is reported back
 * (ReportBatchItemFailures), so SQS delivers only it again, and after its retries to the DLQ.
 */
export async function pushRecords(d: Deps, event: QueueEvent, ports: PollPorts) {
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const record of event.Records) {
    try {
      const notice = parseSesNotification(record.body);
      const outcome = await importPushed(d, notice, ports);
      d.logger.info('pushed message handled', {
        pushed: notice.id,
        boxes: outcome.imported.length,
        unrouted: outcome.unrouted,
      });
    } catch (error) {
      d.logger.warn('pushed message failed; the queue delivers it again', {
        queueMessageId: record.messageId,
        errorName: (error as Error).name,
        errorMessage: (error as Error).message,
      });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
}

export interface InboxPollOptions {
  /** POP3 and auto-replies; default `defaultPorts(d)`. */
  ports?: PollPorts;
  /** Poll budget of an invocation; default POLL_BUDGET_MS, else the remaining time minus a margin. */
  budgetMs?: number;
}

/** Stop starting new messages this long before the Lambda timeout. */
const BUDGET_MARGIN_MS = 30_000;

/**
 * The inbox-poll function's Lambda handler over `d` (the composition root calls this): a box's
 * schedule invokes it with a ScheduledPoll, the API with a request for one of its routes, and the
 * function itself (asynchronously) with a PollJob: a poll the API started, or a run carried on
 * after its budget ran out. All go through the same middleware, so runs log with a request id.
 */
export function inboxPollFunction(d: Deps, options: InboxPollOptions = {}) {
  const ports = options.ports ?? defaultPorts(d);
  const api = apiRouter(inboxPollRoutes, inboxHandlers(d, ports), {
    logger: d.logger,
    studioClaim: d.config.studioClaim,
  });
  return lambdaHandler(
    d.logger,
    async (event: ApiEvent | ScheduledPoll | PollJob | QueueEvent, context: Context) => {
      if (isQueueEvent(event)) return pushRecords(d, event, ports);
      const budgetMs =
        options.budgetMs ??
        (Number(process.env.POLL_BUDGET_MS) || context.getRemainingTimeInMillis() - BUDGET_MARGIN_MS);
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
    },
  );
}
