/**
 * Which notification a poll outcome deserves, given what the box's notification state says was
 * sent before. Pure. The rules (docs/schedules.md):
 * - a failure while the box was working: a failure email;
 * - another failure of the same kind: nothing, except a reminder once `reminderAfterMs` has passed
 *   since the last alert;
 * - a failure of another kind: a failure email for the new kind;
 * - the first success after failures: a "works again" email (whatever `notifyOn` says);
 * - any other success: a summary only with `notifyOn: every-run`, and only for scheduled runs (a
 *   manual run answers the person who started it);
 * - an event older than the newest one applied (EventBridge does not keep order) changes nothing
 *   and alerts nothing; a scheduled success summary is still sent with every-run.
 */
export type NotificationKind = 'failure' | 'reminder' | 'recovered' | 'success';

export interface NotifyState {
  /** Whether the last applied run failed. */
  failing: boolean;
  /** Failure kind of the last alert sent (failure or reminder). */
  alertKind?: string;
  /** When the last alert was decided (the run's finish time). */
  alertedAt?: string;
  /** Finish time of the first failed run of the current streak. */
  failingSince?: string;
  /** Failed runs in the current streak. */
  failedRuns: number;
  /** Finish time of the newest run applied; older events are stale. */
  lastEventAt?: string;
  /** Optimistic-locking version of the stored item (0: none stored). */
  version: number;
}

export const initialState = (): NotifyState => ({ failing: false, failedRuns: 0, version: 0 });

export interface RunOutcome {
  status: 'succeeded' | 'partial' | 'failed';
  trigger: 'schedule' | 'manual' | 'push';
  failureKind?: string;
  finishedAt: string;
}

export interface Decision {
  /** The email to send, if any. */
  email?: NotificationKind;
  /** The state to store; undefined when the event is stale and changes nothing. */
  next?: NotifyState;
  /** For the log. */
  reason: string;
  /** The streak the email reports on (recovered: the one just ended). */
  streak: { failingSince?: string; failedRuns: number; alertKind?: string };
}

export const DEFAULT_REMINDER_AFTER_MS = 24 * 60 * 60 * 1000;

export function decide(
  state: NotifyState,
  run: RunOutcome,
  prefs: { notifyOn: 'failures' | 'every-run'; reminderAfterMs?: number },
): Decision {
  const reminderAfter = prefs.reminderAfterMs ?? DEFAULT_REMINDER_AFTER_MS;
  const at = run.finishedAt;
  const summary = prefs.notifyOn === 'every-run' && run.trigger === 'schedule';
  const streak = {
    failingSince: state.failingSince,
    failedRuns: state.failedRuns,
    alertKind: state.alertKind,
  };

  if (state.lastEventAt && Date.parse(at) < Date.parse(state.lastEventAt)) {
    const email = run.status !== 'failed' && summary ? 'success' : undefined;
    return { email, reason: 'older than the last run applied', streak };
  }

  if (run.status === 'failed') {
    const kind = run.failureKind ?? 'unknown';
    const failedRuns = state.failing ? state.failedRuns + 1 : 1;
    const failingSince = state.failing ? (state.failingSince ?? at) : at;
    const base = { ...state, failing: true, failedRuns, failingSince, lastEventAt: at };
    const nextStreak = { failingSince, failedRuns, alertKind: kind };
    if (!state.failing)
      return {
        email: 'failure',
        next: { ...base, alertKind: kind, alertedAt: at },
        reason: 'first failure',
        streak: nextStreak,
      };
    if (state.alertKind !== kind)
      return {
        email: 'failure',
        next: { ...base, alertKind: kind, alertedAt: at },
        reason: `the failure changed from ${state.alertKind ?? 'none'} to ${kind}`,
        streak: nextStreak,
      };
    const since = state.alertedAt ? Date.parse(at) - Date.parse(state.alertedAt) : Number.POSITIVE_INFINITY;
    if (since >= reminderAfter)
      return {
        email: 'reminder',
        next: { ...base, alertedAt: at },
        reason: 'still failing: reminder',
        streak: nextStreak,
      };
    return { next: base, reason: 'same failure as the last alert', streak: nextStreak };
  }

  const next: NotifyState = { failing: false, failedRuns: 0, lastEventAt: at, version: state.version };
  if (state.failing) return { email: 'recovered', next, reason: 'first success after failures', streak };
  return {
    email: summary ? 'success' : undefined,
    next,
    reason: summary ? 'every-run summary' : 'success',
    streak,
  };
}
