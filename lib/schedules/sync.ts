/**
 * Writes a box's schedule around the box record so that nothing is half-written: the scheduler
 * writes go first (each one remembering what it replaced), then the record. A scheduler write that
 * fails undoes the ones before it and fails the save with a 502, the record untouched; a record
 * write that fails puts every schedule back as it was. The Scheduler port is passed in.
 */
import { AppError } from '#lib/domain/errors';
import type { ScheduleDefinition, Scheduler } from '#lib/ports/index';
import type { ScheduleOp } from './definition.ts';

export interface Log {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
}

const reason = (error: unknown) => {
  const e = error as { name?: string; message?: string };
  return [e?.name, e?.message].filter(Boolean).join(': ') || String(error);
};

/** The scheduler refused or failed a write; nothing was saved. 502 naming the `schedule` field. */
export class ScheduleWriteError extends AppError {
  override readonly name = 'ScheduleWriteError';
  override readonly status = 502;
  override readonly code = 'schedule_write_failed';
  override readonly field = 'schedule';
  constructor(
    readonly scheduleName: string,
    cause: unknown,
  ) {
    super(
      `The poll schedule "${scheduleName}" could not be saved in EventBridge Scheduler (${reason(cause)}). Nothing was changed; try again in a moment.`,
    );
  }
}

/** The deployed schedule could not be read. 502. */
export class ScheduleReadError extends AppError {
  override readonly name = 'ScheduleReadError';
  override readonly status = 502;
  override readonly code = 'schedule_read_failed';
  override readonly field = 'schedule';
  constructor(
    readonly scheduleName: string,
    cause: unknown,
  ) {
    super(
      `The poll schedule "${scheduleName}" could not be read from EventBridge Scheduler (${reason(cause)}). Try again in a moment.`,
    );
  }
}

/**
 * The name the box's schedule would get already holds another box's schedule (two boxes whose names
 * come out the same). Overwriting it would stop the other box being polled: 409, nothing saved.
 */
export class ScheduleNameTakenError extends AppError {
  override readonly name = 'ScheduleNameTakenError';
  override readonly status = 409;
  override readonly code = 'conflict';
  override readonly field = 'description';
  constructor(readonly scheduleName: string) {
    super(
      `The poll schedule name "${scheduleName}" is already used by another email box's schedule. Change the description so that the names differ; nothing was saved.`,
    );
  }
}

/** The box a save is for: a schedule whose input names another box is never overwritten or deleted. */
export interface ScheduleOwner {
  studioId: string;
  boxId: string;
}

/** Whether a deployed schedule's input names another box (a broken input is still the box's own). */
export function ownedByOther(def: ScheduleDefinition | undefined, owner: ScheduleOwner): boolean {
  const { studioId, boxId } = def?.input ?? {};
  return (
    typeof studioId === 'string' &&
    typeof boxId === 'string' &&
    (studioId !== owner.studioId || boxId !== owner.boxId)
  );
}

interface Applied {
  name: string;
  /** What the name held before (undefined: nothing). */
  prior: ScheduleDefinition | undefined;
}

async function undo(scheduler: Scheduler, log: Log, applied: Applied[]): Promise<void> {
  for (const { name, prior } of [...applied].reverse()) {
    try {
      if (prior) await scheduler.put(prior);
      else await scheduler.delete(name);
    } catch (error) {
      // Nothing more can be done here; the drift view (GET /email-boxes/{id}/schedule) shows it.
      log.warn('could not restore a poll schedule after a failed save', {
        schedule: name,
        errorName: (error as Error).name,
        errorMessage: (error as Error).message,
      });
    }
  }
}

/**
 * Applies `ops` (all for the box `owner`) to the scheduler, then runs `write` (the record write).
 * Throws ScheduleWriteError when a scheduler write fails, ScheduleNameTakenError when a put would
 * overwrite another box's schedule (the record is not written either way); rethrows `write`'s
 * error after putting the schedules back. A delete leaves another box's schedule alone.
 */
export async function withScheduleOps<T>(
  scheduler: Scheduler,
  log: Log,
  owner: ScheduleOwner,
  ops: ScheduleOp[],
  write: () => Promise<T>,
): Promise<T> {
  const applied: Applied[] = [];
  for (const op of ops) {
    const name = op.kind === 'put' ? op.def.name : op.name;
    try {
      const prior = await scheduler.get(name);
      if (ownedByOther(prior, owner)) {
        if (op.kind === 'delete') continue;
        throw new ScheduleNameTakenError(name);
      }
      if (op.kind === 'put') await scheduler.put(op.def);
      else if (prior) await scheduler.delete(name);
      applied.push({ name, prior });
    } catch (error) {
      await undo(scheduler, log, applied);
      if (error instanceof ScheduleNameTakenError) throw error;
      log.warn('poll schedule write failed; the box was not saved', {
        schedule: name,
        op: op.kind,
        errorName: (error as Error).name,
        errorMessage: (error as Error).message,
      });
      throw new ScheduleWriteError(name, error);
    }
  }
  try {
    const result = await write();
    if (ops.length > 0)
      log.info('poll schedule saved', {
        schedules: ops.map((o) => `${o.kind} ${o.kind === 'put' ? o.def.name : o.name}`),
      });
    return result;
  } catch (error) {
    await undo(scheduler, log, applied);
    throw error;
  }
}

/** The deployed schedule, or undefined when there is none; ScheduleReadError when it cannot be read. */
export async function readDeployed(
  scheduler: Scheduler,
  name: string,
): Promise<ScheduleDefinition | undefined> {
  try {
    return await scheduler.get(name);
  } catch (error) {
    throw new ScheduleReadError(name, error);
  }
}
