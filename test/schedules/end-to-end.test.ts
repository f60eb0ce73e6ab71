/**
 * Schedules end to end, wired as `npm start` wires them (local/schedules.ts): a box saved through
 * the settings API with a schedule; the in-process scheduler ticking at chosen minutes and invoking
 * the real inbox-poll handler with the substituted input; the poll against a real Dovecot; the
 * outcome on the in-process bus to the real notify handler; the email in the local SES.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeFunctions } from '#functions/compose';
import { settingsRoutes } from '#functions/settings/routes';
import type { ScheduleTarget } from '#lib/adapters/local/scheduler';
import { sesTransport } from '#lib/adapters/mail';
import { POLL_EVENT_SOURCE } from '#lib/inbox/events';
import { type Invoke, pollTarget, restoreSchedules, subscribeNotify } from '#local/schedules';
import { type SesLocal, startSesLocal } from '#local/ses';
import { unreachableProbe } from '#test/settings/harness';
import { apiClient, type TestDeps, testDeps } from '#test/support/api';
import { type Dovecot, startDovecot, uniqueUser } from '#test/support/dovecot';
import { rawMail } from '#test/support/mail';

const sid = 'studio-1';
let d: TestDeps;
let dovecot: Dovecot;
let ses: SesLocal;
let call: ReturnType<typeof apiClient>;
let target: ScheduleTarget;

beforeAll(async () => {
  [dovecot, ses] = await Promise.all([startDovecot(), startSesLocal()]);
  const client = new SESv2Client({
    endpoint: ses.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const transport = sesTransport(client);
  d = await testDeps({ ses: () => transport });
  // The poller trusts the test server's certificate as a deployment would: through POP3_CA_FILE.
  const ca = join(d.dir, 'dovecot-ca.pem');
  writeFileSync(ca, dovecot.caCertPem);
  process.env.POP3_CA_FILE = ca;
  // Every function from the one composition root, as npm start builds them.
  const fns = composeFunctions(d, { settings: { probePop3: unreachableProbe } });
  target = pollTarget(fns['inbox-poll'] as unknown as Invoke);
  subscribeNotify(d.events, fns.notify as unknown as Invoke, d.config.region);
  call = apiClient(fns.settings, settingsRoutes, 'settings');
});

afterAll(async () => {
  delete process.env.POP3_CA_FILE;
  await Promise.all([dovecot?.stop(), ses?.stop()]);
});

/** Monday 15 June 2026, London (BST, UTC+1). */
const london = (hhmm: string, day = 15) => new Date(`2026-06-${day}T${hhmm}:00+01:00`);

interface StoredEmail {
  subject: string;
  destination: { to: string[] };
  body: { text?: string };
}
async function inbox(address: string): Promise<StoredEmail[]> {
  const store = (await (await fetch(ses.storeUrl)).json()) as { emails: StoredEmail[] };
  return store.emails.filter((e) => e.destination.to.some((t) => t.includes(address)));
}

/** Ticks the scheduler at `at` and waits for the polls and the notifications they cause. */
async function tick(at: Date): Promise<string[]> {
  const due = d.scheduler.tick(target, at);
  await d.scheduler.drain();
  await d.events.drain();
  return due;
}

/** A Dovecot mailbox and a box for it, saved through the API with a schedule. */
async function scheduledBox(options: { password?: string; schedule?: Record<string, unknown> } = {}) {
  const user = uniqueUser('sched');
  const password = `pw-${user}`;
  await dovecot.addUser(user, password);
  const notifyEmail = `${user}@owner.test`;
  const description = `Front ${user.slice(-6)}`;
  const res = await call('POST', '/email-boxes?verify=false', {
    body: {
      id: user,
      description,
      connection: {
        server: '127.0.0.1',
        port: dovecot.pop3sPort,
        ssl: true,
        emailAddress: 'front@studio.test',
        userName: user,
        password: options.password ?? password,
      },
      schedule: {
        startTime: '08:30',
        endTime: '17:15',
        intervalMinutes: 20,
        weekdays: ['MON', 'WED', 'FRI'],
        timeZone: 'Europe/London',
        notifyEmail,
        ...options.schedule,
      },
    },
  });
  expect(res.status).toBe(201);
  const name = (await call('GET', `/email-boxes/${user}/schedule`)).body.stored.name as string;
  return { id: user, user, password, notifyEmail, description, name };
}

/** Deletes the box (and so its schedule), so later ticks do not poll it. */
async function remove(id: string) {
  expect((await call('DELETE', `/email-boxes/${id}`)).status).toBe(204);
}

