/**
 * `notify`: turns a poll outcome event into (at most) one email to the box's notification address,
 * read from the box's schedule at notify time. Each run is claimed in DynamoDB before anything is
 * sent, together with the failure streak it produces, so a redelivered event or a Lambda retry never
 * sends twice or counts a failure twice; the alert itself is recorded only once its email went. A send that fails marks the claim `failed` and throws: the
 * one Lambda retry sends it again, and after that the event goes to the dead-letter queue.
 */

import type { Deps } from '#lib/app/deps';
import { ConditionFailed } from '#lib/data/table';
import {
  POLL_EVENT_SOURCE,
  POLL_FAILED,
  POLL_SUCCEEDED,
  type PollOutcomeDetail,
  pollOutcomeDetail,
} from '#lib/inbox/events';
import { count } from '#lib/metrics';
import type { MailTransport, RawMail } from '#lib/ports/index';
import { notificationContent, notificationMessageId, notificationMime } from './compose.ts';
import { DEFAULT_REMINDER_AFTER_MS, decide, type NotificationKind } from './decide.ts';
import { type NotifyClaim, NotifyStore } from './store.ts';

/** The event is not a poll outcome this function understands; it goes to the DLQ for a look. */
export class InvalidNotifyEventError extends Error {
  override readonly name = 'InvalidNotifyEventError';
}

/** The transport refused the notification; Lambda retries once, then the DLQ keeps the event. */
export class NotificationSendError extends Error {
  override readonly name = 'NotificationSendError';
}

export interface NotifyOptions {
  /** Same-kind failures are repeated as a reminder after this long. Default 24 hours. */
  reminderAfterMs?: number;
  /** Default: the managed sending service (`d.ses()`). */
  transport?: () => MailTransport;
}

/** One composed notification, ready to go. */
interface Outgoing {
  email: NotificationKind;
  /** The failure kind a failure or reminder email alerts about. */
  alertKind?: string;
  to: string;
  subject: string;
  mail: RawMail;
}

export interface NotifyResult {
  runId: string;
  boxId: string;
  email?: NotificationKind;
  to?: string;
  sent: boolean;
  reason: string;
}

