import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import type { DomainEvent, EventPublisher } from '#lib/ports/index';

/** PutEvents takes at most 10 entries per call. */
const BATCH = 10;

/** EventBridge kept some events after a retry; names each with its error code. */
export class EventPublishError extends Error {
  override readonly name = 'EventPublishError';
  constructor(readonly failures: { detailType: string; code: string; message: string }[]) {
    super(
      `EventBridge refused ${failures.length} event(s): ${failures.map((f) => `${f.detailType} (${f.code}: ${f.message})`).join('; ')}`,
    );
  }
}

/**
 * EventBridge: run results go to the stack's bus, where a rule hands them to `notify`. PutEvents can
 * accept a call and still refuse some entries (FailedEntryCount); those are sent once more, and an
 * entry refused twice fails the publish.
 */
export class EventBridgePublisher implements EventPublisher {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly busName: string,
  ) {}

  async publish(events: DomainEvent[]): Promise<void> {
    const entries: PutEventsRequestEntry[] = events.map((e) => ({
      EventBusName: this.busName,
      Source: e.source,
      DetailType: e.detailType,
      Detail: JSON.stringify(e.detail),
    }));
    const failures: { detailType: string; code: string; message: string }[] = [];
    for (let i = 0; i < entries.length; i += BATCH) {
      let pending = entries.slice(i, i + BATCH);
      for (let attempt = 1; pending.length > 0; attempt++) {
        const refused = await this.put(pending);
        if (refused.length === 0) break;
        if (attempt === 2) {
          failures.push(
            ...refused.map((r) => ({
              detailType: r.entry.DetailType ?? '',
              code: r.code,
              message: r.message,
            })),
          );
          break;
        }
        pending = refused.map((r) => r.entry);
      }
    }
    if (failures.length > 0) throw new EventPublishError(failures);
  }

  /** Sends one batch; returns the entries EventBridge refused, with its reasons. */
  private async put(entries: PutEventsRequestEntry[]) {
    const out = await this.client.send(new PutEventsCommand({ Entries: entries }));
    if (!out.FailedEntryCount) return [];
    // Result entries are in request order; a refused one carries ErrorCode instead of EventId.
    return entries.flatMap((entry, index) => {
      const result = out.Entries?.[index];
      if (result?.EventId && !result.ErrorCode) return [];
      return [
        { entry, code: result?.ErrorCode ?? 'Unknown', message: result?.ErrorMessage ?? 'no reason given' },
      ];
    });
  }
}
