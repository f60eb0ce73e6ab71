/**
 * Logs a POP3 session in the way the box says: USER/PASS, SPA (`AUTH NTLM` with the box's
 * Domain) or OAuth2 (`AUTH XOAUTH2` with an access token). One place, so the poller and the
 * connection test cannot drift apart.
 */

import type { NtlmCredentials } from '#lib/auth-mech/ntlm';
import { splitDomainUser } from '#lib/auth-mech/ntlm';

export type Authentication = 'password' | 'ntlm' | 'oauth2';

export interface Pop3Credentials {
  readonly authentication?: Authentication | undefined;
  /** SPA only: the Windows domain (a `DOMAIN\user` user name works too). */
  readonly domain?: string | undefined;
  readonly userName: string;
  /** The password (password and SPA); unused with OAuth2. */
  readonly password: string;
  /** OAuth2 only: a current access token (refreshed by lib/oauth when near expiry). */
  readonly accessToken?: (() => Promise<string>) | undefined;
}

/** The part of Pop3Client a log-in uses. */
export interface Pop3LoginSession {
  login(user: string, password: string): Promise<void>;
  ntlm(credentials: NtlmCredentials): Promise<void>;
  xoauth2(user: string, accessToken: string): Promise<void>;
}

/** Thrown when an OAuth2 box has no way to get a token (not signed in, or no token source). */
export class MissingTokenSourceError extends Error {
  override readonly name = 'MissingTokenSourceError';
}

export async function logIn(session: Pop3LoginSession, credentials: Pop3Credentials): Promise<void> {
  switch (credentials.authentication ?? 'password') {
    case 'password':
      return session.login(credentials.userName, credentials.password);
    case 'ntlm':
      return session.ntlm({
        ...splitDomainUser(credentials.domain ?? '', credentials.userName),
        password: credentials.password,
      });
    case 'oauth2': {
      if (!credentials.accessToken)
        throw new MissingTokenSourceError('This OAuth2 box has no access token source');
      return session.xoauth2(credentials.userName, await credentials.accessToken());
    }
  }
}
