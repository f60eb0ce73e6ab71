/**
 * The `schedule` field of an email box through the settings API, with the in-process scheduler
 * standing in for EventBridge Scheduler: validation, the definitions written on create, update and
 * delete, the write order when either side fails, and drift after a "console edit".
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { definitionOf, nameOf } from '#lib/schedules/definition';
import type { Pop3Probe } from '#lib/settings/connection-test';
import { fieldsOf, messageFor, type SettingsHarness, settingsHarness } from './harness.ts';

const probe: Pop3Probe = async () => ({
  ok: true,
  message: 'Logged in',
  greeting: '+OK',
  messageCount: 0,
  ms: 1,
});

let h: SettingsHarness;
beforeAll(async () => {
  h = await settingsHarness({ probePop3: probe });
});
afterAll(() => h.output.restore());

const sid = 'studio-1';
const schedule = (over: Record<string, unknown> = {}) => ({
  startTime: '08:30',
  endTime: '17:15',
  intervalMinutes: 20,
  weekdays: ['MON', 'WED', 'FRI'],
  timeZone: 'Europe/London',
  notifyEmail: 'owner@lumen.test',
  ...over,
});
const box = (over: Record<string, unknown> = {}) => ({
  description: 'Sales',
  connection: {
    server: 'pop.lumen.test',
    emailAddress: 'sales@lumen.test',
    userName: 'sales@lumen.test',
    password: 'pw-Heron-5521',
  },
  ...over,
});
/** The box as a PUT body (password kept). */
const putBody = (over: Record<string, unknown> = {}) => {
  const { connection, ...rest } = box(over);
  const { password: _p, ...kept } = connection;
  return { ...rest, connection: kept };
};

const definitions = () => h.d.scheduler.list();
/** The definition named `name`, or `name` with its digest (`inbox-Sales-studio-1-sales-<digest>`). */
const definition = (name: string) =>
  definitions().find((d) => d.name === name || new RegExp(`^${name}-[0-9a-f]{16}$`).test(d.name));

describe('POST /email-boxes with a schedule', () => {
  it('stores the schedule and creates its definition: name, expression, zone, window input with the scheduled-time placeholder', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box({ id: 'sales', schedule: schedule() }) });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.schedule).toEqual({ enabled: true, notifyOn: 'failures', ...schedule() });
    const stored = await h.d.repos.emailBoxes.require(sid, 'sales');
    expect(definition('inbox-Sales-studio-1-sales')).toEqual(definitionOf(sid, stored, stored.schedule!));
    expect(definition('inbox-Sales-studio-1-sales')).toMatchObject({
      expression: 'cron(10/20 8,9,10,11,12,13,14,15,16,17 ? * MON,WED,FRI *)',
      timeZone: 'Europe/London',
      enabled: true,
      input: { studioId: sid, boxId: 'sales', scheduledTime: '<aws.scheduler.scheduled-time>' },
    });
  });

  it('takes UTC when neither the schedule nor the company gives a zone, else the company zone', async () => {
    // Act
    const before = await h.call('POST', '/email-boxes?verify=false', {
      body: box({ id: 'utc', description: 'Utc', schedule: schedule({ timeZone: undefined }) }),
    });
    await h.call('PUT', '/settings/company/email', {
      body: {
        studioName: 'Lumen',
        displayName: 'Lumen',
        emailAddress: 'hello@lumen.test',
        transport: { method: 'ses' },
        timeZone: 'America/Denver',
      },
    });
    const after = await h.call('POST', '/email-boxes?verify=false', {
      body: box({ id: 'denver', description: 'Denver', schedule: schedule({ timeZone: undefined }) }),
    });
    // Assess
    expect(before.body.schedule.timeZone).toBe('UTC');
    expect(after.body.schedule.timeZone).toBe('America/Denver');
    expect(definition('inbox-Denver-studio-1-denver')?.timeZone).toBe('America/Denver');
  });

  it('accepts an overnight window (22:00–02:00), a single day and a once-a-day interval', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes?verify=false', {
      body: box({
        id: 'night',
        description: 'Night',
        schedule: schedule({
          startTime: '22:00',
          endTime: '02:00',
          intervalMinutes: 1440,
          weekdays: ['SAT'],
        }),
      }),
    });
    // Assess
    expect(res.status).toBe(201);
    expect(definition('inbox-Night-studio-1-night')?.expression).toBe('cron(0 22 ? * SAT *)');
  });

  it('stores a disabled schedule as a DISABLED definition, days once each in week order', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes?verify=false', {
      body: box({
        id: 'off',
        description: 'Off',
        schedule: schedule({ enabled: false, weekdays: ['FRI', 'MON', 'FRI'] }),
      }),
    });
    // Assess
    expect(res.body.schedule.weekdays).toEqual(['MON', 'FRI']);
    expect(definition('inbox-Off-studio-1-off')?.enabled).toBe(false);
  });

  it('creates no definition for a box without a schedule', async () => {
    // Prepare
    const count = definitions().length;
    // Act
    const res = await h.call('POST', '/email-boxes?verify=false', {
      body: box({ id: 'plain', description: 'Plain' }),
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.schedule).toBeUndefined();
    expect(definitions()).toHaveLength(count);
  });
});

