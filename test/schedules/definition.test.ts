import { describe, expect, it, vi } from 'vitest';
import { InProcessScheduler, substituteContext } from '#lib/adapters/local/scheduler';
import type { BoxSchedule } from '#lib/domain/model';
import { parseWindow, type ScheduleWindow, scheduledRunCheck } from '#lib/domain/schedule';
import {
  definitionOf,
  deployedSettingsChanged,
  driftOf,
  nameOf,
  planScheduleOps,
  SCHEDULED_TIME,
} from '#lib/schedules/definition';
import { ScheduleNameTakenError, withScheduleOps } from '#lib/schedules/sync';

const schedule: BoxSchedule = {
  enabled: true,
  startTime: '08:30',
  endTime: '17:15',
  intervalMinutes: 20,
  weekdays: ['MON', 'WED', 'FRI'],
  timeZone: 'Europe/London',
  notifyEmail: 'owner@lumen.test',
  notifyOn: 'failures',
};
const box = { id: 'sales', description: 'Sales & Bookings', schedule };

describe('the schedule definition of a box', () => {
  it('names the box, sets the expression and zone, and carries the window and the scheduled-time placeholder', () => {
    // Act
    const def = definitionOf('studio-1', box, schedule);
    // Assess
    expect(def).toEqual({
      name: 'inbox-Sales-Bookings-studio-1-sales-19cc593c1405f22e',
      description: expect.stringContaining('"Sales & Bookings"'),
      expression: 'cron(10/20 8,9,10,11,12,13,14,15,16,17 ? * MON,WED,FRI *)',
      timeZone: 'Europe/London',
      enabled: true,
      input: {
        studioId: 'studio-1',
        boxId: 'sales',
        window: {
          startTime: '08:30',
          endTime: '17:15',
          intervalMinutes: 20,
          weekdays: ['MON', 'WED', 'FRI'],
          timeZone: 'Europe/London',
        },
        scheduledTime: '<aws.scheduler.scheduled-time>',
      },
    });
  });

  it('keeps a disabled schedule as a DISABLED definition', () => {
    // Act
    const def = definitionOf('studio-1', box, { ...schedule, enabled: false });
    // Assess
    expect(def.enabled).toBe(false);
  });

  it('counts only deployed settings as a change, not whom to notify or the order of days', () => {
    // Assess
    expect(
      deployedSettingsChanged(schedule, { ...schedule, notifyEmail: 'x@y.test', notifyOn: 'every-run' }),
    ).toBe(false);
    expect(deployedSettingsChanged(schedule, { ...schedule, weekdays: ['FRI', 'MON', 'WED'] })).toBe(false);
    expect(deployedSettingsChanged(schedule, { ...schedule, endTime: '17:30' })).toBe(true);
    expect(deployedSettingsChanged(schedule, { ...schedule, enabled: false })).toBe(true);
    expect(deployedSettingsChanged(schedule, undefined)).toBe(true);
    expect(deployedSettingsChanged(undefined, undefined)).toBe(false);
  });
});

describe('the schedule name of a box', () => {
  const studio = '5f0c2a7e-91d4-4b6e-8a3f-2c9d1e7b4a60';
  const allowed = /^[0-9A-Za-z_.-]{1,64}$/;

  it('reads inbox-<description>-<studio>-<box>-<digest> when the ids fit whole', () => {
    // Assess
    expect(nameOf('studio-1', box)).toBe('inbox-Sales-Bookings-studio-1-sales-19cc593c1405f22e');
  });

  it('never gives two boxes one name when long ids would be cut to 64 characters', () => {
    // Prepare: a UUID studio, UUID boxes and descriptions that agree in their first 24 characters.
    const a = { id: '0b7e4c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b', description: 'Photography studio inbox - Gmail' };
    const b = {
      id: '0b7e4c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5c',
      description: 'Photography studio inbox - Outlook',
    };
    // Act
    const names = [nameOf(studio, a), nameOf(studio, b), nameOf(studio, { ...a, id: 'sales' })];
    // Assess
    expect(new Set(names).size).toBe(3);
    for (const name of names) {
      expect(name).toMatch(allowed);
      expect(name).toMatch(/^inbox-Photography-studio-inbox-/);
    }
    expect(nameOf(studio, a)).toBe(nameOf(studio, { ...a, description: 'Photography studio inbox - Gmail' }));
  });

  it('ends in a digest when an id has characters Scheduler refuses, so "a:b" and "a-b" differ', () => {
    // Act
    const colon = nameOf('a:b', { id: 'sales', description: 'Sales' });
    const dash = nameOf('a-b', { id: 'sales', description: 'Sales' });
    // Assess
    expect(dash).toBe('inbox-Sales-a-b-sales-64f7c14d0b6a7e5f');
    expect(colon).toMatch(allowed);
    expect(colon).not.toBe(dash);
  });
});

