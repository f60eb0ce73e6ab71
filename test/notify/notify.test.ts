/**
 * The notify function over DynamoDB Local with a transport that records what it is given: which
 * email each outcome produces, its words, and that a run is never notified twice.
 */
import { randomUUID } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { beforeAll, describe, expect, it } from 'vitest';
import { notifyHandler } from '#functions/notify/app';
import type { BoxSchedule, EmailBox } from '#lib/domain/model';
import { POLL_EVENT_SOURCE, POLL_FAILED, POLL_SUCCEEDED, type PollOutcomeDetail } from '#lib/inbox/events';
import { InvalidNotifyEventError, NotificationSendError } from '#lib/notify/service';
import { NotifyStore } from '#lib/notify/store';
import type { MailTransport, RawMail } from '#lib/ports/index';
import { type TestDeps, testDeps } from '#test/support/api';

const sid = 'studio-1';
let d: TestDeps;
const sent: RawMail[] = [];
/** Set to make the next sends fail. */
let failNext = 0;
const transport: MailTransport = {
  kind: 'ses',
  async send(mail) {
    if (failNext > 0) {
      failNext--;
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

const schedule = (over: Partial<BoxSchedule> = {}): BoxSchedule => ({
  enabled: true,
  startTime: '08:30',
  endTime: '17:15',
  intervalMinutes: 20,
  weekdays: ['MON', 'WED', 'FRI'],
  timeZone: 'Europe/London',
  notifyEmail: 'owner@lumen.test',
  notifyOn: 'failures',
  ...over,
});

async function makeBox(over: Partial<BoxSchedule> | null = {}): Promise<EmailBox> {
  const id = `box-${randomUUID().slice(0, 8)}`;
  const box: EmailBox = {
    id,
    description: 'Sales & Bookings',
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
    ...(over === null ? {} : { schedule: schedule(over) }),
  };
  await d.repos.emailBoxes.create(sid, id, box);
  return box;
}

let clock = Date.UTC(2026, 5, 15, 7, 30);
const login = {
  kind: 'login-rejected',
  message: 'The mail server rejected the user name or password.',
  advice: 'Check the user name and password; Gmail needs an app password and POP enabled in its settings.',
  field: 'connection.password',
  serverReply: '[AUTH] Authentication failed.',
};

/** An EventBridge event for one run of `box`, each a minute after the last. */
function outcome(box: EmailBox, over: Partial<PollOutcomeDetail> = {}) {
  clock += 60_000;
  const detail: PollOutcomeDetail = {
    studioId: sid,
    boxId: box.id,
    boxDescription: box.description,
    runId: randomUUID(),
    trigger: 'schedule',
    status: 'succeeded',
    counts: { seen: 5, imported: 3, skipped: 2, quarantined: 0, tasks: 1, autoReplies: 1 },
    errors: [],
    scheduledTime: new Date(clock).toISOString(),
    startedAt: new Date(clock).toISOString(),
    finishedAt: new Date(clock + 2000).toISOString(),
    ...over,
  };
  return {
    version: '0',
    id: randomUUID(),
    source: POLL_EVENT_SOURCE,
    'detail-type': detail.status === 'failed' ? POLL_FAILED : POLL_SUCCEEDED,
    detail,
  };
}
const failure = (box: EmailBox, f: Partial<typeof login> = {}) =>
  outcome(box, { status: 'failed', counts: undefined, failure: { ...login, ...f } });

async function lastMail() {
  const mail = sent.at(-1);
  if (!mail) throw new Error('nothing was sent');
  return { mail, parsed: await simpleParser(mail.raw) };
}

describe('failure notifications', () => {
  it('names the box, says what failed in plain words and what to check, at the scheduled local time', async () => {
    // Prepare
    const box = await makeBox();
    const before = sent.length;
    // Act
    const result = await notify(failure(box));
    // Assess
    expect(result).toMatchObject({ sent: true, email: 'failure', to: 'owner@lumen.test' });
    expect(sent.length).toBe(before + 1);
    const { mail, parsed } = await lastMail();
    expect(mail.envelope).toEqual({ from: 'notifications@studio-mail.local', to: ['owner@lumen.test'] });
    expect(parsed.subject).toBe('Email box "Sales & Bookings" could not be checked: login rejected');
    expect(parsed.text).toContain('The email box "Sales & Bookings" (sales@lumen.test) could not be checked');
    expect(parsed.text).toContain('on Mon 15 Jun 2026 at 08:31 (Europe/London).');
    expect(parsed.text).toContain('What failed: The mail server rejected the user name or password.');
    expect(parsed.text).toContain(
      'What to check: Check the user name and password; Gmail needs an app password',
    );
    expect(parsed.text).toContain('Setting to look at: User Name and Password');
    expect(parsed.text).toContain('The mail server said: [AUTH] Authentication failed.');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-generated');
    expect(parsed.messageId).toMatch(/^<notify\..+\.failure@studio-mail\.local>$/);
  });

  it('does not repeat the same failure, but alerts when the failure changes', async () => {
    // Prepare
    const box = await makeBox();
    await notify(failure(box));
    const before = sent.length;
    // Act
    const again = await notify(failure(box));
    const changed = await notify(
      failure(box, {
        kind: 'server-unreachable',
        message: 'Nothing answered at pop.lumen.test port 995.',
        advice: 'Check the port (995 with SSL, 110 without) and that SSL is right to be on.',
        field: 'connection.port',
        serverReply: undefined,
      }),
    );
    // Assess
    expect(again).toMatchObject({ sent: false, reason: 'same failure as the last alert' });
    expect(changed).toMatchObject({ sent: true, email: 'failure' });
    expect(sent.length).toBe(before + 1);
    const { parsed } = await lastMail();
    expect(parsed.subject).toBe('Email box "Sales & Bookings" could not be checked: mail server unreachable');
    expect(parsed.text).toContain('Setting to look at: Port Number');
  });

  it('sends a reminder when the same failure has lasted a day', async () => {
    // Prepare
    const box = await makeBox();
    await notify(failure(box));
    clock += 24 * 3_600_000;
    // Act
    const result = await notify(failure(box));
    // Assess
    expect(result).toMatchObject({ sent: true, email: 'reminder' });
    const { parsed } = await lastMail();
    expect(parsed.subject).toBe(
      'Reminder: email box "Sales & Bookings" still cannot be checked: login rejected',
    );
    expect(parsed.text).toContain('(2 failed runs)');
  });

  it('says the box works again on the first success after failures, with the counts', async () => {
    // Prepare
    const box = await makeBox();
    await notify(failure(box));
    await notify(failure(box));
    // Act
    const recovered = await notify(outcome(box));
    const quiet = await notify(outcome(box));
    // Assess
    expect(recovered).toMatchObject({ sent: true, email: 'recovered' });
    expect(quiet).toMatchObject({ sent: false });
    const { parsed } = await lastMail();
    expect(parsed.subject).toBe('Email box "Sales & Bookings" works again');
    expect(parsed.text).toContain('(2 failed runs; last problem: login rejected)');
    expect(parsed.text).toMatch(/Imported: +3/);
  });
});

describe('success summaries', () => {
  it('summarises each scheduled run with every-run, listing problems with single messages', async () => {
    // Prepare
    const box = await makeBox({ notifyOn: 'every-run' });
    // Act
    const result = await notify(
      outcome(box, {
        status: 'partial',
        errors: [{ kind: 'quarantined', message: 'Message 17 could not be parsed and was quarantined.' }],
        errorCount: 3,
      }),
    );
    // Assess
    expect(result).toMatchObject({ sent: true, email: 'success' });
    const { parsed } = await lastMail();
    expect(parsed.subject).toBe('Email box "Sales & Bookings" checked: 3 new messages (with problems)');
    expect(parsed.text).toMatch(/Messages on the server: +5/);
    expect(parsed.text).toMatch(/Tasks created: +1/);
    expect(parsed.text).toContain('- Message 17 could not be parsed and was quarantined.');
    expect(parsed.text).toContain('… and 2 more.');
  });

  it('sends nothing for a success with notifyOn failures', async () => {
    // Prepare
    const box = await makeBox();
    const before = sent.length;
    // Act
    const result = await notify(outcome(box));
    // Assess
    expect(result).toMatchObject({ sent: false, reason: 'success' });
    expect(sent.length).toBe(before);
  });
});

describe('who is told', () => {
  it('reads the address from the box at notify time', async () => {
    // Prepare
    const box = await makeBox();
    const stored = await d.repos.emailBoxes.require(sid, box.id);
    const { version: _v, createdAt: _c, updatedAt: _u, ...record } = stored;
    await d.repos.emailBoxes.replace(sid, box.id, {
      ...record,
      schedule: schedule({ notifyEmail: 'desk@lumen.test' }),
    });
    // Act
    const result = await notify(failure(box));
    // Assess
    expect(result).toMatchObject({ sent: true, to: 'desk@lumen.test' });
  });

  it('tells no one when the box has no address or no longer exists, yet keeps counting', async () => {
    // Prepare
    const quiet = await makeBox({ notifyEmail: undefined });
    const gone = await makeBox();
    await d.repos.emailBoxes.delete(sid, gone.id);
    const before = sent.length;
    // Act
    const first = await notify(failure(quiet));
    const second = await notify(failure(gone));
    // Assess
    expect(first).toMatchObject({ sent: false, reason: 'no notification address for a failure email' });
    expect(second).toMatchObject({ sent: false });
    expect(sent.length).toBe(before);
    expect(await new NotifyStore(d.repos.table).state(sid, quiet.id)).toMatchObject({
      failing: true,
      failedRuns: 1,
    });
  });
});

describe('once per run', () => {
  it('sends nothing for a redelivered event', async () => {
    // Prepare
    const box = await makeBox();
    const event = failure(box);
    await notify(event);
    const before = sent.length;
    // Act
    const again = await notify(event);
    // Assess
    expect(again).toMatchObject({ sent: false, reason: 'already handled (sent)' });
    expect(sent.length).toBe(before);
  });

  it('sends once when the same event arrives twice at the same time', async () => {
    // Prepare
    const box = await makeBox();
    const event = failure(box);
    const before = sent.length;
    // Act
    const results = await Promise.all([notify(event), notify(event)]);
    // Assess
    expect(results.filter((r) => r.sent)).toHaveLength(1);
    expect(sent.length).toBe(before + 1);
  });

  it('throws when the send fails, sends once on the retry, and never a third time', async () => {
    // Prepare
    const box = await makeBox();
    const event = failure(box);
    const before = sent.length;
    failNext = 1;
    // Act
    const first = notify(event);
    await expect(first).rejects.toThrow(NotificationSendError);
    await expect(first).rejects.toThrow(/LimitExceededException: Daily message quota exceeded/);
    const retry = await notify(event);
    const third = await notify(event);
    // Assess
    expect(retry).toMatchObject({ sent: true, email: 'failure' });
    expect(third).toMatchObject({ sent: false });
    expect(sent.length).toBe(before + 1);
    const claim = await new NotifyStore(d.repos.table).claim(sid, box.id, event.detail.runId);
    expect(claim).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('does not send again a notification whose first attempt is in doubt', async () => {
    // Prepare: a claim left `sending` by an invocation that died mid-send.
    const box = await makeBox();
    const event = failure(box);
    await new NotifyStore(d.repos.table).commit(
      sid,
      box.id,
      { runId: event.detail.runId, status: 'sending', email: 'failure', to: 'owner@lumen.test', attempts: 1 },
      undefined,
      0,
    );
    const before = sent.length;
    // Act
    const result = await notify(event);
    // Assess
    expect(result).toMatchObject({ sent: false, reason: 'already handled (sending)' });
    expect(sent.length).toBe(before);
  });

  it('marks the notification failed, not in doubt, when the transport cannot even be made, so the retry sends it', async () => {
    // Prepare: a transport factory that fails once (e.g. its module could not be loaded).
    let broken = 1;
    const flaky = notifyHandler(d, {
      transport: () => {
        if (broken-- > 0) throw new Error('SES client could not be created');
        return transport;
      },
    });
    const box = await makeBox();
    const event = failure(box);
    const before = sent.length;
    // Act
    await expect(flaky(event)).rejects.toThrow(NotificationSendError);
    const retry = await flaky(event);
    // Assess
    expect(retry).toMatchObject({ sent: true, email: 'failure' });
    expect(sent.length).toBe(before + 1);
  });

  it('claims nothing and counts nothing when the email cannot be composed, so a retry decides again', async () => {
    // Prepare: a zone Intl does not know (the settings API refuses one; a record may still hold it).
    const box = await makeBox({ timeZone: 'Mars/Olympus_Mons' });
    const event = failure(box);
    const store = new NotifyStore(d.repos.table);
    // Act
    await expect(notify(event)).rejects.toThrow(RangeError);
    // Assess
    expect(await store.claim(sid, box.id, event.detail.runId)).toBeUndefined();
    expect(await store.state(sid, box.id)).toMatchObject({ failing: false, failedRuns: 0, version: 0 });
  });

  it('refuses an event that is not a poll outcome, so it reaches the DLQ', async () => {
    // Act
    const wrongSource = notify({ source: 'aws.s3', 'detail-type': 'Object Created', detail: {} });
    const malformed = notify({
      source: POLL_EVENT_SOURCE,
      'detail-type': POLL_FAILED,
      detail: { boxId: 'x' },
    });
    // Assess
    await expect(wrongSource).rejects.toThrow(InvalidNotifyEventError);
    await expect(malformed).rejects.toThrow(/malformed: studioId/);
  });
});