describe('schedule validation', () => {
  it.each([
    ['schedule.startTime', { startTime: '8:30' }, /HH:MM/],
    ['schedule.endTime', { endTime: '24:00' }, /HH:MM/],
    ['schedule.endTime', { endTime: '08:30' }, /must differ from startTime \(08:30\).*past midnight/],
    ['schedule.intervalMinutes', { intervalMinutes: 0 }, /from 1 to 1440/],
    ['schedule.intervalMinutes', { intervalMinutes: 1441 }, /from 1 to 1440/],
    ['schedule.intervalMinutes', { intervalMinutes: 2.5 }, /whole number of minutes/],
    ['schedule.weekdays', { weekdays: [] }, /at least one day/],
    ['schedule.weekdays.0', { weekdays: ['MONDAY'] }, /"MON", "TUE"/],
    ['schedule.timeZone', { timeZone: 'Mars/Olympus' }, /IANA time zone/],
    ['schedule.notifyEmail', { notifyEmail: 'owner' }, /email address/],
    ['schedule.notifyOn', { notifyOn: 'always' }, /"failures", "every-run"/],
    [
      'schedule.notifyEmail',
      { notifyEmail: undefined, notifyOn: 'every-run' },
      /required when notifyOn is "every-run"/,
    ],
    ['schedule.colour', { colour: 'blue' }, /not a field here/],
  ])('names %s and writes nothing', async (field, over, message) => {
    // Prepare
    const count = definitions().length;
    const secrets = h.secretCount();
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box({ id: 'bad', schedule: schedule(over) }) });
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toContain(field);
    expect(messageFor(res, field)).toMatch(message);
    expect(definitions()).toHaveLength(count);
    expect(h.secretCount()).toBe(secrets);
    expect(await h.d.repos.emailBoxes.get(sid, 'bad')).toBeUndefined();
  });

  it('validates the schedule on PUT too, leaving box and definition as they were', async () => {
    // Prepare
    const before = definition('inbox-Sales-studio-1-sales');
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', {
      body: putBody({ schedule: schedule({ weekdays: [] }) }),
    });
    // Assess
    expect(res.status).toBe(400);
    expect(definition('inbox-Sales-studio-1-sales')).toEqual(before);
  });
});

