import type { Deps } from './deps.ts';

export interface Health {
  status: 'ok' | 'degraded';
  parts: Record<string, { up: boolean; error?: string; ms: number }>;
}

/** Checks each part the functions depend on; never throws, so /health always answers. */
export async function checkHealth(d: Deps): Promise<Health> {
  const checks: Record<string, () => Promise<unknown>> = {
    database: () => d.repos.table.get({ PK: 'HEALTH', SK: 'HEALTH' }, false),
    blobStore: () => d.blobs.exists('health/probe'),
    ...d.healthChecks,
  };
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      const started = performance.now();
      try {
        await withTimeout(check(), 3_000);
        return [name, { up: true, ms: Math.round(performance.now() - started) }] as const;
      } catch (error) {
        // The answer is public: the raw error (endpoints, ARNs, account ids) goes to the log only.
        d.logger.error('health check failed', {
          part: name,
          errorMessage: error instanceof Error ? error.message : String(error),
        });
        const timedOut = error instanceof Error && error.message === TIMED_OUT;
        return [
          name,
          {
            up: false,
            error: timedOut ? 'no answer in time' : 'not answering',
            ms: Math.round(performance.now() - started),
          },
        ] as const;
      }
    }),
  );
  const parts: Health['parts'] = Object.fromEntries(entries);
  return { status: Object.values(parts).every((p) => p.up) ? 'ok' : 'degraded', parts };
}

const TIMED_OUT = 'health check timed out';

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(TIMED_OUT)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
