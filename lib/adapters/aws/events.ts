import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { DomainEvent, EventPublisher } from '#lib/ports/index';

/** EventBridge: run results go to the stack's bus, where a rule hands them to `notify`. */
export class EventBridgePublisher implements EventPublisher {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly busName: string,
  ) {}

  async publish(events: DomainEvent[]): Promise<void> {
    if (events.length === 0) return;
    const out = await this.client.send(
      new PutEventsCommand({
        Entries: events.map((e) => ({
          EventBusName: this.busName,
          Source: e.source,
          DetailType: e.detailType,
          Detail: JSON.stringify(e.detail),
        })),
      }),
    );
    if (out.FailedEntryCount) {
      const reasons = (out.Entries ?? [])
        .filter((e) => e.ErrorCode)
        .map((e) => `${e.ErrorCode}: ${e.ErrorMessage}`);
      throw new Error(`EventBridge refused ${out.FailedEntryCount} event(s): ${reasons.join('; ')}`);
    }
  }
}
