/**
 * Inbox schedules: the seed's Email Inbox Processor settings (start time, end time, how often,
 * which days) turned into an EventBridge Scheduler expression, and the exact window check the
 * poller applies. Scheduler fires on a cron that covers the window; the poller honours the
 * window to the minute, in the box's time zone, so 08:30–17:15 every 20 minutes means 08:30,
 * 08:50, …, 17:10 on the chosen days, across daylight-saving changes. Pure.
 */
import { createHash } from 'node:crypto';
import { isValidTimeZone, wallClock } from './cron.ts';
import { type BoxSchedule, type Weekday, weekday } from './model.ts';

export const WEEKDAYS: Weekday[] = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** What the scheduler hands the poller; the poller re-checks it, so a console edit is honoured. */
export interface ScheduleWindow {
  startTime: string;
  endTime: string;
  intervalMinutes: number;
  weekdays: Weekday[];
  timeZone: string;
}

const toMinutes = (hhmm: string) => {
  const [h, m] = hhmm.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
};

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Window length in minutes; an end at or before the start runs past midnight. */
export function windowLength(w: Pick<ScheduleWindow, 'startTime' | 'endTime'>): number {
  const start = toMinutes(w.startTime);
  const end = toMinutes(w.endTime);
  return end > start ? end - start : end + 1440 - start;
}

export function isOvernight(w: Pick<ScheduleWindow, 'startTime' | 'endTime'>): boolean {
  return toMinutes(w.endTime) <= toMinutes(w.startTime);
}

/**
 * A Scheduler cron expression that fires at every run time of the window (and possibly a few
 * more, which the poller skips). Fields: minutes hours day-of-month month day-of-week year.
 */
export function scheduleExpression(w: ScheduleWindow): string {
  const start = toMinutes(w.startTime);
  const length = windowLength(w);
  const days = new Set(w.weekdays);
  if (isOvernight(w))
    for (const d of w.weekdays) days.add(WEEKDAYS[(WEEKDAYS.indexOf(d) + 1) % 7] as Weekday);
  const dow = WEEKDAYS.filter((d) => days.has(d)).join(',');
  if (w.intervalMinutes >= length || w.intervalMinutes >= 1440) {
    // One run a day, at the start time.
    return `cron(${start % 60} ${Math.floor(start / 60)} ? * ${WEEKDAYS.filter((d) => w.weekdays.includes(d)).join(',')} *)`;
  }
  // Every run falls on a multiple of g minutes from the start; so does every cron tick.
  const g = gcd(w.intervalMinutes, 60);
  const offset = start % g;
  const minutes = g === 60 ? String(start % 60) : `${offset}/${g}`;
  const hours: number[] = [];
  const firstHour = Math.floor(start / 60);
  const lastHour = Math.floor((start + length) / 60);
  for (let h = firstHour; h <= lastHour; h++) hours.push(h % 24);
  const hourField = hours.length >= 24 ? '*' : [...new Set(hours)].sort((a, b) => a - b).join(',');
  return `cron(${minutes} ${hourField} ? * ${dow} *)`;
}

/**
 * Whether a poll at `at` is one the schedule asks for: inside the window (start and end
 * inclusive) on a chosen day, on the interval's grid counted from the start time. For a window
 * past midnight the early-morning part belongs to the day it started on.
 */
export function isDue(w: ScheduleWindow, at: Date): boolean {
  const clock = wallClock(at, w.timeZone);
  const now = clock.hour * 60 + clock.minute;
  const start = toMinutes(w.startTime);
  const length = windowLength(w);
  const today = WEEKDAYS[clock.weekday] as Weekday;
  const yesterday = WEEKDAYS[(clock.weekday + 6) % 7] as Weekday;
  // Minutes since the window opened today, or (past midnight) since it opened yesterday.
  const candidates: [Weekday, number][] = [[today, now - start]];
  if (isOvernight(w)) candidates.push([yesterday, now + 1440 - start]);
  return candidates.some(
    ([day, since]) =>
      w.weekdays.includes(day) && since >= 0 && since <= length && since % w.intervalMinutes === 0,
  );
}

