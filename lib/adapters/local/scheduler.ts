import { parseExpression } from '#lib/domain/cron';
import type { ScheduleDefinition, Scheduler } from '#lib/ports/index';

export type ScheduleTarget = (input: Record<string, unknown>, def: ScheduleDefinition) => Promise<unknown>;

/**
 * The target input as Scheduler delivers it: context attributes replaced in the JSON text, the
 * scheduled time as the tick's minute in the form AWS uses (`2026-06-15T08:30:00Z`).
 */
export function substituteContext(
  def: ScheduleDefinition,
  at: Date,
  executionId: string = crypto.randomUUID(),
): Record<string, unknown> {
  const minute = new Date(Math.floor(at.getTime() / 60_000) * 60_000).toISOString().replace('.000Z', 'Z');
  const text = JSON.stringify(def.input)
    .replaceAll('<aws.scheduler.scheduled-time>', minute)
    .replaceAll(
      '<aws.scheduler.schedule-arn>',
      `arn:aws:scheduler:local:000000000000:schedule/local/${def.name}`,
    )
    .replaceAll('<aws.scheduler.execution-id>', executionId)
    .replaceAll('<aws.scheduler.attempt-number>', '1');
  return JSON.parse(text) as Record<string, unknown>;
}

/**
 * Local twin of EventBridge Scheduler: keeps definitions in memory and, once started, checks
 * them at the top of every minute and invokes the target for each one due, as Scheduler would.
 */
export class InProcessScheduler implements Scheduler {
  private readonly defs = new Map<string, ScheduleDefinition>();
  private timer: NodeJS.Timeout | undefined;
  /** Promises of invocations in flight, so stop() can wait for them. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly onError: (error: unknown, def: ScheduleDefinition) => void = () => {}) {}

  async put(def: ScheduleDefinition): Promise<void> {
    parseExpression(def.expression);
    this.defs.set(def.name, structuredClone(def));
  }

  async get(name: string): Promise<ScheduleDefinition | undefined> {
    const def = this.defs.get(name);
    return def ? structuredClone(def) : undefined;
  }

  async delete(name: string): Promise<void> {
    this.defs.delete(name);
  }

  list(): ScheduleDefinition[] {
    return [...this.defs.values()].map((d) => structuredClone(d));
  }

  /** Invokes every enabled schedule due at `at` (minute precision); returns their names. */
  tick(target: ScheduleTarget, at = new Date()): string[] {
    const due: string[] = [];
    for (const def of this.defs.values()) {
      if (!def.enabled || !parseExpression(def.expression).matches(at, def.timeZone)) continue;
      due.push(def.name);
      const p = target(substituteContext(def, at), structuredClone(def))
        .catch((error: unknown) => this.onError(error, def))
        .finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }
    return due;
  }

  start(target: ScheduleTarget): void {
    const loop = () => {
      const now = Date.now();
      this.timer = setTimeout(
        () => {
          this.tick(target, new Date());
          loop();
        },
        60_000 - (now % 60_000) + 50,
      );
      this.timer.unref();
    };
    loop();
  }

  /** Waits until every invocation so far has finished (tests and shutdown). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.drain();
  }
}