describe('a scheduled poll, end to end', () => {
  it('polls a box whose schedule is due and emails the run summary to the notification address', async () => {
    // Prepare
    const box = await scheduledBox({ schedule: { notifyOn: 'every-run' } });
    await dovecot.deliver(box.user, rawMail({ subject: 'Wedding in May' }));
    await dovecot.deliver(box.user, rawMail({ subject: 'Portrait prices' }));
    // Act
    const due = await tick(london('08:30'));
    // Assess
    expect(due).toContain(box.name);
    const runs = await d.repos.runs.list(sid, box.id);
    expect(runs.items).toMatchObject([{ status: 'succeeded', trigger: 'schedule', counts: { imported: 2 } }]);
    const event = d.events.published.find((e) => e.detail.boxId === box.id);
    expect(event).toMatchObject({
      source: POLL_EVENT_SOURCE,
      detail: { scheduledTime: '2026-06-15T07:30:00Z' },
    });
    const mails = await inbox(box.notifyEmail);
    expect(mails).toHaveLength(1);
    expect(mails[0]?.subject).toBe(`Email box "${box.description}" checked: 2 new messages`);
    expect(mails[0]?.body.text).toContain('on Mon 15 Jun 2026 at 08:30 (Europe/London)');
    expect(mails[0]?.body.text).toMatch(/Imported: +2/);
    await remove(box.id);
  });

  it('alerts on a failure, stays quiet on the same failure, and says "works again" on the next success', async () => {
    // Prepare: the box is saved with a wrong password.
    const box = await scheduledBox({ password: 'wrong-password' });
    // Act
    await tick(london('08:30'));
    const afterFirst = await inbox(box.notifyEmail);
    await tick(london('08:50'));
    const afterSecond = await inbox(box.notifyEmail);
    const fixed = await call('PUT', `/email-boxes/${box.id}?verify=false`, {
      body: {
        description: box.description,
        connection: {
          server: '127.0.0.1',
          port: dovecot.pop3sPort,
          ssl: true,
          emailAddress: 'front@studio.test',
          userName: box.user,
          password: box.password,
        },
      },
    });
    await tick(london('09:10'));
    const afterFix = await inbox(box.notifyEmail);
    // Assess
    expect(afterFirst).toHaveLength(1);
    expect(afterFirst[0]?.subject).toBe(
      `Email box "${box.description}" could not be checked: login rejected`,
    );
    expect(afterFirst[0]?.body.text).toContain(
      'What failed: The mail server rejected the user name or password.',
    );
    expect(afterFirst[0]?.body.text).toContain('What to check: Check the user name and password');
    expect(afterSecond).toHaveLength(1);
    expect(fixed.status).toBe(200);
    expect(afterFix).toHaveLength(2);
    expect(afterFix[1]?.subject).toBe(`Email box "${box.description}" works again`);
    expect(afterFix[1]?.body.text).toContain('(2 failed runs; last problem: login rejected)');
    const runs = await d.repos.runs.list(sid, box.id);
    expect(runs.items.map((r) => r.status)).toEqual(['succeeded', 'failed', 'failed']);
    await remove(box.id);
  });

  it('does not poll on a tick outside the window, nor on a day that is not chosen', async () => {
    // Prepare
    const box = await scheduledBox();
    // Act: 08:10 matches the cron (every 20 minutes from :10) but is before the 08:30 start.
    const early = await tick(london('08:10'));
    const tuesday = await tick(london('08:30', 16));
    // Assess
    expect(early).toContain(box.name);
    expect(tuesday).not.toContain(box.name);
    expect((await d.repos.runs.list(sid, box.id)).items).toEqual([]);
    expect(d.events.published.some((e) => e.detail.boxId === box.id)).toBe(false);
    expect(await inbox(box.notifyEmail)).toEqual([]);
    await remove(box.id);
  });

  it('honours a window an admin changed in the schedule input, and a schedule disabled there', async () => {
    // Prepare: the console edit moves the start to 08:10.
    const box = await scheduledBox();
    const def = (await d.scheduler.get(box.name))!;
    await d.scheduler.put({
      ...def,
      input: { ...def.input, window: { ...(def.input.window as object), startTime: '08:10' } },
    });
    // Act
    await tick(london('08:10'));
    const afterEdit = (await d.repos.runs.list(sid, box.id)).items.length;
    await d.scheduler.put({ ...def, enabled: false });
    const disabled = await tick(london('08:30'));
    // Assess
    expect(afterEdit).toBe(1);
    expect(disabled).not.toContain(box.name);
    expect((await d.repos.runs.list(sid, box.id)).items).toHaveLength(1);
    const view = await call('GET', `/email-boxes/${box.id}/schedule`);
    expect(view.body.drift.map((x: { field: string }) => x.field)).toEqual(['enabled']);
    await remove(box.id);
  });

  it('makes the definitions again from the stored boxes when the runner restarts', async () => {
    // Prepare
    const box = await scheduledBox();
    const before = (await d.scheduler.get(box.name))!;
    await d.scheduler.delete(box.name);
    // Act
    const count = await restoreSchedules(d, d.scheduler);
    // Assess
    expect(count).toBeGreaterThanOrEqual(1);
    expect(await d.scheduler.get(box.name)).toEqual(before);
    await remove(box.id);
  });
});
