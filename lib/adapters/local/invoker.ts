import type { AsyncInvoker } from '#lib/ports/index';

export type InvokeTarget = (payload: Record<string, unknown>) => Promise<unknown>;

/**
 * Local twin of an asynchronous Lambda invoke: runs the target in this process without the
 * caller waiting. A failure goes to `onError` (Lambda's on-failure destination, in AWS).
 * `drain()` waits for every run, including the ones those runs started.
 */
export class InProcessInvoker implements AsyncInvoker {
  private target: InvokeTarget | undefined;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly onError: (error: unknown, payload: Record<string, unknown>) => void = (error) =>
      console.error('in-process invocation failed:', error),
  ) {}

  /** The function invoked (the local runner registers inbox-poll's handler). */
  register(target: InvokeTarget): void {
    this.target = target;
  }

  async invoke(payload: Record<string, unknown>): Promise<void> {
    const target = this.target;
    if (!target) throw new Error('No function is registered with the in-process invoker.');
    // setImmediate: the caller's answer goes out before the run starts, as with Lambda's queue.
    const run = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => target(payload))
      .then(
        () => undefined,
        (error: unknown) => this.onError(error, payload),
      )
      .finally(() => this.running.delete(run));
    this.running.add(run);
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }
}
