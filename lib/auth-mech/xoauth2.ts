/**
 * The XOAUTH2 SASL initial response (Google's and Microsoft's mail OAuth2 mechanism):
 * `user=<user>^Aauth=Bearer <token>^A^A`, base64-encoded by the protocol layer.
 */
export function xoauth2Response(user: string, accessToken: string): string {
  // Only printable ASCII: a ^A, CR or LF would end a field of the response early.
  if (!/^[\x20-\x7e]+$/.test(user) || !/^[\x21-\x7e]+$/.test(accessToken))
    throw new RangeError('XOAUTH2: the user name or token contains a control character');
  return Buffer.from(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8').toString('base64');
}

/** The JSON a server sends in its XOAUTH2 failure challenge, when it sends one. */
export function xoauth2Failure(challenge: string): { status?: string; scope?: string } | undefined {
  try {
    const value = JSON.parse(Buffer.from(challenge, 'base64').toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null ? (value as { status?: string }) : undefined;
  } catch {
    return undefined;
  }
}
