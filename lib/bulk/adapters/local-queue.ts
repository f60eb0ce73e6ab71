/**
 * The in-process twin of the SQS queue: at-least-once with a visibility timeout. A message is
 * handed to one consumer; when the handler fails, or has not finished when the visibility timeout
 * ends (a worker that died or hangs), the message is delivered again, up to `maxReceives`, after
 * which it goes to the dead-letter list, as SQS's redrive policy would.
 */
import type { BulkMessage } from '../model.ts';
import type { BulkQueue } from '../ports.ts';

export interface InProcessQueueOptions {
  visibilityTimeoutMs: number;
  maxReceives: number;
  /** Messages handled at the same time. */
  concurrency: number;
}

interface Entry {
  id: number;
  message: BulkMessage;
  receives: number;
  visibleAt: number;
}

export type QueueHandler = (message: BulkMessage) => Promise<void>;

export class InProcessQueue implements BulkQueue {
  private readonly waiting: Entry[] = [];
  private readonly inFlight = new Map<number, { entry: Entry; done: Promise<void> }>();
  readonly deadLetters: BulkMessage[] = [];
  private handler: QueueHandler | undefined;
  private nextId = 1;
  private timer: NodeJS.Timeout | undefined;
  private readonly options: InProcessQueueOptions;
  /** Messages ever sent, for tests. */
  sentCount = 0;

  constructor(
    options: Partial<InProcessQueueOptions> = {},
    private readonly onError: (error: unknown, message: BulkMessage) => void = () => {},
  ) {
    this.options = { visibilityTimeoutMs: 60_000, maxReceives: 5, concurrency: 2, ...options };
  }

  async send(messages: BulkMessage[]): Promise<void> {
    for (const message of messages) {
      this.sentCount += 1;
      this.waiting.push({ id: this.nextId++, message: structuredClone(message), receives: 0, visibleAt: 0 });
    }
    this.pump();
  }

  /** Starts delivering to `handler` (the worker). */
  consume(handler: QueueHandler): void {
    this.handler = handler;
    this.pump();
  }

  /** Stops delivering; messages in flight are left to their handlers. */
  stop(): void {
    this.handler = undefined;
    clearTimeout(this.timer);
  }

  /** Messages not yet handled to the end (waiting or in flight). */
  get depth(): number {
    return this.waiting.length + this.inFlight.size;
  }

  /** Resolves when nothing is waiting or in flight (tests), or rejects after `timeoutMs`. */
  async drained(timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.depth > 0) {
      if (Date.now() > until) throw new Error(`queue not drained: ${this.depth} messages left`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private pump(): void {
    clearTimeout(this.timer);
    if (!this.handler) return;
    const now = Date.now();
    while (this.inFlight.size < this.options.concurrency) {
      const i = this.waiting.findIndex((e) => e.visibleAt <= now);
      if (i < 0) break;
      const [entry] = this.waiting.splice(i, 1) as [Entry];
      this.deliver(entry, this.handler);
    }
    const next = Math.min(...this.waiting.map((e) => e.visibleAt));
    if (Number.isFinite(next)) {
      this.timer = setTimeout(() => this.pump(), Math.max(1, next - now));
      this.timer.unref();
    }
  }

  private deliver(entry: Entry, handler: QueueHandler): void {
    entry.receives += 1;
    let settled = false;
    // The visibility timeout: whatever the handler is doing, the message comes back after it.
    const expiry = setTimeout(() => {
      if (settled) return;
      settled = true;
      this.retry(entry);
    }, this.options.visibilityTimeoutMs);
    expiry.unref();
    const done = Promise.resolve()
      .then(() => handler(structuredClone(entry.message)))
      .then(
        () => {
          if (settled) return;
          settled = true;
          clearTimeout(expiry);
          this.inFlight.delete(entry.id);
          this.pump();
        },
        (error: unknown) => {
          this.onError(error, entry.message);
          if (settled) return;
          settled = true;
          clearTimeout(expiry);
          this.retry(entry);
        },
      );
    this.inFlight.set(entry.id, { entry, done });
  }

  private retry(entry: Entry): void {
    this.inFlight.delete(entry.id);
    if (entry.receives >= this.options.maxReceives) this.deadLetters.push(entry.message);
    else this.waiting.push({ ...entry, visibleAt: Date.now() + 10 });
    this.pump();
  }
}
