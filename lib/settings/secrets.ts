/**
 * Passwords for SMTP, Gmail and mailboxes live in the secret store, one secret per credential;
 * records keep only the reference. The helpers here order the two writes (secret, then record) so
 * that a failure leaves neither half: a record never points to a missing secret, and a secret made
 * for a record that was not saved is scheduled for deletion at once.
 */
import { randomBytes } from 'node:crypto';
import type { SecretStore } from '#lib/ports/index';

export interface Warn {
  warn(message: string, ...extra: Record<string, unknown>[]): void;
}

/** Secret names allow letters, digits and `/_+=.@-`; anything else from an id becomes `_`. */
const safe = (part: string) => part.replace(/[^A-Za-z0-9_+=.@-]/g, '_');

/**
 * A fresh name under the studio, e.g. `studio-1/boxes/sales/pop3-3f9a1c2e`. The suffix keeps a
 * recreated box (or a transport switched back to SMTP) clear of a secret AWS still holds in its
 * recovery window under the old name.
 */
export function secretName(studioId: string, ...parts: string[]): string {
  const path = [studioId, ...parts].map(safe).join('/');
  return `${path}-${randomBytes(4).toString('hex')}`;
}

export interface SecretPlan {
  /** The secret the record points to now, if any. */
  currentRef?: string;
  /** A new password, when the request sets one. */
  password?: string;
  /** Whether the record being written keeps a password slot (false: SES, or no credentials). */
  wantsSecret: boolean;
  /** Name for a secret created now (from secretName). */
  name: () => string;
  tags?: Record<string, string>;
}

/**
 * Writes the record through `write(ref)` with the secret handled around it:
 * - a new password: create a new secret, then write the record pointing at it; on failure schedule
 *   the new secret's deletion; after success schedule the old one's (if any);
 * - no new password: keep the current reference;
 * - the record no longer needs a secret: write, then schedule the old secret's deletion.
 * A password is never written over the secret a record points to: two saves at the same time each
 * make their own secret, the record's conditional write (its version) lets one win, and the loser
 * only retires its own secret, so neither can put the old password back.
 */
export async function saveWithSecret<T>(
  store: SecretStore,
  log: Warn,
  plan: SecretPlan,
  write: (ref: string | undefined) => Promise<T>,
): Promise<T> {
  const { currentRef, password, wantsSecret } = plan;
  if (!wantsSecret) {
    const saved = await write(undefined);
    if (currentRef) await retireSecret(store, log, currentRef);
    return saved;
  }
  if (password === undefined) return write(currentRef);

  const ref = await store.create(plan.name(), password, plan.tags);
  let saved: T;
  try {
    saved = await write(ref);
  } catch (error) {
    await retireSecret(store, log, ref);
    throw error;
  }
  if (currentRef && currentRef !== ref) await retireSecret(store, log, currentRef);
  return saved;
}

/** Schedules deletion; a failure only leaves an unused secret behind, so it is logged, not thrown. */
export async function retireSecret(store: SecretStore, log: Warn, ref: string): Promise<void> {
  try {
    await store.scheduleDeletion(ref);
  } catch (error) {
    log.warn('could not schedule an unused credential for deletion', {
      reference: ref,
      errorName: (error as Error).name,
      errorMessage: (error as Error).message,
    });
  }
}