/** Reads `{ source, 'detail-type', detail }` (an EventBridge event) as a poll outcome. */
export function parsePollEvent(event: unknown): PollOutcomeDetail {
  const e = event as { source?: unknown; 'detail-type'?: unknown; detail?: unknown } | null;
  if (
    e?.source !== POLL_EVENT_SOURCE ||
    (e['detail-type'] !== POLL_SUCCEEDED && e['detail-type'] !== POLL_FAILED)
  )
    throw new InvalidNotifyEventError(
      `Expected an event from ${POLL_EVENT_SOURCE} ("${POLL_SUCCEEDED}" or "${POLL_FAILED}"), got ${String(e?.source)} "${String(e?.['detail-type'])}".`,
    );
  const parsed = pollOutcomeDetail.safeParse(e.detail);
  if (!parsed.success)
    throw new InvalidNotifyEventError(
      `The poll outcome event is malformed: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'detail'}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

export async function notifyRun(d: Deps, event: unknown, options: NotifyOptions = {}): Promise<NotifyResult> {
  const run = parsePollEvent(event);
  const { studioId: sid, boxId, runId } = run;
  const log = d.logger.createChild({ persistentLogAttributes: { studioId: sid, boxId, runId } });
  const store = new NotifyStore(d.repos.table, () => d.now().getTime());
  const reminderAfterMs = options.reminderAfterMs ?? DEFAULT_REMINDER_AFTER_MS;
  // Re-read now: the address may have changed since the run, and a deleted box tells no one.
  const box = await d.repos.emailBoxes.get(sid, boxId);
  const schedule = box?.schedule;
  const to = schedule?.notifyEmail;
  const base = { runId, boxId };

  /**
   * The email of a decided claim, composed before the claim is written or moved to `sending`: a
   * failure here leaves nothing claimed, so the retry decides again instead of finding the run
   * `sending` (in doubt) and telling no one.
   */
  const compose = async (claim: NotifyClaim & { email: NotificationKind; to: string }): Promise<Outgoing> => {
    const content = notificationContent({
      kind: claim.email,
      run,
      box: {
        description: box?.description ?? run.boxDescription ?? boxId,
        emailAddress: box?.connection.emailAddress,
      },
      timeZone: schedule?.timeZone ?? 'UTC',
      streak: {
        failingSince: claim.failingSince,
        failedRuns: claim.failedRuns ?? 0,
        alertKind: claim.alertKind,
      },
      reminderAfterHours: Math.round(reminderAfterMs / 3_600_000),
    });
    const sender = d.config.notificationSender;
    const messageId = notificationMessageId(runId, claim.email, sender);
    const mail = await notificationMime(content, { from: sender, to: claim.to, messageId, date: d.now() });
    return { email: claim.email, alertKind: claim.alertKind, to: claim.to, subject: content.subject, mail };
  };

  /** Sends a composed email whose claim is `sending`; a refusal marks it `failed` and throws. */
  const send = async (out: Outgoing): Promise<NotifyResult> => {
    try {
      const transport = options.transport?.() ?? d.ses();
      await transport.send(out.mail);
    } catch (error) {
      const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      if (!(await store.move(sid, boxId, runId, 'sending', 'failed', { error: text }).catch(() => false)))
        log.warn('could not mark the notification failed; a retry will not send it');
      log.error('notification could not be sent', { email: out.email, errorMessage: text });
      count(d.metrics, { NotificationsFailed: 1 });
      throw new NotificationSendError(
        `The ${out.email} notification for run ${runId} could not be sent: ${text}`,
      );
    }
    try {
      await store.move(sid, boxId, runId, 'sending', 'sent', { messageId: out.mail.messageId });
    } catch (error) {
      // Sent all the same; the claim stays `sending`, so a redelivery still sends nothing.
      log.warn('notification sent but not recorded as sent', { errorMessage: (error as Error).message });
    }
    // Only now is there an alert to remember: the next failure of this kind is "the same".
    if ((out.email === 'failure' || out.email === 'reminder') && out.alertKind)
      await store.recordAlert(sid, boxId, out.alertKind, run.finishedAt).catch((error: unknown) =>
        log.warn('alert sent but not recorded; the next failure alerts again', {
          errorMessage: (error as Error).message,
        }),
      );
    log.info('notification sent', { email: out.email, subject: out.subject });
    count(d.metrics, { NotificationsSent: 1 });
    return { ...base, email: out.email, to: out.to, sent: true, reason: 'sent' };
  };

  for (let attempt = 0; attempt < 5; attempt++) {
    const existing = await store.claim(sid, boxId, runId);
    if (existing) {
      if (existing.status === 'failed' && existing.email && existing.to) {
        const out = await compose({ ...existing, email: existing.email, to: existing.to });
        if (await store.move(sid, boxId, runId, 'failed', 'sending')) return send(out);
        continue;
      }
      // `sending` after a crash is in doubt: not sent again (at most once), but logged.
      if (existing.status === 'sending') log.warn('notification in doubt: claimed but not recorded as sent');
      return {
        ...base,
        email: existing.email,
        to: existing.to,
        sent: false,
        reason: `already handled (${existing.status})`,
      };
    }

    const state = await store.state(sid, boxId);
    const decision = decide(
      state,
      {
        status: run.status,
        trigger: run.trigger,
        failureKind: run.failure?.kind,
        finishedAt: run.finishedAt,
      },
      { notifyOn: schedule?.notifyOn ?? 'failures', reminderAfterMs },
    );
    const email = decision.email && to ? decision.email : undefined;
    const claim: NotifyClaim = {
      runId,
      status: email ? 'sending' : 'none',
      email,
      to: email ? to : undefined,
      failingSince: decision.streak.failingSince,
      failedRuns: decision.streak.failedRuns,
      alertKind: decision.streak.alertKind,
      attempts: email ? 1 : 0,
    };
    const out = email && to ? await compose({ ...claim, email, to }) : undefined;
    // An alert is recorded when its email has gone (send → recordAlert), never before: a box
    // without a notification address, or a send that fails for good, leaves the last alert as it was.
    const alerting = decision.email === 'failure' || decision.email === 'reminder';
    const next =
      decision.next && alerting
        ? { ...decision.next, alertKind: state.alertKind, alertedAt: state.alertedAt }
        : decision.next;
    try {
      await store.commit(sid, boxId, claim, next, state.version);
    } catch (error) {
      // Claimed by a concurrent delivery, or the state moved: read again.
      if (error instanceof ConditionFailed) continue;
      throw error;
    }
    if (out) return send(out);
    const reason = decision.email ? `no notification address for a ${decision.email} email` : decision.reason;
    log.info('no notification sent', { reason });
    return { ...base, sent: false, reason };
  }
  throw new Error(`The notification state of box ${boxId} kept changing; run ${runId} was not handled.`);
}