describe('PUT /email-boxes/{id} and the schedule', () => {
  it('updates the definition when the schedule settings change', async () => {
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', {
      body: putBody({ schedule: schedule({ endTime: '12:00', weekdays: ['TUE'] }) }),
    });
    // Assess
    expect(res.status).toBe(200);
    expect(definition('inbox-Sales-studio-1-sales')).toMatchObject({
      expression: 'cron(10/20 8,9,10,11,12 ? * TUE *)',
      input: { window: { endTime: '12:00', weekdays: ['TUE'] } },
    });
  });

  it('keeps the stored schedule and definition when the body leaves schedule out', async () => {
    // Prepare
    const before = definition('inbox-Sales-studio-1-sales');
    const put = vi.spyOn(h.d.scheduler, 'put');
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', { body: putBody({ autoCreateTask: false }) });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.schedule).toMatchObject({ endTime: '12:00', weekdays: ['TUE'] });
    expect(put).not.toHaveBeenCalled();
    expect(definition('inbox-Sales-studio-1-sales')).toEqual(before);
    put.mockRestore();
  });

  it('does not write the definition when only whom to notify changes', async () => {
    // Prepare
    const put = vi.spyOn(h.d.scheduler, 'put');
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', {
      body: putBody({
        schedule: schedule({
          endTime: '12:00',
          weekdays: ['TUE'],
          notifyEmail: 'desk@lumen.test',
          notifyOn: 'every-run',
        }),
      }),
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.schedule).toMatchObject({ notifyEmail: 'desk@lumen.test', notifyOn: 'every-run' });
    expect(put).not.toHaveBeenCalled();
    put.mockRestore();
  });

  it('disables the definition with enabled=false and removes it with schedule=null', async () => {
    // Act
    await h.call('PUT', '/email-boxes/sales', {
      body: putBody({ schedule: schedule({ enabled: false, endTime: '12:00', weekdays: ['TUE'] }) }),
    });
    const disabled = definition('inbox-Sales-studio-1-sales');
    const removed = await h.call('PUT', '/email-boxes/sales', { body: putBody({ schedule: null }) });
    // Assess
    expect(disabled?.enabled).toBe(false);
    expect(removed.status).toBe(200);
    expect(removed.body.schedule).toBeUndefined();
    expect(definition('inbox-Sales-studio-1-sales')).toBeUndefined();
  });

  it('moves the definition to the new name when the box is renamed', async () => {
    // Prepare
    await h.call('PUT', '/email-boxes/sales', { body: putBody({ schedule: schedule() }) });
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', {
      body: putBody({ description: 'Front desk', schedule: schedule() }),
    });
    // Assess
    expect(res.status).toBe(200);
    expect(definition('inbox-Sales-studio-1-sales')).toBeUndefined();
    expect(definition('inbox-Front-desk-studio-1-sales')).toMatchObject({
      description: expect.stringContaining('"Front desk"'),
      input: { boxId: 'sales' },
    });
  });
});

