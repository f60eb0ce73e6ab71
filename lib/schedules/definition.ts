/**
 * A box's poll schedule as EventBridge Scheduler (or the in-process twin) holds it: the definition
 * built from the stored settings, what a box save must write, and the differences ("drift") between
 * the stored settings and the deployed schedule after an admin edited it in the console. Pure.
 */
import type { BoxSchedule, EmailBox } from '#lib/domain/model';
import {
  legacyScheduleName,
  parseWindow,
  type ScheduleWindow,
  scheduleExpression,
  scheduleName,
  WEEKDAYS,
  windowOf,
} from '#lib/domain/schedule';
import type { ScheduleDefinition } from '#lib/ports/index';

/** Scheduler's context attribute: replaced by the minute each invocation was scheduled for. */
export const SCHEDULED_TIME = '<aws.scheduler.scheduled-time>';

/** The target input of every poll schedule (the poller's `ScheduledPoll`). */
export interface PollScheduleInput {
  studioId: string;
  boxId: string;
  window: ScheduleWindow;
  scheduledTime: string;
  [key: string]: unknown;
}

type BoxNaming = Pick<EmailBox, 'id' | 'description'>;

/**
 * The box's schedule name: `inbox-<description>-<studio>-<box>` as far as it fits, always ending
 * in a digest of studio and box, so two boxes (of one studio or two) never share a name.
 */
export function nameOf(studioId: string, box: BoxNaming): string {
  return scheduleName(studioId, box.id, box.description);
}

/** The name the box's schedule had before the digest was always added (lib/domain/schedule.ts). */
export function legacyNameOf(studioId: string, box: BoxNaming): string | undefined {
  const legacy = legacyScheduleName(studioId, box.id, box.description);
  return legacy === nameOf(studioId, box) ? undefined : legacy;
}

export function descriptionOf(studioId: string, box: BoxNaming): string {
  return `Polls the email box "${box.description}" (studio ${studioId}, box ${box.id}). Managed by the studio-mail settings API; edits here show as drift there.`.slice(
    0,
    512,
  );
}

/** The definition the stored settings ask for. */
export function definitionOf(studioId: string, box: BoxNaming, schedule: BoxSchedule): ScheduleDefinition {
  const window = windowOf(schedule);
  const input: PollScheduleInput = { studioId, boxId: box.id, window, scheduledTime: SCHEDULED_TIME };
  return {
    name: nameOf(studioId, box),
    description: descriptionOf(studioId, box),
    expression: scheduleExpression(window),
    timeZone: schedule.timeZone,
    enabled: schedule.enabled,
    input,
  };
}

const sortedDays = (days: readonly string[]) =>
  [...new Set(days)].sort(
    (a, b) =>
      WEEKDAYS.indexOf(a as (typeof WEEKDAYS)[number]) - WEEKDAYS.indexOf(b as (typeof WEEKDAYS)[number]),
  );

/**
 * Whether two stored schedules would deploy differently. The notification settings (`notifyEmail`,
 * `notifyOn`) are read by `notify` at run time and never written to Scheduler.
 */
export function deployedSettingsChanged(a: BoxSchedule | undefined, b: BoxSchedule | undefined): boolean {
  if (!a || !b) return a !== b;
  return (
    a.enabled !== b.enabled ||
    a.startTime !== b.startTime ||
    a.endTime !== b.endTime ||
    a.intervalMinutes !== b.intervalMinutes ||
    a.timeZone !== b.timeZone ||
    sortedDays(a.weekdays).join(',') !== sortedDays(b.weekdays).join(',')
  );
}

/** One write to the scheduler; `prior` (when known) is what to put back on rollback. */
export type ScheduleOp = { kind: 'put'; def: ScheduleDefinition } | { kind: 'delete'; name: string };

