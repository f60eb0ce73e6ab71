/**
 * Bounded retries with exponential backoff for answers that mean "not now": SMTP 4xx replies and
 * SES throttling. Anything else fails at once, so a wrong password is not tried three times.
 */
export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** Wait before the second try; doubled for each further one (200 ms, 400 ms, …). */
  baseDelayMs: number;
  /** Injectable so tests do not wait. */
  sleep: (ms: number) => Promise<void>;
}

export const defaultRetry: RetryPolicy = {
  attempts: 3,
  baseDelayMs: 200,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export type Attempted<T> =
  | { ok: true; value: T; attempts: number }
  | { ok: false; error: unknown; attempts: number };

export async function withRetry<T>(
  op: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  transient: (error: unknown) => boolean,
): Promise<Attempted<T>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return { ok: true, value: await op(attempt), attempts: attempt + 1 };
    } catch (error) {
      if (attempt + 1 >= policy.attempts || !transient(error))
        return { ok: false, error, attempts: attempt + 1 };
      await policy.sleep(policy.baseDelayMs * 2 ** attempt);
    }
  }
}
