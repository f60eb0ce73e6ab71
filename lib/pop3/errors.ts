/**
 * Typed POP3 failures. `kind` tells the settings API which field the user should fix:
 * dns/unreachable → server name, refused/protocol → port, tls → SSL setting or certificate,
 * auth → user name or password, timeout/closed/server → try again later (or the server is odd).
 */
export type Pop3ErrorKind =
  /** The host name does not resolve (ENOTFOUND, EAI_AGAIN, …). */
  | 'dns'
  /** Nothing listens on that port (ECONNREFUSED). */
  | 'refused'
  /** No route to the host or network (EHOSTUNREACH, ENETUNREACH, …). */
  | 'unreachable'
  /** A wait (connect, greeting, command, or a stalled stream consumer) ran out of time. */
  | 'timeout'
  /** The TLS handshake failed: TLS spoken to a plain port, bad certificate, STLS refused, … */
  | 'tls'
  /** The server closed or reset the connection unexpectedly. */
  | 'closed'
  /** The peer does not speak POP3 as we understand it (wrong port, malformed response). */
  | 'protocol'
  /** The server rejected the user name or password. */
  | 'auth'
  /** The server answered -ERR to a command (including [IN-USE], [SYS/TEMP], [LOGIN-DELAY] at login). */
  | 'server'
  /** The caller aborted (AbortSignal) or closed the client while a command was waiting. */
  | 'aborted';

export type Pop3Phase = 'connect' | 'tls' | 'greeting' | 'command';

export interface Pop3ErrorDetails {
  /** Command verb, e.g. `RETR`, `PASS`. */
  readonly command?: string | undefined;
  /** The command line as sent, with the password replaced: `PASS ****`. */
  readonly commandLine?: string | undefined;
  /** Server text after `-ERR`, without the response code. */
  readonly serverText?: string | undefined;
  /** RFC 2449 extended response code without brackets, e.g. `AUTH`, `IN-USE`, `SYS/TEMP`. */
  readonly responseCode?: string | undefined;
  /** Underlying system or TLS error code, e.g. `ECONNREFUSED`, `DEPTH_ZERO_SELF_SIGNED_CERT`. */
  readonly code?: string | undefined;
  readonly phase?: Pop3Phase | undefined;
  readonly cause?: unknown;
}

export class Pop3Error extends Error {
  override readonly name = 'Pop3Error';
  readonly kind: Pop3ErrorKind;
  readonly command: string | undefined;
  readonly commandLine: string | undefined;
  readonly serverText: string | undefined;
  readonly responseCode: string | undefined;
  readonly code: string | undefined;
  readonly phase: Pop3Phase | undefined;

  constructor(kind: Pop3ErrorKind, message: string, details: Pop3ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = kind;
    this.command = details.command;
    this.commandLine = details.commandLine;
    this.serverText = details.serverText;
    this.responseCode = details.responseCode;
    this.code = details.code;
    this.phase = details.phase;
  }
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA']);
const UNREACHABLE_CODES = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL']);
const CLOSED_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_DESTROYED']);

/** Is this a TLS-layer error code (OpenSSL or certificate verification)? */
function isTlsCode(code: string): boolean {
  return (
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_') ||
    code.includes('CERT') ||
    code.includes('SIGNATURE') ||
    code.includes('ISSUER')
  );
}

/** Maps a socket-level error to a Pop3Error; `phase` decides what an ambiguous reset means. */
export function fromSocketError(error: unknown, phase: Pop3Phase, host: string, port: number): Pop3Error {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? undefined;
  const text = error instanceof Error ? error.message : String(error);
  const where = `${host}:${port}`;
  const details = { code, phase, cause: error };
  if (code && DNS_CODES.has(code)) return new Pop3Error('dns', `Cannot resolve ${host} (${code})`, details);
  // lib/net/guard.ts refused the address the name resolves to: the server name is what to fix.
  if (code === 'EPRIVATEHOST') return new Pop3Error('unreachable', text, details);
  if (code === 'ECONNREFUSED') return new Pop3Error('refused', `Connection refused by ${where}`, details);
  if (code && UNREACHABLE_CODES.has(code))
    return new Pop3Error('unreachable', `Cannot reach ${where} (${code})`, details);
  if (code === 'ETIMEDOUT') return new Pop3Error('timeout', `Connecting to ${where} timed out`, details);
  // A reset during the handshake is what a plain server does to a ClientHello: a TLS problem.
  if (phase === 'tls' || (code && isTlsCode(code)))
    return new Pop3Error('tls', `TLS with ${where} failed: ${text}`, details);
  if (code && CLOSED_CODES.has(code))
    return new Pop3Error('closed', `Connection to ${where} was closed: ${text}`, details);
  return new Pop3Error('closed', `Connection to ${where} failed: ${text}`, details);
}

/** `[SYS/TEMP] text` → { code: 'SYS/TEMP', text: 'text' } (RFC 2449 §8). */
export function splitResponseCode(text: string): { responseCode: string | undefined; text: string } {
  const match = /^\[([^\]]*)\]\s*/.exec(text);
  if (!match) return { responseCode: undefined, text };
  return { responseCode: match[1], text: text.slice(match[0].length) };
}

/** Kind of a -ERR answer: at login it is a credentials problem unless the code says otherwise. */
export function kindOfErr(command: string, responseCode: string | undefined): Pop3ErrorKind {
  const login = command === 'USER' || command === 'PASS' || command === 'APOP' || command === 'AUTH';
  if (!login) return 'server';
  const top = responseCode?.split('/')[0]?.toUpperCase();
  // [IN-USE] (mailbox locked), [LOGIN-DELAY] and [SYS/…] are not the user's password being wrong.
  if (top === 'IN-USE' || top === 'LOGIN-DELAY' || top === 'SYS') return 'server';
  return 'auth';
}