export function windowOf(s: BoxSchedule): ScheduleWindow {
  return {
    startTime: s.startTime,
    endTime: s.endTime,
    intervalMinutes: s.intervalMinutes,
    weekdays: s.weekdays,
    timeZone: s.timeZone,
  };
}

/**
 * A schedule name an admin recognises in the console; Scheduler allows 64 of [0-9a-zA-Z-_.].
 * It always ends in a digest of studio and box: the readable part alone is ambiguous
 * (`acme-nyc`/`sales` and `acme`/`nyc-sales` read the same), and may be cut to fit.
 */
export function scheduleName(studioId: string, boxId: string, description: string): string {
  const digest = createHash('sha256').update(`${studioId}\n${boxId}`).digest('hex').slice(0, 16);
  const readable = `inbox-${slugOf(description)}-${studioId}-${boxId}`.replace(/[^0-9a-zA-Z_.-]/g, '-');
  return `${readable.slice(0, 64 - digest.length - 1).replace(/-+$/, '')}-${digest}`;
}

/**
 * The name schedules had before issue 12 (a digest only when the ids did not fit): read and
 * deleted on the way to the new name, so a box is never polled by two schedules.
 */
export function legacyScheduleName(studioId: string, boxId: string, description: string): string {
  const name = `inbox-${slugOf(description)}-${studioId}-${boxId}`
    .replace(/[^0-9a-zA-Z_.-]/g, '-')
    .slice(0, 64);
  if (name.endsWith(`-${studioId}-${boxId}`)) return name;
  return scheduleName(studioId, boxId, description);
}

function slugOf(description: string): string {
  const slug = description
    .normalize('NFKD')
    .replace(/[^\w.-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 24);
  return slug || 'box';
}

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

/**
 * Reads a window from a schedule's input as an admin may have edited it in the console; undefined
 * when it is missing or not a window (wrong types, an unknown zone, no days).
 */
export function parseWindow(value: unknown): ScheduleWindow | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const w = value as Record<string, unknown>;
  const days = Array.isArray(w.weekdays) ? w.weekdays : [];
  if (
    typeof w.startTime !== 'string' ||
    !HHMM.test(w.startTime) ||
    typeof w.endTime !== 'string' ||
    !HHMM.test(w.endTime) ||
    typeof w.intervalMinutes !== 'number' ||
    !Number.isInteger(w.intervalMinutes) ||
    w.intervalMinutes < 1 ||
    w.intervalMinutes > 1440 ||
    days.length === 0 ||
    !days.every((d) => weekday.safeParse(d).success) ||
    typeof w.timeZone !== 'string' ||
    !isValidTimeZone(w.timeZone)
  )
    return undefined;
  return {
    startTime: w.startTime,
    endTime: w.endTime,
    intervalMinutes: w.intervalMinutes,
    weekdays: days as Weekday[],
    timeZone: w.timeZone,
  };
}

export type ScheduledRunCheck =
  | { due: true; at: Date; window?: ScheduleWindow }
  | { due: false; reason: string };

/**
 * Whether a scheduled invocation should poll. The window comes from the invocation's input (so an
 * admin's console edit is honoured), else from the stored settings; the time is Scheduler's
 * scheduled time (the minute it was meant for, not when a slow invocation arrived), else `now`.
 * A box whose stored schedule is disabled never polls on a schedule.
 */
export function scheduledRunCheck(
  input: { window?: unknown; scheduledTime?: unknown },
  stored: BoxSchedule | undefined,
  now: Date,
): ScheduledRunCheck {
  if (stored && !stored.enabled) return { due: false, reason: 'The box schedule is disabled.' };
  const scheduled = typeof input.scheduledTime === 'string' ? new Date(input.scheduledTime) : undefined;
  const at = scheduled && !Number.isNaN(scheduled.getTime()) ? scheduled : now;
  const window = parseWindow(input.window) ?? (stored ? windowOf(stored) : undefined);
  if (window && !isDue(window, at))
    return { due: false, reason: `Outside the schedule window at ${at.toISOString()}.` };
  return { due: true, at, window };
}
