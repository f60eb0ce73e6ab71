/**
 * How `npm start` (and the end-to-end tests) connect the in-process scheduler and event bus to the
 * functions, the way AWS connects them: a schedule's input (scheduled time substituted) invokes the
 * inbox-poll handler as a ScheduledPoll; a poll outcome reaches notify as an EventBridge event.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import type { ScheduledPoll } from '#functions/inbox-poll/app';
import type { InProcessEventBus } from '#lib/adapters/local/events';
import type { InProcessScheduler, ScheduleTarget } from '#lib/adapters/local/scheduler';
import type { Deps } from '#lib/app/deps';
import { emailBox } from '#lib/domain/model';
import { POLL_EVENT_SOURCE, POLL_FAILED, POLL_SUCCEEDED } from '#lib/inbox/events';
import type { DomainEvent } from '#lib/ports/index';
import { definitionOf } from '#lib/schedules/definition';
import { lambdaContext } from './http.ts';

export type Invoke = (event: unknown, context: Context) => Promise<unknown>;

/** The input as the poller receives it; refuses one that is not a ScheduledPoll (a bad console edit). */
export function asScheduledPoll(input: Record<string, unknown>): ScheduledPoll {
  if (typeof input.studioId !== 'string' || typeof input.boxId !== 'string')
    throw new Error('The schedule input needs studioId and boxId (strings).');
  return {
    studioId: input.studioId,
    boxId: input.boxId,
    window: input.window as ScheduledPoll['window'],
    scheduledTime: typeof input.scheduledTime === 'string' ? input.scheduledTime : undefined,
  };
}

/** The scheduler's target: the inbox-poll handler, with a Lambda context of its timeout. */
export function pollTarget(poller: Invoke): ScheduleTarget {
  return (input) => poller(asScheduledPoll(input), lambdaContext('inbox-poll', 300_000));
}

/** A domain event as an EventBridge rule hands it to its Lambda target. */
export function eventBridgeEvent(event: DomainEvent, region: string) {
  return {
    version: '0',
    id: crypto.randomUUID(),
    source: event.source,
    'detail-type': event.detailType,
    detail: event.detail,
    time: new Date().toISOString(),
    region,
    account: '000000000000',
    resources: [],
  };
}

/** The stack's rule: poll outcomes to notify. */
export function subscribeNotify(bus: InProcessEventBus, notify: Invoke, region: string): void {
  bus.subscribe(POLL_EVENT_SOURCE, [POLL_SUCCEEDED, POLL_FAILED], (event) =>
    notify(eventBridgeEvent(event, region), lambdaContext('notify', 60_000)),
  );
}

/**
 * The in-process scheduler keeps definitions in memory; on start they are made again from the
 * boxes stored in DynamoDB Local (every studio), so schedules survive a restart as they do in AWS.
 */
export async function restoreSchedules(d: Deps, scheduler: InProcessScheduler): Promise<number> {
  let count = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await d.repos.table.doc.send(
      new ScanCommand({
        TableName: d.repos.table.name,
        FilterExpression: 'entity = :e AND attribute_exists(schedule)',
        ExpressionAttributeValues: { ':e': 'BOX' },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      const sid = String(item.PK).replace(/^ST#/, '');
      const box = emailBox.safeParse(item);
      if (!box.success || !box.data.schedule) continue;
      await scheduler.put(definitionOf(sid, box.data, box.data.schedule));
      count++;
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return count;
}