export interface SchedulePlanInput {
  studioId: string;
  /** The box as stored before the save; absent on create. */
  before?: BoxNaming & { schedule?: BoxSchedule };
  /** The box as it will be stored; absent on delete. */
  after?: BoxNaming & { schedule?: BoxSchedule };
  /** Write the schedule from the settings even when they did not change (overwrites console edits). */
  force?: boolean;
  /** The deployed schedule under the old name, when the box is renamed without a schedule change. */
  deployedBefore?: ScheduleDefinition;
}

/**
 * The scheduler writes a box save needs. The API writes a schedule only when its deployed settings
 * change (or the box is renamed, or `force`), so saving other fields of a box never overwrites an
 * admin's console edit. A box without a schedule has no Scheduler schedule; a disabled one has a
 * DISABLED schedule. A rename moves the schedule to the new name, keeping a console edit.
 */
export function planScheduleOps(p: SchedulePlanInput): ScheduleOp[] {
  const { studioId, before, after } = p;
  const oldName = before?.schedule ? nameOf(studioId, before) : undefined;
  if (!after?.schedule)
    return oldName ? withLegacyDeletes(studioId, before, [{ kind: 'delete', name: oldName }]) : [];

  const newName = nameOf(studioId, after);
  const changed = p.force || !before?.schedule || deployedSettingsChanged(before.schedule, after.schedule);
  const renamed = oldName !== undefined && oldName !== newName;
  if (!changed && !renamed) return [];

  let def = definitionOf(studioId, after, after.schedule);
  if (!changed && p.deployedBefore) {
    // Same settings, new name: carry the deployed schedule (console edits included) across.
    const carried = p.deployedBefore;
    def = {
      ...carried,
      name: newName,
      description: def.description,
      input: { ...carried.input, studioId, boxId: after.id },
    };
  }
  const ops: ScheduleOp[] = [{ kind: 'put', def }];
  if (renamed && oldName) ops.push({ kind: 'delete', name: oldName });
  return withLegacyDeletes(studioId, before, ops);
}

/** A write to a box's schedule also removes one left under its legacy name (a no-op when none is). */
function withLegacyDeletes(studioId: string, before: BoxNaming | undefined, ops: ScheduleOp[]): ScheduleOp[] {
  const legacy = before ? legacyNameOf(studioId, before) : undefined;
  return legacy ? [...ops, { kind: 'delete', name: legacy }] : ops;
}

export interface Drift {
  /** `schedule` (one side missing), `enabled`, `expression`, `timeZone`, `window.*` or `input.*`. */
  field: string;
  stored: unknown;
  deployed: unknown;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Where the deployed schedule differs from the one the stored settings ask for. */
export function driftOf(
  stored: ScheduleDefinition | undefined,
  deployed: ScheduleDefinition | undefined,
): Drift[] {
  if (!stored && !deployed) return [];
  if (!stored || !deployed)
    return [{ field: 'schedule', stored: stored?.name ?? null, deployed: deployed?.name ?? null }];
  const drift: Drift[] = [];
  const add = (field: string, a: unknown, b: unknown) => {
    if (!same(a, b)) drift.push({ field, stored: a ?? null, deployed: b ?? null });
  };
  add('enabled', stored.enabled, deployed.enabled);
  add('expression', stored.expression, deployed.expression);
  add('timeZone', stored.timeZone, deployed.timeZone);

  const sw = stored.input.window as ScheduleWindow;
  const raw = deployed.input.window;
  const dw = parseWindow(raw);
  if (!dw) {
    drift.push({ field: 'window', stored: sw, deployed: raw ?? null });
  } else {
    add('window.startTime', sw.startTime, dw.startTime);
    add('window.endTime', sw.endTime, dw.endTime);
    add('window.intervalMinutes', sw.intervalMinutes, dw.intervalMinutes);
    add('window.weekdays', sortedDays(sw.weekdays), sortedDays(dw.weekdays));
    add('window.timeZone', sw.timeZone, dw.timeZone);
  }
  for (const key of ['studioId', 'boxId', 'scheduledTime'] as const)
    add(`input.${key}`, stored.input[key], deployed.input[key]);
  return drift;
}
