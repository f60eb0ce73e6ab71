import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  GetScheduleCommand,
  ResourceNotFoundException,
  SchedulerClient,
  UpdateScheduleCommand,
  ValidationException,
} from '@aws-sdk/client-scheduler';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBridgePublisher, EventPublishError } from '#lib/adapters/aws/events';
import { AwsScheduler } from '#lib/adapters/aws/scheduler';
import type { BoxSchedule } from '#lib/domain/model';
import { definitionOf } from '#lib/schedules/definition';

const scheduler = mockClient(SchedulerClient);
const events = mockClient(EventBridgeClient);
afterEach(() => {
  scheduler.reset();
  events.reset();
});

const options = {
  group: 'studio-mail',
  targetArn: 'arn:aws:lambda:us-east-1:111122223333:function:studio-mail-inbox-poll',
  roleArn: 'arn:aws:iam::111122223333:role/studio-mail-scheduler',
  deadLetterArn: 'arn:aws:sqs:us-east-1:111122223333:studio-mail-schedule-dlq',
};
const schedule: BoxSchedule = {
  enabled: true,
  startTime: '08:30',
  endTime: '17:15',
  intervalMinutes: 20,
  weekdays: ['MON', 'WED', 'FRI'],
  timeZone: 'America/Chicago',
  notifyOn: 'failures',
};
const def = definitionOf('studio-1', { id: 'sales', description: 'Sales' }, schedule);
const notFound = () =>
  new ResourceNotFoundException({
    message: 'Schedule not found',
    Message: 'Schedule not found',
    $metadata: {},
  });

/** The exact request the adapter sends for `def`. */
const expectedRequest = {
  Name: 'inbox-Sales-studio-1-sales-19cc593c1405f22e',
  GroupName: 'studio-mail',
  Description: def.description,
  ScheduleExpression: 'cron(10/20 8,9,10,11,12,13,14,15,16,17 ? * MON,WED,FRI *)',
  ScheduleExpressionTimezone: 'America/Chicago',
  State: 'ENABLED',
  FlexibleTimeWindow: { Mode: 'OFF' },
  Target: {
    Arn: options.targetArn,
    RoleArn: options.roleArn,
    Input: JSON.stringify({
      studioId: 'studio-1',
      boxId: 'sales',
      window: {
        startTime: '08:30',
        endTime: '17:15',
        intervalMinutes: 20,
        weekdays: ['MON', 'WED', 'FRI'],
        timeZone: 'America/Chicago',
      },
      scheduledTime: '<aws.scheduler.scheduled-time>',
    }),
    RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 },
    DeadLetterConfig: { Arn: options.deadLetterArn },
  },
};

describe('AwsScheduler', () => {
  it('creates a missing schedule with the zone, no flexible window, the placeholder input, no retries and the DLQ', async () => {
    // Prepare
    scheduler.on(UpdateScheduleCommand).rejects(notFound());
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn:schedule' });
    // Act
    await new AwsScheduler(new SchedulerClient({}), options).put(def);
    // Assess
    expect(scheduler.commandCalls(UpdateScheduleCommand)[0]?.args[0].input).toEqual(expectedRequest);
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(1);
    expect(scheduler.commandCalls(CreateScheduleCommand)[0]?.args[0].input).toEqual(expectedRequest);
    expect(JSON.parse(expectedRequest.Target.Input).scheduledTime).toBe('<aws.scheduler.scheduled-time>');
  });

  it('updates an existing schedule with the whole definition, DISABLED when the box schedule is off', async () => {
    // Prepare
    scheduler.on(UpdateScheduleCommand).resolves({ ScheduleArn: 'arn:schedule' });
    // Act
    await new AwsScheduler(new SchedulerClient({}), options).put({ ...def, enabled: false });
    // Assess
    expect(scheduler.commandCalls(UpdateScheduleCommand)[0]?.args[0].input).toEqual({
      ...expectedRequest,
      State: 'DISABLED',
    });
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
  });

  it('updates after all when another request created the schedule first', async () => {
    // Prepare
    scheduler.on(UpdateScheduleCommand).rejectsOnce(notFound()).resolves({ ScheduleArn: 'arn:schedule' });
    scheduler
      .on(CreateScheduleCommand)
      .rejects(
        new ConflictException({ message: 'already exists', Message: 'already exists', $metadata: {} }),
      );
    // Act
    await new AwsScheduler(new SchedulerClient({}), options).put(def);
    // Assess
    expect(scheduler.commandCalls(UpdateScheduleCommand)).toHaveLength(2);
  });

  it('leaves the DLQ out when none is configured, and passes other errors on', async () => {
    // Prepare
    scheduler
      .on(UpdateScheduleCommand)
      .rejects(new ValidationException({ message: 'bad', Message: 'bad', $metadata: {} }));
    const { deadLetterArn: _d, ...noDlq } = options;
    // Act
    const put = new AwsScheduler(new SchedulerClient({}), noDlq).put(def);
    // Assess
    await expect(put).rejects.toThrow('bad');
    expect(
      scheduler.commandCalls(UpdateScheduleCommand)[0]?.args[0].input.Target?.DeadLetterConfig,
    ).toBeUndefined();
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
  });

  it('refuses to write a schedule without the poller and role ARNs', async () => {
    // Act
    const put = new AwsScheduler(new SchedulerClient({}), {
      group: 'studio-mail',
      targetArn: '',
      roleArn: '',
    }).put(def);
    // Assess
    await expect(put).rejects.toThrow(/POLLER_ARN/);
    expect(scheduler.calls()).toHaveLength(0);
  });

  it('reads a schedule back as a definition, and undefined when there is none', async () => {
    // Prepare
    scheduler
      .on(GetScheduleCommand, {
        Name: 'inbox-Sales-studio-1-sales-19cc593c1405f22e',
        GroupName: 'studio-mail',
      })
      .resolves({
        Name: 'inbox-Sales-studio-1-sales-19cc593c1405f22e',
        Description: def.description,
        ScheduleExpression: 'cron(0 9 ? * MON *)',
        ScheduleExpressionTimezone: 'America/Chicago',
        State: 'DISABLED',
        Target: { Arn: options.targetArn, RoleArn: options.roleArn, Input: expectedRequest.Target.Input },
      });
    scheduler.on(GetScheduleCommand, { Name: 'gone' }).rejects(notFound());
    const aws = new AwsScheduler(new SchedulerClient({}), options);
    // Act
    const found = await aws.get('inbox-Sales-studio-1-sales-19cc593c1405f22e');
    const missing = await aws.get('gone');
    // Assess
    expect(found).toEqual({ ...def, expression: 'cron(0 9 ? * MON *)', enabled: false });
    expect(missing).toBeUndefined();
  });

  it('keeps a console input that is not JSON as { raw }', async () => {
    // Prepare
    scheduler.on(GetScheduleCommand).resolves({
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Target: { Arn: 'a', RoleArn: 'r', Input: 'poll please' },
    });
    // Act
    const found = await new AwsScheduler(new SchedulerClient({}), options).get('x');
    // Assess
    expect(found?.input).toEqual({ raw: 'poll please' });
    expect(found?.timeZone).toBe('UTC');
  });

  it('deletes by name in the group, and a missing schedule is already deleted', async () => {
    // Prepare
    scheduler.on(DeleteScheduleCommand, { Name: 'a' }).resolves({});
    scheduler.on(DeleteScheduleCommand, { Name: 'b' }).rejects(notFound());
    const aws = new AwsScheduler(new SchedulerClient({}), options);
    // Act
    await aws.delete('a');
    await aws.delete('b');
    // Assess
    expect(scheduler.commandCalls(DeleteScheduleCommand).map((c) => c.args[0].input)).toEqual([
      { Name: 'a', GroupName: 'studio-mail' },
      { Name: 'b', GroupName: 'studio-mail' },
    ]);
  });
});

