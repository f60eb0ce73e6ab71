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
        const message = error instanceof Error ? error.message : String(error);
        return [name, { up: false, error: message, ms: Math.round(performance.now() - started) }] as const;
      }
    }),
  );
  const parts: Health['parts'] = Object.fromEntries(entries);
  return { status: Object.values(parts).every((p) => p.up) ? 'ok' : 'degraded', parts };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
