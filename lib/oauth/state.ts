/**
 * The `state` of a sign-in: which studio, box, user and provider it is for, and until when; signed
 * with HMAC-SHA256, so a callback cannot be pointed at another box, and short-lived. The PKCE
 * code verifier is not in it (the state travels through the browser and the provider): it is
 * derived from the state's random nonce with the same key, so the server needs no session store
 * and an intercepted redirect still cannot redeem the code.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { OAuthProvider } from '#lib/domain/model';
import type { TransportOwner } from '#lib/domain/settings';

export interface StateClaims {
  readonly provider: OAuthProvider;
  readonly studioId: string;
  /** The box signing in; empty when `send` names send settings instead. */
  readonly boxId: string;
  /** Send settings signing in (their transport): the company's or a user's. */
  readonly send?: TransportOwner;
  readonly userId: string;
  /** Random, base64url. */
  readonly nonce: string;
  /** Unix seconds. */
  readonly expiresAt: number;
}

/** Why a callback's state is refused; the callback answers 400. */
export class InvalidStateError extends Error {
  override readonly name = 'InvalidStateError';
}

export function signState(
  key: Buffer,
  claims: Omit<StateClaims, 'nonce'>,
): { state: string; claims: StateClaims } {
  const full: StateClaims = { ...claims, nonce: randomBytes(16).toString('base64url') };
  const body = Buffer.from(JSON.stringify(full)).toString('base64url');
  return { state: `${body}.${mac(key, body)}`, claims: full };
}

/** The claims of a state this key signed for `provider`, if it has not expired. */
export function verifyState(
  key: Buffer,
  state: string,
  provider: OAuthProvider,
  nowSeconds: number,
): StateClaims {
  const [body, signature, extra] = state.split('.');
  if (!body || !signature || extra !== undefined)
    throw new InvalidStateError('The sign-in state is malformed.');
  const expected = Buffer.from(mac(key, body));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given))
    throw new InvalidStateError('The sign-in state is not one this service issued.');
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as StateClaims;
  if (claims.provider !== provider)
    throw new InvalidStateError(`The sign-in state is for ${claims.provider}, not ${provider}.`);
  if (!(claims.expiresAt > nowSeconds))
    throw new InvalidStateError('The sign-in took too long and its state expired: start it again.');
  return claims;
}

/** The PKCE code verifier of a state (RFC 7636: 43 characters of base64url). */
export function codeVerifierOf(key: Buffer, claims: StateClaims): string {
  return createHmac('sha256', key).update(`pkce:${claims.nonce}`).digest('base64url');
}

function mac(key: Buffer, body: string): string {
  return createHmac('sha256', key).update(`state:${body}`).digest('base64url');
}
