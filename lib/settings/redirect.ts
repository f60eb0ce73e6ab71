/**
 * A stored password may only ever be sent to the server it was saved for. Changing where or as
 * whom it logs on (server, port, security, logon name) without giving the password again would
 * let anyone with edit rights redirect the saved secret to a host of their choosing (and, with
 * security off, read it in clear text). Shared by PUT and PATCH of company settings, user
 * settings and email boxes.
 */
import type { Issues } from './validation.ts';

/** Where a saved password is sent: each value that, when changed, needs the password again. */
export type SecretDestination = Record<string, string | number | boolean | undefined>;

const norm = (v: string | number | boolean | undefined) =>
  typeof v === 'string' ? v.trim().toLowerCase() : v;

/** The destination fields that differ (server names compare case-insensitively). */
export function redirectedFields(before: SecretDestination, after: SecretDestination): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) =>
    k === 'logonName' || k === 'userName' ? before[k] !== after[k] : norm(before[k]) !== norm(after[k]),
  );
}

/**
 * Adds a `password` issue when the destination changed and no new password came with it.
 * Returns whether the stored password may be kept.
 */
export function requirePasswordOnRedirect(
  issues: Issues,
  passwordField: string,
  passwordGiven: boolean,
  before: SecretDestination | undefined,
  after: SecretDestination,
): boolean {
  if (!before || passwordGiven) return true;
  const changed = redirectedFields(before, after);
  if (changed.length === 0) return true;
  issues.add(
    passwordField,
    `is required again because ${changed.join(', ')} changed: a saved password is only ever sent to the server and logon it was saved for.`,
  );
  return false;
}
