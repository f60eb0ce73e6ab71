import { describe, expect, it } from 'vitest';
import { parseExpression } from '#lib/domain/cron';
import { isDue, type ScheduleWindow, scheduleExpression, scheduleName } from '#lib/domain/schedule';

/** Every minute of [from, to) at which the expression fires and the window check passes. */
function runs(w: ScheduleWindow, from: string, to: string): string[] {
  const expr = parseExpression(scheduleExpression(w));
  const out: string[] = [];
  for (let t = Date.parse(from); t < Date.parse(to); t += 60_000) {
    const at = new Date(t);
    if (expr.matches(at, w.timeZone) && isDue(w, at)) out.push(local(at, w.timeZone));
  }
  return out;
}

const local = (at: Date, timeZone: string) =>
  new Intl.DateTimeFormat('en-GB', {
    timeZone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(at);

describe('schedule windows', () => {
  it('runs 08:30–17:15 every 20 minutes on Mon/Wed/Fri only, to the minute', () => {
    // Prepare
    const w: ScheduleWindow = {
      startTime: '08:30',
      endTime: '17:15',
      intervalMinutes: 20,
      weekdays: ['MON', 'WED', 'FRI'],
      timeZone: 'Europe/London',
    };
    // Act (a week in June: Mon 15 – Sun 21)
    const all = runs(w, '2026-06-15T00:00:00Z', '2026-06-22T00:00:00Z');
    // Assess
    expect(scheduleExpression(w)).toBe('cron(10/20 8,9,10,11,12,13,14,15,16,17 ? * MON,WED,FRI *)');
    expect(all.length).toBe(3 * 27);
    const monday = all.filter((r) => r.startsWith('Mon'));
    expect(monday[0]).toBe('Mon 08:30');
    expect(monday.at(-1)).toBe('Mon 17:10');
    expect(all.some((r) => r.startsWith('Tue'))).toBe(false);
  });

  it('runs an overnight window 22:00–02:00 across midnight, counted from the start day', () => {
    // Prepare
    const w: ScheduleWindow = {
      startTime: '22:00',
      endTime: '02:00',
      intervalMinutes: 60,
      weekdays: ['FRI'],
      timeZone: 'America/New_York',
    };
    // Act (Thu 18 June – Mon 22 June 2026)
    const all = runs(w, '2026-06-18T00:00:00Z', '2026-06-23T00:00:00Z');
    // Assess
    expect(all).toEqual(['Fri 22:00', 'Fri 23:00', 'Sat 00:00', 'Sat 01:00', 'Sat 02:00']);
  });

  it('runs a single weekday', () => {
    const w: ScheduleWindow = {
      startTime: '09:00',
      endTime: '10:00',
      intervalMinutes: 30,
      weekdays: ['TUE'],
      timeZone: 'UTC',
    };
    expect(runs(w, '2026-06-15T00:00:00Z', '2026-06-22T00:00:00Z')).toEqual([
      'Tue 09:00',
      'Tue 09:30',
      'Tue 10:00',
    ]);
  });

  it('runs a 1440-minute interval once a day at the start time', () => {
    const w: ScheduleWindow = {
      startTime: '07:45',
      endTime: '18:00',
      intervalMinutes: 1440,
      weekdays: ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'],
      timeZone: 'Asia/Tokyo',
    };
    expect(scheduleExpression(w)).toBe('cron(45 7 ? * SUN,MON,TUE,WED,THU,FRI,SAT *)');
    const all = runs(w, '2026-06-15T00:00:00Z', '2026-06-22T00:00:00Z');
    expect(all).toHaveLength(7);
    expect(new Set(all.map((r) => r.slice(4)))).toEqual(new Set(['07:45']));
  });

  it('keeps local wall-clock times across the spring-forward change (New York, 8 March 2026)', () => {
    const w: ScheduleWindow = {
      startTime: '01:00',
      endTime: '04:00',
      intervalMinutes: 30,
      weekdays: ['SUN'],
      timeZone: 'America/New_York',
    };
    // 02:00–02:59 does not exist that night; every other slot runs once, at local time.
    expect(runs(w, '2026-03-08T00:00:00Z', '2026-03-09T00:00:00Z')).toEqual([
      'Sun 01:00',
      'Sun 01:30',
      'Sun 03:00',
      'Sun 03:30',
      'Sun 04:00',
    ]);
  });

  it('keeps local wall-clock times across the fall-back change (New York, 1 November 2026)', () => {
    const w: ScheduleWindow = {
      startTime: '08:30',
      endTime: '09:30',
      intervalMinutes: 30,
      weekdays: ['SUN', 'MON'],
      timeZone: 'America/New_York',
    };
    // 08:30 New York is 12:30 UTC before the change and 13:30 UTC after it.
    const all = runs(w, '2026-10-31T00:00:00Z', '2026-11-03T00:00:00Z');
    expect(all).toEqual(['Sun 08:30', 'Sun 09:00', 'Sun 09:30', 'Mon 08:30', 'Mon 09:00', 'Mon 09:30']);
    expect(isDue(w, new Date('2026-11-02T13:30:00Z'))).toBe(true);
    expect(isDue(w, new Date('2026-11-02T12:30:00Z'))).toBe(false);
  });

  it('runs an overnight window across the spring-forward night in London (29 March 2026)', () => {
    // Prepare
    const w: ScheduleWindow = {
      startTime: '23:00',
      endTime: '03:00',
      intervalMinutes: 30,
      weekdays: ['SAT'],
      timeZone: 'Europe/London',
    };
    // Act
    const all = runs(w, '2026-03-28T00:00:00Z', '2026-03-30T00:00:00Z');
    // Assess: 01:00–01:59 does not exist that night; the window still ends at 03:00 local.
    expect(scheduleExpression(w)).toBe('cron(0/30 0,1,2,3,23 ? * SUN,SAT *)');
    expect(all).toEqual([
      'Sat 23:00',
      'Sat 23:30',
      'Sun 00:00',
      'Sun 00:30',
      'Sun 02:00',
      'Sun 02:30',
      'Sun 03:00',
    ]);
  });

  it('keeps an overnight window at local time after the fall-back change in London (25 October 2026)', () => {
    // Prepare
    const w: ScheduleWindow = {
      startTime: '22:00',
      endTime: '00:30',
      intervalMinutes: 30,
      weekdays: ['SAT', 'SUN'],
      timeZone: 'Europe/London',
    };
    // Act
    const all = runs(w, '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z');
    // Assess: Saturday's window is in BST (21:00 UTC), Sunday's in GMT (22:00 UTC).
    expect(all).toEqual([
      'Sat 22:00',
      'Sat 22:30',
      'Sat 23:00',
      'Sat 23:30',
      'Sun 00:00',
      'Sun 00:30',
      'Sun 22:00',
      'Sun 22:30',
      'Sun 23:00',
      'Sun 23:30',
      'Mon 00:00',
      'Mon 00:30',
    ]);
    expect(isDue(w, new Date('2026-10-24T21:00:00Z'))).toBe(true);
    expect(isDue(w, new Date('2026-10-25T22:00:00Z'))).toBe(true);
    expect(isDue(w, new Date('2026-10-25T21:00:00Z'))).toBe(false);
  });

  it('wraps an overnight window from Sunday into Monday', () => {
    // Prepare
    const w: ScheduleWindow = {
      startTime: '22:00',
      endTime: '02:00',
      intervalMinutes: 120,
      weekdays: ['SUN'],
      timeZone: 'UTC',
    };
    // Act
    const all = runs(w, '2026-06-14T00:00:00Z', '2026-06-16T00:00:00Z');
    // Assess
    expect(scheduleExpression(w)).toBe('cron(0 0,1,2,22,23 ? * SUN,MON *)');
    expect(all).toEqual(['Sun 22:00', 'Mon 00:00', 'Mon 02:00']);
  });

  it('runs an interval that does not divide the hour on its own grid from the start time', () => {
    // Prepare
    const w: ScheduleWindow = {
      startTime: '09:05',
      endTime: '10:00',
      intervalMinutes: 25,
      weekdays: ['WED'],
      timeZone: 'Asia/Kolkata',
    };
    // Act
    const all = runs(w, '2026-06-16T00:00:00Z', '2026-06-18T00:00:00Z');
    // Assess
    expect(all).toEqual(['Wed 09:05', 'Wed 09:30', 'Wed 09:55']);
  });

  it('refuses a time between runs and outside the window', () => {
    const w: ScheduleWindow = {
      startTime: '08:30',
      endTime: '17:15',
      intervalMinutes: 20,
      weekdays: ['MON'],
      timeZone: 'UTC',
    };
    expect(isDue(w, new Date('2026-06-15T08:40:00Z'))).toBe(false);
    expect(isDue(w, new Date('2026-06-15T17:30:00Z'))).toBe(false);
    expect(isDue(w, new Date('2026-06-15T08:50:00Z'))).toBe(true);
  });

  it('names schedules so an admin recognises the box, within Scheduler limits', () => {
    const name = scheduleName('studio-1', 'b1f0c', 'Sales & Bookings (Gmail)');
    expect(name).toBe('inbox-Sales-Bookings-Gmail-studio-1-b1f0c-2080711f4147c085');
    expect(name).toMatch(/^[0-9a-zA-Z_.-]{1,64}$/);
  });
});
