import { describe, expect, it } from 'vitest';
import { decide, initialState, type NotifyState, type RunOutcome } from '#lib/notify/decide';

const H = 3_600_000;
const at = (hours: number) => new Date(Date.UTC(2026, 5, 15, 8) + hours * H).toISOString();
const failed = (hours: number, kind = 'login-rejected'): RunOutcome => ({
  status: 'failed',
  trigger: 'schedule',
  failureKind: kind,
  finishedAt: at(hours),
});
const ok = (hours: number, over: Partial<RunOutcome> = {}): RunOutcome => ({
  status: 'succeeded',
  trigger: 'schedule',
  finishedAt: at(hours),
  ...over,
});
const failures = { notifyOn: 'failures' as const };
const everyRun = { notifyOn: 'every-run' as const };

/** Applies runs in order, as the store would, returning the emails decided. */
function play(runs: RunOutcome[], prefs: { notifyOn: 'failures' | 'every-run' } = failures) {
  let state: NotifyState = initialState();
  return runs.map((r) => {
    const d = decide(state, r, prefs);
    if (d.next) state = { ...d.next, version: state.version + 1 };
    return d.email ?? null;
  });
}

describe('which notification a run deserves', () => {
  it('alerts on the first failure and stays quiet while the same failure repeats', () => {
    // Act
    const emails = play([ok(0), failed(1), failed(2), failed(3)]);
    // Assess
    expect(emails).toEqual([null, 'failure', null, null]);
  });

  it('alerts again when the failure changes kind', () => {
    // Act
    const emails = play([failed(0), failed(1, 'server-unreachable'), failed(2, 'server-unreachable')]);
    // Assess
    expect(emails).toEqual(['failure', 'failure', null]);
  });

  it('reminds once a day while the same failure lasts', () => {
    // Act
    const emails = play([failed(0), failed(12), failed(23.9), failed(24), failed(30), failed(48)]);
    // Assess
    expect(emails).toEqual(['failure', null, null, 'reminder', null, 'reminder']);
  });

  it('says "works again" on the first success after failures, whatever notifyOn says, then nothing', () => {
    // Act
    const emails = play([failed(0), failed(1), ok(2), ok(3)]);
    // Assess
    expect(emails).toEqual(['failure', null, 'recovered', null]);
  });

  it('reports the streak that ended in the recovered decision', () => {
    // Prepare
    let state = initialState();
    for (const r of [failed(0), failed(1), failed(2)])
      state = { ...decide(state, r, failures).next!, version: 1 };
    // Act
    const d = decide(state, ok(3), failures);
    // Assess
    expect(d.email).toBe('recovered');
    expect(d.streak).toEqual({ failingSince: at(0), failedRuns: 3, alertKind: 'login-rejected' });
    expect(d.next).toMatchObject({ failing: false, failedRuns: 0 });
  });

  it('summarises every scheduled success with every-run, but not a manual run', () => {
    // Act
    const emails = play([ok(0), ok(1, { status: 'partial' }), ok(2, { trigger: 'manual' })], everyRun);
    // Assess
    expect(emails).toEqual(['success', 'success', null]);
  });

  it('alerts on a failed manual run like a scheduled one (the box is failing either way)', () => {
    // Act
    const emails = play([{ ...failed(0), trigger: 'manual' }, failed(1)]);
    // Assess
    expect(emails).toEqual(['failure', null]);
  });

  it('lets an event older than the last one applied change nothing', () => {
    // Prepare
    let state = initialState();
    state = { ...decide(state, ok(5), failures).next!, version: 1 };
    // Act
    const late = decide(state, failed(4), failures);
    const lateSummary = decide(state, ok(4), everyRun);
    // Assess
    expect(late.email).toBeUndefined();
    expect(late.next).toBeUndefined();
    expect(lateSummary.email).toBe('success');
    expect(lateSummary.next).toBeUndefined();
  });
});
