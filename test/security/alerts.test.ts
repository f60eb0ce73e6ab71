/**
 * Issue 12, item 6: an alert is recorded only when its email went out. A box that failed before
 * it had a notification address used to record the alert as sent, and once an address was added
 * every failure was suppressed as "the same failure as the last alert".
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { notifyHandler } from '#functions/notify/app';
import type { BoxSchedule, EmailBox } from '#lib/domain/model';
import { POLL_EVENT_SOURCE, POLL_FAILED, type PollOutcomeDetail } from '#lib/inbox/events';
import type { MailTransport, RawMail } from '#lib/ports/index';
import { type TestDeps, testDeps } from '#test/support/api';

const sid = 'studio-1';
let d: TestDeps;
const sent: RawMail[] = [];
let failSends = 0;
const transport: MailTransport = {
  kind: 'ses',
  async send(mail) {
    if (failSends > 0) {
      failSends--;
      throw Object.assign(new Error('Daily message quota exceeded'), { name: 'LimitExceededException' });
    }
    sent.push(mail);
    return { messageId: mail.messageId, accepted: mail.envelope.to, rejected: [] };
  },
  async verify() {},
  close() {},
};
let notify: ReturnType<typeof notifyHandler>;

beforeAll(async () => {
  d = await testDeps();
  notify = notifyHandler(d, { transport: () => transport });
});

const schedule = (notifyEmail?: string): BoxSchedule => ({
  enabled: true,
  startTime: '08:00',
  endTime: '18:00',
  intervalMinutes: 20,
  weekdays: ['MON', 'TUE', 'WED', 'THU', 'FRI'],
  timeZone: 'UTC',
  notifyOn: 'failures',
  ...(notifyEmail ? { notifyEmail } : {}),
});

async function makeBox(notifyEmail?: string): Promise<EmailBox> {
  const id = `box-${randomUUID().slice(0, 8)}`;
  const box: EmailBox = {
    id,
    description: 'Sales',
    autoCreateTask: false,
    sendAutoReply: false,
    autoReplyToAll: false,
    autoReplyFirstEmailOnly: false,
    leaveOnServer: true,
    connection: {
      type: 'pop3',
      server: 'pop.lumen.test',
      emailAddress: 'sales@lumen.test',
      userName: 'sales@lumen.test',
      passwordRef: 'ref',
      ssl: true,
      spa: false,
      port: 995,
    },
    schedule: schedule(notifyEmail),
  };
  await d.repos.emailBoxes.create(sid, id, box);
  return box;
}

async function setAddress(box: EmailBox, notifyEmail: string) {
  const stored = await d.repos.emailBoxes.require(sid, box.id);
  const { version, createdAt: _c, updatedAt: _u, ...value } = stored;
  await d.repos.emailBoxes.replace(sid, box.id, { ...value, schedule: schedule(notifyEmail) }, version);
}

let clock = Date.UTC(2026, 6, 1, 9, 0);
function failure(box: EmailBox) {
  clock += 60_000;
  const detail: PollOutcomeDetail = {
    studioId: sid,
    boxId: box.id,
    boxDescription: box.description,
    runId: randomUUID(),
    trigger: 'schedule',
    status: 'failed',
    counts: { seen: 0, imported: 0, skipped: 0, quarantined: 0, tasks: 0, autoReplies: 0 },
    errors: [],
    scheduledTime: new Date(clock).toISOString(),
    startedAt: new Date(clock).toISOString(),
    finishedAt: new Date(clock + 1000).toISOString(),
    failure: {
      kind: 'login-rejected',
      message: 'The mail server rejected the user name or password.',
      advice: 'Check the user name and password.',
      field: 'connection.password',
    },
  };
  return { version: '0', id: randomUUID(), source: POLL_EVENT_SOURCE, 'detail-type': POLL_FAILED, detail };
}

describe('alerts', () => {
  it('alerts the next failure once a box that failed without an address gets one', async () => {
    // Prepare: two failures with nowhere to send them.
    const box = await makeBox();
    const quiet = [await notify(failure(box)), await notify(failure(box))];
    await setAddress(box, 'owner@lumen.test');
    const before = sent.length;
    // Act
    const next = await notify(failure(box));
    const after = await notify(failure(box));
    // Assess
    expect(quiet.map((r) => r.sent)).toEqual([false, false]);
    expect(next).toMatchObject({ sent: true, email: 'failure', to: 'owner@lumen.test' });
    expect(after).toMatchObject({ sent: false, reason: 'same failure as the last alert' });
    expect(sent.length).toBe(before + 1);
  });

  it('records no alert when its email could not be sent, so the next failure tries again', async () => {
    // Prepare: the alert's send fails on the first try and on Lambda's retry.
    const box = await makeBox('owner@lumen.test');
    failSends = 2;
    const event = failure(box);
    await expect(notify(event)).rejects.toThrow(/could not be sent/);
    await expect(notify(event)).rejects.toThrow(/could not be sent/);
    const before = sent.length;
    // Act
    const next = await notify(failure(box));
    // Assess
    expect(next).toMatchObject({ sent: true, email: 'failure' });
    expect(sent.length).toBe(before + 1);
  });

  it('still suppresses the same failure after an alert that went out', async () => {
    // Prepare
    const box = await makeBox('owner@lumen.test');
    const first = await notify(failure(box));
    // Act
    const second = await notify(failure(box));
    // Assess
    expect(first).toMatchObject({ sent: true, email: 'failure' });
    expect(second).toMatchObject({ sent: false, reason: 'same failure as the last alert' });
  });
});