describe('writing schedules around the box record', () => {
  const owner = { studioId: 'studio-1', boxId: 'sales' };
  const log = { info: () => {}, warn: () => {} };
  /** A schedule under the same name that polls another box (two boxes whose names came out the same). */
  const foreign = () => {
    const def = definitionOf('studio-1', box, schedule);
    return { ...def, input: { ...def.input, studioId: 'studio', boxId: '1-sales' } };
  };

  it("refuses to overwrite another box's schedule (409, description), writing nothing", async () => {
    // Prepare
    const scheduler = new InProcessScheduler();
    await scheduler.put(foreign());
    const write = vi.fn(async () => 'saved');
    // Act
    const saving = withScheduleOps(
      scheduler,
      log,
      owner,
      planScheduleOps({ studioId: 'studio-1', after: box }),
      write,
    );
    // Assess
    await expect(saving).rejects.toBeInstanceOf(ScheduleNameTakenError);
    await expect(saving).rejects.toMatchObject({ status: 409, field: 'description' });
    expect(write).not.toHaveBeenCalled();
    expect(scheduler.list()).toEqual([foreign()]);
  });

  it("leaves another box's schedule alone when deleting, and still writes the record", async () => {
    // Prepare
    const scheduler = new InProcessScheduler();
    await scheduler.put(foreign());
    // Act
    const result = await withScheduleOps(
      scheduler,
      log,
      owner,
      planScheduleOps({ studioId: 'studio-1', before: box }),
      async () => 'deleted',
    );
    // Assess
    expect(result).toBe('deleted');
    expect(scheduler.list()).toEqual([foreign()]);
  });

  it("treats a schedule whose input an admin broke in the console as the box's own", async () => {
    // Prepare
    const scheduler = new InProcessScheduler();
    await scheduler.put({ ...definitionOf('studio-1', box, schedule), input: { raw: 'not json' } });
    // Act
    await withScheduleOps(
      scheduler,
      log,
      owner,
      planScheduleOps({ studioId: 'studio-1', before: box, after: box, force: true }),
      async () => 'saved',
    );
    // Assess
    expect(scheduler.list()).toEqual([definitionOf('studio-1', box, schedule)]);
  });
});

describe('what a box save writes to the scheduler', () => {
  const name = 'inbox-Sales-Bookings-studio-1-sales-19cc593c1405f22e';
  /** Where the schedule was before every name carried a digest: removed on every write (a no-op when absent). */
  const legacy = { kind: 'delete', name: 'inbox-Sales-Bookings-studio-1-sales' };

  it('creates the schedule of a new box, and nothing for a box without one', () => {
    // Act
    const withSchedule = planScheduleOps({ studioId: 'studio-1', after: box });
    const without = planScheduleOps({ studioId: 'studio-1', after: { id: 'sales', description: 'Sales' } });
    // Assess
    expect(withSchedule).toEqual([{ kind: 'put', def: definitionOf('studio-1', box, schedule) }]);
    expect(without).toEqual([]);
  });

  it('writes nothing when the deployed settings did not change, so a console edit survives', () => {
    // Act
    const ops = planScheduleOps({
      studioId: 'studio-1',
      before: box,
      after: { ...box, schedule: { ...schedule, notifyOn: 'every-run' } },
    });
    // Assess
    expect(ops).toEqual([]);
  });

  it('writes the settings again when asked to (force), overwriting a console edit', () => {
    // Act
    const ops = planScheduleOps({ studioId: 'studio-1', before: box, after: box, force: true });
    // Assess
    expect(ops).toEqual([{ kind: 'put', def: definitionOf('studio-1', box, schedule) }, legacy]);
  });

  it('deletes the schedule when the box loses it or is deleted', () => {
    // Act
    const removed = planScheduleOps({
      studioId: 'studio-1',
      before: box,
      after: { id: 'sales', description: 'Sales & Bookings' },
    });
    const deleted = planScheduleOps({ studioId: 'studio-1', before: box });
    // Assess
    expect(removed).toEqual([{ kind: 'delete', name }, legacy]);
    expect(deleted).toEqual([{ kind: 'delete', name }, legacy]);
  });

  it('moves the deployed schedule, console edit included, when the box is renamed', () => {
    // Prepare
    const deployed = {
      ...definitionOf('studio-1', box, schedule),
      expression: 'cron(0 9 ? * MON *)',
    };
    // Act
    const ops = planScheduleOps({
      studioId: 'studio-1',
      before: box,
      after: { ...box, description: 'Front desk' },
      deployedBefore: deployed,
    });
    // Assess
    expect(ops).toEqual([
      {
        kind: 'put',
        def: expect.objectContaining({
          name: 'inbox-Front-desk-studio-1-sales-19cc593c1405f22e',
          expression: 'cron(0 9 ? * MON *)',
          description: expect.stringContaining('"Front desk"'),
        }),
      },
      { kind: 'delete', name },
      legacy,
    ]);
  });
});