describe('console edits and drift', () => {
  const name = nameOf(sid, { id: 'sales', description: 'Front desk' });

  it('shows the stored settings, the deployed schedule and no drift when they agree', async () => {
    // Act
    const res = await h.call('GET', '/email-boxes/sales/schedule');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.stored).toMatchObject({
      ...schedule(),
      name,
      expression: 'cron(10/20 8,9,10,11,12,13,14,15,16,17 ? * MON,WED,FRI *)',
    });
    expect(res.body.deployed).toMatchObject({ name, enabled: true, timeZone: 'Europe/London' });
    expect(res.body.deployed.window).toEqual(res.body.deployed.input.window);
    expect(res.body.drift).toEqual([]);
  });

  it('shows an edit made in the scheduler as drift, and a box save that leaves the schedule alone keeps it', async () => {
    // Prepare: an admin disables the schedule and narrows the window in the console.
    const deployed = definition(name)!;
    await h.d.scheduler.put({
      ...deployed,
      enabled: false,
      input: { ...deployed.input, window: { ...(deployed.input.window as object), endTime: '10:00' } },
    });
    // Act
    await h.call('PUT', '/email-boxes/sales', {
      body: putBody({ description: 'Front desk', leaveOnServer: false }),
    });
    const res = await h.call('GET', '/email-boxes/sales/schedule');
    // Assess
    expect(definition(name)?.enabled).toBe(false);
    expect(res.body.drift).toEqual([
      { field: 'enabled', stored: true, deployed: false },
      { field: 'window.endTime', stored: '17:15', deployed: '10:00' },
    ]);
  });

  it('writes the stored settings back with ?syncSchedule=true', async () => {
    // Act
    const res = await h.call('PUT', '/email-boxes/sales?syncSchedule=true', {
      body: putBody({ description: 'Front desk' }),
    });
    const view = await h.call('GET', '/email-boxes/sales/schedule');
    // Assess
    expect(res.status).toBe(200);
    expect(view.body.drift).toEqual([]);
    expect(definition(name)?.enabled).toBe(true);
  });

  it('shows no window for a console edit the poller would not honour, and names it in drift', async () => {
    // Prepare
    const deployed = definition(name)!;
    const broken = { ...(deployed.input.window as object), timeZone: 'Mars/Olympus' };
    await h.d.scheduler.put({ ...deployed, input: { ...deployed.input, window: broken } });
    // Act
    const res = await h.call('GET', '/email-boxes/sales/schedule');
    // Assess
    expect(res.body.deployed.window).toBeUndefined();
    expect(res.body.deployed.input.window).toEqual(broken);
    expect(res.body.drift).toEqual([{ field: 'window', stored: deployed.input.window, deployed: broken }]);
    await h.d.scheduler.put(deployed);
  });

  it('shows a schedule deleted in the console as deployed: null', async () => {
    // Prepare
    const deployed = definition(name)!;
    await h.d.scheduler.delete(name);
    // Act
    const res = await h.call('GET', '/email-boxes/sales/schedule');
    // Assess
    expect(res.body.deployed).toBeNull();
    expect(res.body.drift).toEqual([{ field: 'schedule', stored: name, deployed: null }]);
    await h.d.scheduler.put(deployed);
  });

  it('answers 502 when the scheduler cannot be read', async () => {
    // Prepare
    vi.spyOn(h.d.scheduler, 'get').mockRejectedValueOnce(
      Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }),
    );
    // Act
    const res = await h.call('GET', '/email-boxes/sales/schedule');
    // Assess
    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({ code: 'schedule_read_failed', field: 'schedule' });
  });
});

