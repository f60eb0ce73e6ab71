/**
 * The `schedule` field of an email box: the seed's Email Inbox Processor settings (start time, end
 * time, how often, which days, whom to tell). Checked with the rest of the box, stored on it, and
 * deployed as one EventBridge Scheduler schedule per box (lib/schedules). The schedule view puts the
 * stored settings next to what Scheduler holds, so an admin's console edit shows as drift.
 */
import type { Stored } from '#lib/data/repositories';
import type { BoxSchedule, EmailBox } from '#lib/domain/model';
import { parseWindow, WEEKDAYS } from '#lib/domain/schedule';
import { definitionOf, driftOf, legacyNameOf, nameOf } from '#lib/schedules/definition';
import { ownedByOther, readDeployed } from '#lib/schedules/sync';
import type { SettingsContext } from './context.ts';
import type { ScheduleInput, ScheduleView } from './schemas.ts';
import type { Issues } from './validation.ts';

/** Rules between the schedule's fields (the formats are the schema's). */
export function checkSchedule(issues: Issues, s: ScheduleInput | null | undefined): void {
  if (!s) return;
  if (s.startTime === s.endTime)
    issues.add(
      'schedule.endTime',
      `must differ from startTime (${s.startTime}): the window would have no length. An end before the start runs past midnight, e.g. 22:00–02:00.`,
    );
  if (s.notifyOn === 'every-run' && !s.notifyEmail)
    issues.add('schedule.notifyEmail', 'is required when notifyOn is "every-run": give the address to tell.');
}

/** UTC when the studio has no company email settings yet. */
async function defaultTimeZone(ctx: SettingsContext, sid: string): Promise<string> {
  return (await ctx.repos.companyEmail.get(sid, 'company'))?.timeZone ?? 'UTC';
}

/**
 * The schedule to store: left out keeps the current one (PUT) or none (POST); null removes it; an
 * object replaces it, its time zone defaulting to the company's. Weekdays are stored once each, in
 * week order.
 */
export async function resolveSchedule(
  ctx: SettingsContext,
  sid: string,
  input: ScheduleInput | null | undefined,
  current: BoxSchedule | undefined,
): Promise<BoxSchedule | undefined> {
  if (input === undefined) return current;
  if (input === null) return undefined;
  const { timeZone, notifyEmail, ...rest } = input;
  return {
    ...rest,
    weekdays: WEEKDAYS.filter((d) => input.weekdays.includes(d)),
    timeZone: timeZone ?? (await defaultTimeZone(ctx, sid)),
    ...(notifyEmail ? { notifyEmail } : {}),
  };
}

/** GET /email-boxes/{id}/schedule: the stored settings, the deployed schedule, and their drift. */
export async function scheduleView(
  ctx: SettingsContext,
  sid: string,
  box: Stored<EmailBox>,
): Promise<ScheduleView> {
  const name = nameOf(sid, box);
  const stored = box.schedule ? definitionOf(sid, box, box.schedule) : undefined;
  const legacy = legacyNameOf(sid, box);
  const found =
    (await readDeployed(ctx.scheduler, name)) ??
    (legacy ? await readDeployed(ctx.scheduler, legacy) : undefined);
  // A schedule under this name that polls another box (of this studio or another) is not this
  // box's: it is neither shown nor compared.
  const deployed = found && !ownedByOther(found, { studioId: sid, boxId: box.id }) ? found : undefined;
  return {
    stored: box.schedule && stored ? { ...box.schedule, name, expression: stored.expression } : null,
    deployed: deployed
      ? {
          name: deployed.name,
          enabled: deployed.enabled,
          expression: deployed.expression,
          timeZone: deployed.timeZone,
          description: deployed.description,
          // Read as the poller reads it: a window it would not honour is not shown as one.
          window: parseWindow(deployed.input.window),
          input: deployed.input,
        }
      : null,
    drift: driftOf(stored, deployed),
  };
}