describe('drift between the settings and the deployed schedule', () => {
  const stored = definitionOf('studio-1', box, schedule);

  it('is empty when they agree', () => {
    // Assess
    expect(driftOf(stored, structuredClone(stored))).toEqual([]);
    expect(driftOf(undefined, undefined)).toEqual([]);
  });

  it('names each field an admin changed in the console', () => {
    // Prepare
    const deployed = structuredClone(stored);
    deployed.enabled = false;
    deployed.expression = 'cron(0 9 ? * MON *)';
    (deployed.input.window as { endTime: string }).endTime = '12:00';
    (deployed.input.window as { weekdays: string[] }).weekdays = ['FRI', 'MON'];
    // Act
    const drift = driftOf(stored, deployed);
    // Assess
    expect(drift).toEqual([
      { field: 'enabled', stored: true, deployed: false },
      { field: 'expression', stored: stored.expression, deployed: 'cron(0 9 ? * MON *)' },
      { field: 'window.endTime', stored: '17:15', deployed: '12:00' },
      { field: 'window.weekdays', stored: ['MON', 'WED', 'FRI'], deployed: ['MON', 'FRI'] },
    ]);
  });

  it('shows a missing schedule on either side, and a window that is no window', () => {
    // Prepare
    const broken = { ...structuredClone(stored), input: { ...stored.input, window: 'always' } };
    // Assess
    expect(driftOf(stored, undefined)).toEqual([{ field: 'schedule', stored: stored.name, deployed: null }]);
    expect(driftOf(undefined, stored)).toEqual([{ field: 'schedule', stored: null, deployed: stored.name }]);
    expect(driftOf(stored, broken)).toEqual([
      { field: 'window', stored: stored.input.window, deployed: 'always' },
    ]);
  });
});

describe("the poller's check of a scheduled invocation", () => {
  const window = definitionOf('studio-1', box, schedule).input.window as ScheduleWindow;
  const monday0830 = '2026-06-15T07:30:00Z'; // 08:30 in London (BST)

  it('polls at a scheduled minute inside the window and skips one outside it', () => {
    // Act
    const inside = scheduledRunCheck({ window, scheduledTime: monday0830 }, schedule, new Date());
    const outside = scheduledRunCheck(
      { window, scheduledTime: '2026-06-15T07:10:00Z' },
      schedule,
      new Date(),
    );
    // Assess
    expect(inside).toMatchObject({ due: true });
    expect(outside).toEqual({
      due: false,
      reason: 'Outside the schedule window at 2026-06-15T07:10:00.000Z.',
    });
  });

  it('honours the window in the input over the stored one (a console edit)', () => {
    // Prepare
    const edited = { ...window, startTime: '07:00' };
    const at = '2026-06-15T06:00:00Z'; // 07:00 in London
    // Act
    const check = scheduledRunCheck({ window: edited, scheduledTime: at }, schedule, new Date());
    // Assess
    expect(check).toMatchObject({ due: true, window: edited });
  });

  it('falls back to the stored window when the input has none or a broken one, and to now without a scheduled time', () => {
    // Act
    const broken = scheduledRunCheck(
      { window: { ...window, timeZone: 'Mars/Olympus' }, scheduledTime: '2026-06-15T07:10:00Z' },
      schedule,
      new Date(),
    );
    const placeholder = scheduledRunCheck(
      { window, scheduledTime: SCHEDULED_TIME },
      schedule,
      new Date(monday0830),
    );
    const brokenInside = scheduledRunCheck(
      { window: { ...window, timeZone: 'Mars/Olympus' }, scheduledTime: monday0830 },
      schedule,
      new Date(),
    );
    // Assess
    expect(broken).toMatchObject({ due: false });
    expect(brokenInside).toMatchObject({ due: true, window });
    expect(placeholder).toMatchObject({ due: true, at: new Date(monday0830) });
  });

  it('never polls a box whose stored schedule is disabled', () => {
    // Act
    const check = scheduledRunCheck(
      { window, scheduledTime: monday0830 },
      { ...schedule, enabled: false },
      new Date(),
    );
    // Assess
    expect(check).toEqual({ due: false, reason: 'The box schedule is disabled.' });
  });

  it('reads only real windows from an input', () => {
    // Assess
    expect(parseWindow(window)).toEqual(window);
    expect(parseWindow({ ...window, intervalMinutes: 0 })).toBeUndefined();
    expect(parseWindow({ ...window, weekdays: [] })).toBeUndefined();
    expect(parseWindow({ ...window, startTime: '8:30' })).toBeUndefined();
    expect(parseWindow(null)).toBeUndefined();
  });
});

describe("the in-process scheduler's context attributes", () => {
  it("replaces the scheduled-time placeholder with the tick's minute, as Scheduler does", () => {
    // Prepare
    const def = definitionOf('studio-1', box, schedule);
    // Act
    const input = substituteContext(def, new Date('2026-06-15T07:30:42.517Z'), 'exec-1');
    // Assess
    expect(input).toEqual({ ...def.input, scheduledTime: '2026-06-15T07:30:00Z' });
    expect(def.input.scheduledTime).toBe(SCHEDULED_TIME);
  });
});
