import type { DomainEvent, EventPublisher } from '#lib/ports/index';

export type Subscriber = (event: DomainEvent) => Promise<unknown>;

/**
 * Local twin of the EventBridge bus and its rule: subscribers are matched by source and
 * detail-type. A failing subscriber is reported, never retried (as the stack's DLQ would keep it).
 */
export class InProcessEventBus implements EventPublisher {
  private readonly subscribers: { source: string; detailTypes: string[]; fn: Subscriber }[] = [];
  readonly published: DomainEvent[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly onError: (error: unknown, event: DomainEvent) => void = () => {}) {}

  subscribe(source: string, detailTypes: string[], fn: Subscriber): void {
    this.subscribers.push({ source, detailTypes, fn });
  }

  async publish(events: DomainEvent[]): Promise<void> {
    for (const event of events) {
      this.published.push(structuredClone(event));
      for (const s of this.subscribers) {
        if (s.source !== event.source || !s.detailTypes.includes(event.detailType)) continue;
        // Delivered asynchronously, like EventBridge: the publisher does not wait for the consumer.
        const p = s
          .fn(structuredClone(event))
          .catch((error: unknown) => this.onError(error, event))
          .finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
      }
    }
  }

  /** Waits until every delivery so far has finished (tests and shutdown). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }
}
