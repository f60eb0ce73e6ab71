/**
 * Typed IMAP failures, shaped like Pop3Error (lib/pop3/errors.ts) so the import pipeline and the
 * diagnoses treat both alike: `kind` says which box setting to fix (the same kinds as POP3, plus
 * `folder` for a folder the server does not have). imapflow's errors never leave lib/imap: every
 * call is mapped here. No password or token is ever part of one (imapflow hides them too).
 */
import type { ImapFlowError } from 'imapflow';
import { fromSocketError, type Pop3ErrorDetails, type Pop3ErrorKind, type Pop3Phase } from '#lib/pop3/errors';

export type ImapErrorKind = Pop3ErrorKind | 'folder';

/**
 * POP3's details (command, serverText, responseCode, code, phase), read the IMAP way: the command
 * is e.g. `FETCH` or `AUTHENTICATE`, the response code e.g. `AUTHENTICATIONFAILED`, `NONEXISTENT`.
 */
export interface ImapErrorDetails extends Pop3ErrorDetails {
  /** The folder a `folder` error is about, and the field naming it. */
  readonly folder?: string | undefined;
  readonly field?: 'connection.folder' | 'connection.moveToFolder' | undefined;
}

export class ImapError extends Error {
  override readonly name = 'ImapError';
  readonly kind: ImapErrorKind;
  readonly command: string | undefined;
  readonly commandLine: string | undefined;
  readonly serverText: string | undefined;
  readonly responseCode: string | undefined;
  readonly code: string | undefined;
  readonly phase: Pop3Phase | undefined;
  readonly folder: string | undefined;
  readonly field: ImapErrorDetails['field'];

  constructor(kind: ImapErrorKind, message: string, details: ImapErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = kind;
    this.command = details.command;
    this.commandLine = details.commandLine;
    this.serverText = details.serverText;
    this.responseCode = details.responseCode;
    this.code = details.code;
    this.phase = details.phase;
    this.folder = details.folder;
    this.field = details.field;
  }
}

const TIMEOUT_CODES = new Set(['CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'UPGRADE_TIMEOUT', 'ETIMEOUT']);
const CLOSED_CODES = new Set(['NoConnection', 'EConnectionClosed', 'StateLogout', 'ClosedAfterConnectText']);
/** imapflow's codes for a server that does not speak IMAP as it should (or a hostile one). */
const PROTOCOL_CODES =
  /^(ParserError|InvalidResponse|UnexpectedTag|MissingTag|ResponseProcessingFailed|LineTooLarge|LiteralTooLarge|ResponseTooLarge|TooManyTokens|TooManyResponses|MAX_IMAP_NESTING_REACHED|STARTTLS_INJECTION|COMPRESS_TRAILING_DATA)/;
/** Codes Node gives socket, DNS and TLS errors (imapflow's own codes are CamelCase words). */
const NODE_CODE =
  /^(E[A-Z0-9_]+|ERR_[A-Z0-9_]+|[A-Z0-9_]*(CERT|ISSUER|SIGNATURE|SELF_SIGNED|UNABLE_TO)[A-Z0-9_]*)$/;
/** Response codes at log-in that are not the password being wrong (RFC 5530). */
const NOT_CREDENTIALS = new Set(['UNAVAILABLE', 'INUSE', 'LIMIT', 'SERVERBUG', 'CONTACTADMIN', 'OVERQUOTA']);

/** Where a command failed, for the mapping below. */
export interface ImapWhere {
  host: string;
  port: number;
  /** The command being run (FETCH, SELECT, …); its failure with NO/BAD is a `server` refusal. */
  command?: string;
  phase?: Pop3Phase;
  /** Before log-in is over, a NO/BAD is the credentials (unless its code says otherwise). */
  login?: boolean;
}

/** Maps anything imapflow (or its socket) threw to an ImapError; an ImapError passes through. */
export function toImapError(error: unknown, where: ImapWhere): ImapError {
  if (error instanceof ImapError) return error;
  const outer = (error ?? {}) as ImapFlowError & { syscall?: string };
  // imapflow wraps some refusals (STATUS of a missing folder: code NotFound) around the NO.
  if (outer.code === 'NotFound')
    return new ImapError('folder', outer.message, { command: where.command, code: outer.code, cause: error });
  const inner = outer.response as unknown as ImapFlowError | undefined;
  const e = inner instanceof Error && inner.responseStatus && !outer.responseStatus ? inner : outer;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const text = e instanceof Error ? e.message : String(error);
  const serverText = e.responseText ?? (typeof e.response === 'string' ? e.response : undefined);
  const base = {
    command: where.command,
    code,
    phase: where.phase ?? 'command',
    serverText: serverText || undefined,
    responseCode: e.serverResponseCode,
    cause: error,
  };
  if (code && TIMEOUT_CODES.has(code)) {
    const phase: Pop3Phase =
      code === 'CONNECT_TIMEOUT'
        ? 'connect'
        : code === 'GREETING_TIMEOUT'
          ? 'greeting'
          : (where.phase ?? 'command');
    return new ImapError('timeout', `${where.host}:${where.port} did not answer in time (${code})`, {
      ...base,
      phase,
    });
  }
  if (e.tlsFailed || code === 'ClosedAfterConnectTLS')
    return new ImapError('tls', `TLS with ${where.host}:${where.port} failed: ${text}`, {
      ...base,
      phase: 'tls',
    });
  if (code && PROTOCOL_CODES.test(code))
    return new ImapError('protocol', `The server does not speak IMAP as expected: ${text}`, base);
  if (e.mailboxMissing) return new ImapError('folder', text, base);
  if (e.authenticationFailed || (where.login && (e.responseStatus === 'NO' || e.responseStatus === 'BAD'))) {
    const top = e.serverResponseCode?.toUpperCase();
    if (top && NOT_CREDENTIALS.has(top))
      return new ImapError('server', `The server refused the log-in for now: ${serverText ?? text}`, base);
    return new ImapError('auth', `The server rejected the log-in: ${serverText ?? text}`, base);
  }
  if (e.responseStatus === 'NO' || e.responseStatus === 'BAD')
    return new ImapError(
      'server',
      `${where.command ?? 'The command'} was refused: ${serverText ?? text}`,
      base,
    );
  if (code && CLOSED_CODES.has(code))
    return new ImapError('closed', `Connection to ${where.host}:${where.port} was closed: ${text}`, base);
  // A socket, DNS or TLS error with Node's code: mapped as the POP3 client maps it.
  if ((code && NODE_CODE.test(code)) || outer.syscall) {
    const p = fromSocketError(error, where.phase ?? 'command', where.host, where.port);
    return new ImapError(p.kind, p.message, { ...base, code: p.code, phase: p.phase });
  }
  // imapflow's own refusal of a command (an extension missing, a value it will not send).
  if (code) return new ImapError('server', `${where.command ?? 'The command'} failed: ${text}`, base);
  return new ImapError('closed', `The IMAP session with ${where.host}:${where.port} failed: ${text}`, base);
}
