/**
 * What an OAuth2 box keeps in the secret store under its `passwordRef`: the provider's refresh
 * token and the access token last obtained with it (reused until near its expiry, so a poll
 * every few minutes does not ask the provider every time). JSON; never logged or returned.
 */
import * as z from 'zod';

export const grantSchema = z.object({
  kind: z.literal('oauth2'),
  refreshToken: z.string().min(1).optional(),
  accessToken: z.string().min(1).optional(),
  /** ISO time the access token expires. */
  accessExpiresAt: z.iso.datetime().optional(),
});
export type Grant = z.infer<typeof grantSchema>;

/** The secret of an OAuth2 box before its first sign-in. */
export const PENDING_GRANT = JSON.stringify({ kind: 'oauth2' } satisfies Grant);

/** The grant in a secret's value; a value that is not one (e.g. an old password) is no grant. */
export function readGrant(value: string): Grant {
  try {
    const parsed = grantSchema.safeParse(JSON.parse(value));
    if (parsed.success) return parsed.data;
  } catch {}
  return { kind: 'oauth2' };
}