describe('EventBridgePublisher', () => {
  const outcome = (n: number) => ({
    source: 'studio-mail.inbox-poll',
    detailType: 'Inbox Poll Failed',
    detail: { studioId: 'studio-1', boxId: `box-${n}`, runId: `run-${n}` },
  });

  it('puts each event on the bus with its source, detail type and JSON detail', async () => {
    // Prepare
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] });
    // Act
    await new EventBridgePublisher(new EventBridgeClient({}), 'studio-mail-bus').publish([outcome(1)]);
    // Assess
    expect(events.commandCalls(PutEventsCommand)[0]?.args[0].input).toEqual({
      Entries: [
        {
          EventBusName: 'studio-mail-bus',
          Source: 'studio-mail.inbox-poll',
          DetailType: 'Inbox Poll Failed',
          Detail: JSON.stringify({ studioId: 'studio-1', boxId: 'box-1', runId: 'run-1' }),
        },
      ],
    });
  });

  it('sends nothing for no events and at most ten entries per call', async () => {
    // Prepare
    events.on(PutEventsCommand).callsFake((input: { Entries: unknown[] }) => ({
      FailedEntryCount: 0,
      Entries: input.Entries.map((_, i) => ({ EventId: `e${i}` })),
    }));
    const bus = new EventBridgePublisher(new EventBridgeClient({}), 'bus');
    // Act
    await bus.publish([]);
    await bus.publish(Array.from({ length: 23 }, (_, i) => outcome(i)));
    // Assess
    expect(events.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries?.length)).toEqual([
      10, 10, 3,
    ]);
  });

  it('sends the refused entries of a partly failed call once more', async () => {
    // Prepare
    events
      .on(PutEventsCommand)
      .resolvesOnce({
        FailedEntryCount: 1,
        Entries: [{ EventId: 'e1' }, { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }],
      })
      .resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e2' }] });
    // Act
    await new EventBridgePublisher(new EventBridgeClient({}), 'bus').publish([outcome(1), outcome(2)]);
    // Assess
    const calls = events
      .commandCalls(PutEventsCommand)
      .map((c) => c.args[0].input.Entries?.map((e) => JSON.parse(e.Detail ?? '{}').boxId));
    expect(calls).toEqual([['box-1', 'box-2'], ['box-2']]);
  });

  it('fails with the error codes when EventBridge refuses an entry twice (FailedEntryCount)', async () => {
    // Prepare
    events.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }],
    });
    // Act
    const publish = new EventBridgePublisher(new EventBridgeClient({}), 'bus').publish([outcome(1)]);
    // Assess
    await expect(publish).rejects.toThrow(EventPublishError);
    await expect(publish).rejects.toThrow('Inbox Poll Failed (InternalFailure: try again)');
    expect(events.commandCalls(PutEventsCommand)).toHaveLength(2);
  });
});
