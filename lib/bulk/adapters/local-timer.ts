/**
 * The in-process twin of one-off EventBridge Scheduler schedules: each timer puts its message on
 * the queue when the clock reaches its time. `fireDue()` checks now (tests move the clock and call
 * it); `start()` checks every `everyMs` for `npm start`.
 */
import type { BulkMessage } from '../model.ts';
import type { BulkQueue, JobTimer } from '../ports.ts';

export class InProcessTimer implements JobTimer {
  private readonly timers = new Map<string, { when: number; message: BulkMessage }>();
  private interval: NodeJS.Timeout | undefined;

  constructor(
    private readonly queue: () => BulkQueue,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async at(name: string, when: Date, message: BulkMessage): Promise<void> {
    this.timers.set(name, { when: when.getTime(), message });
    // One that is already due goes at once, as Scheduler runs an `at()` in the past right away.
    if (when.getTime() <= this.now().getTime()) await this.fireDue();
  }

  async cancel(name: string): Promise<void> {
    this.timers.delete(name);
  }

  /** Pending timers (name → ISO time), for tests and the health page. */
  list(): Record<string, string> {
    return Object.fromEntries([...this.timers].map(([n, t]) => [n, new Date(t.when).toISOString()]));
  }

  /** Sends the message of every timer due by now; returns their names. */
  async fireDue(): Promise<string[]> {
    const now = this.now().getTime();
    const due = [...this.timers].filter(([, t]) => t.when <= now);
    for (const [name] of due) this.timers.delete(name);
    if (due.length) await this.queue().send(due.map(([, t]) => t.message));
    return due.map(([name]) => name);
  }

  start(everyMs = 1_000, onError: (error: unknown) => void = () => {}): void {
    this.interval = setInterval(() => void this.fireDue().catch(onError), everyMs);
    this.interval.unref();
  }

  stop(): void {
    clearInterval(this.interval);
  }
}