describe('write order: nothing half-written', () => {
  const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });

  it('fails a create with 502 naming the schedule when the scheduler refuses, leaving no box and no secret', async () => {
    // Prepare
    const secrets = h.secretCount();
    vi.spyOn(h.d.scheduler, 'put').mockRejectedValueOnce(throttled());
    // Act
    const res = await h.call('POST', '/email-boxes', {
      body: box({ id: 'refused', description: 'Refused', schedule: schedule() }),
    });
    // Assess
    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({ code: 'schedule_write_failed', field: 'schedule' });
    expect(res.body.error.message).toMatch(
      /"inbox-Refused-studio-1-refused-[0-9a-f]{16}".*ThrottlingException: Rate exceeded.*Nothing was changed/,
    );
    expect(await h.d.repos.emailBoxes.get(sid, 'refused')).toBeUndefined();
    expect(h.secretCount()).toBe(secrets);
    expect(definition('inbox-Refused-studio-1-refused')).toBeUndefined();
  });

  it('fails an update with 502 and leaves the box record as it was', async () => {
    // Prepare
    const before = await h.d.repos.emailBoxes.require(sid, 'sales');
    const deployed = definition('inbox-Front-desk-studio-1-sales');
    vi.spyOn(h.d.scheduler, 'put').mockRejectedValueOnce(throttled());
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', {
      body: putBody({ description: 'Front desk', schedule: schedule({ intervalMinutes: 5 }) }),
    });
    // Assess
    expect(res.status).toBe(502);
    expect(await h.d.repos.emailBoxes.require(sid, 'sales')).toEqual(before);
    expect(definition('inbox-Front-desk-studio-1-sales')).toEqual(deployed);
  });

  it('removes the new definition when the box cannot be written after it', async () => {
    // Prepare
    vi.spyOn(h.d.repos.emailBoxes, 'create').mockRejectedValueOnce(new Error('DynamoDB is down'));
    // Act
    const res = await h.call('POST', '/email-boxes', {
      body: box({ id: 'lost', description: 'Lost', schedule: schedule() }),
    });
    // Assess
    expect(res.status).toBe(500);
    expect(definition('inbox-Lost-studio-1-lost')).toBeUndefined();
  });

  it('puts the previous definition back when the box cannot be written after it', async () => {
    // Prepare
    const deployed = definition('inbox-Front-desk-studio-1-sales');
    vi.spyOn(h.d.repos.emailBoxes, 'replace').mockRejectedValueOnce(new Error('DynamoDB is down'));
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', {
      body: putBody({ description: 'Front desk', schedule: schedule({ intervalMinutes: 5 }) }),
    });
    // Assess
    expect(res.status).toBe(500);
    expect(definition('inbox-Front-desk-studio-1-sales')).toEqual(deployed);
  });

  it('puts both names back when a rename cannot be written', async () => {
    // Prepare
    const deployed = definition('inbox-Front-desk-studio-1-sales');
    vi.spyOn(h.d.repos.emailBoxes, 'replace').mockRejectedValueOnce(new Error('DynamoDB is down'));
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', {
      body: putBody({ description: 'Lobby', schedule: schedule() }),
    });
    // Assess
    expect(res.status).toBe(500);
    expect(definition('inbox-Front-desk-studio-1-sales')).toEqual(deployed);
    expect(definition('inbox-Lobby-studio-1-sales')).toBeUndefined();
  });

  it('refuses a stale version with 409 before touching the schedule', async () => {
    // Prepare
    const put = vi.spyOn(h.d.scheduler, 'put');
    // Act
    const res = await h.call('PUT', '/email-boxes/sales', {
      body: {
        ...putBody({ description: 'Front desk', schedule: schedule({ intervalMinutes: 5 }) }),
        version: 1,
      },
    });
    // Assess
    expect(res.status).toBe(409);
    expect(put).not.toHaveBeenCalled();
    put.mockRestore();
  });

  it('keeps box and schedule when the schedule cannot be deleted, and the schedule when the box cannot be', async () => {
    // Prepare
    const deployed = definition('inbox-Front-desk-studio-1-sales');
    vi.spyOn(h.d.scheduler, 'delete').mockRejectedValueOnce(throttled());
    // Act
    const refused = await h.call('DELETE', '/email-boxes/sales');
    vi.spyOn(h.d.repos.emailBoxes, 'delete').mockRejectedValueOnce(new Error('DynamoDB is down'));
    const failed = await h.call('DELETE', '/email-boxes/sales');
    // Assess
    expect(refused.status).toBe(502);
    expect(failed.status).toBe(500);
    expect(await h.d.repos.emailBoxes.get(sid, 'sales')).toBeDefined();
    expect(definition('inbox-Front-desk-studio-1-sales')).toEqual(deployed);
  });
});

describe('DELETE /email-boxes/{id} and the schedule', () => {
  it('deletes the schedule with the box', async () => {
    // Act
    const res = await h.call('DELETE', '/email-boxes/sales');
    // Assess
    expect(res.status).toBe(204);
    expect(definitions().some((d) => d.input.boxId === 'sales')).toBe(false);
  });
});

describe('two boxes whose readable schedule names are the same', () => {
  // Studio "studio", box "1-desk" and studio "studio-1", box "desk" both read inbox-Desk-studio-1-desk;
  // the digest of studio and box tells them apart.
  const otherStudio = 'dev:studio:admin-7:admins';

  it('gives each its own schedule, so neither takes over the other', async () => {
    // Act
    const first = await h.call('POST', '/email-boxes?verify=false', {
      token: otherStudio,
      body: box({ id: '1-desk', description: 'Desk', schedule: schedule() }),
    });
    const second = await h.call('POST', '/email-boxes?verify=false', {
      body: box({ id: 'desk', description: 'Desk', schedule: schedule({ startTime: '07:00' }) }),
    });
    // Assess
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    const desks = definitions().filter((d) => d.name.startsWith('inbox-Desk-studio-1-desk-'));
    expect(
      desks.map((d) => d.input).sort((a, b) => String(a.studioId).localeCompare(String(b.studioId))),
    ).toEqual([
      expect.objectContaining({ studioId: 'studio', boxId: '1-desk' }),
      expect.objectContaining({ studioId: sid, boxId: 'desk' }),
    ]);
  });
});
