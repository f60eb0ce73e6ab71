/**
 * A small POP3 client (RFC 1939, RFC 2449 CAPA/PIPELINING/RESP-CODES, RFC 2595 STLS) on node:net/node:tls.
 *
 * Why our own: node-pop3 hangs when `CRLF.CRLF` is split across TLS records, does no dot-unstuffing and
 * decodes mail as UTF-8. Here message bodies are bytes from socket to caller: the multi-line decoder
 * works on Buffers, keeps state across chunks and only removes stuffing dots and the terminator.
 *
 * Guarantees the inbox import relies on:
 * - every wait is bounded (connect deadline, per-command idle timeout, optional AbortSignal);
 * - failures are `Pop3Error`s with a `kind`, never carrying the password;
 * - `close()` drops the connection without QUIT, so DELEs are NOT committed (RFC 1939 §6);
 *   only a successful `quit()` commits them.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import {
  authenticateMessage,
  isForeignDomain,
  type NtlmChallenge,
  type NtlmCredentials,
  NtlmError,
  negotiateMessage,
  parseChallenge,
} from '#lib/auth-mech/ntlm';
import { xoauth2Failure, xoauth2Response } from '#lib/auth-mech/xoauth2';
import {
  fromSocketError,
  kindOfErr,
  Pop3Error,
  type Pop3ErrorKind,
  type Pop3Phase,
  splitResponseCode,
} from '#lib/pop3/errors';
import { MultilineDecoder } from '#lib/pop3/multiline';

export type { Pop3ErrorKind, Pop3Phase };
export { Pop3Error };

/**
 * The code of the error a RETR/TOP fails with when the server announced octets and sent an
 * empty message: that message cannot be had intact from this server, and the session is out of
 * step after it (the rest of the message arrives as if it were answers) — open a new one.
 */
export const EMPTY_ANNOUNCED = 'EMPTY_ANNOUNCED';

/** Codes of SASL login failures that tell which setting is wrong (lib/pop3/diagnose.ts reads them). */
export const SaslCode = {
  /** The server lists its SASL mechanisms and the one asked for is not among them. */
  UNAVAILABLE: 'SASL_UNAVAILABLE',
  /** NTLM refused, and the server announced domains that are not the box's Domain. */
  NTLM_DOMAIN: 'NTLM_DOMAIN',
  /** The server's NTLM messages were not usable (not NTLM, no Unicode). */
  NTLM_PROTOCOL: 'NTLM_PROTOCOL',
  /** XOAUTH2 refused: the access token was not accepted (expired, revoked, wrong scope or user). */
  OAUTH_REJECTED: 'OAUTH_REJECTED',
} as const;

export type Pop3TlsMode = 'implicit' | 'starttls' | 'none';

export interface Pop3ClientOptions {
  readonly host: string;
  /** Default 995 with implicit TLS, else 110. */
  readonly port?: number;
  /** `implicit` = POP3S (TLS from the first byte), `starttls` = plain then STLS, `none` = plain. Default implicit. */
  readonly tls?: Pop3TlsMode;
  /** Verify the server certificate (default true). */
  readonly rejectUnauthorized?: boolean;
  /** Extra trusted CA certificate(s), PEM. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** TLS server name for SNI and certificate check; default `host` (not sent when host is an IP). */
  readonly servername?: string;
  /** Deadline for DNS + TCP + TLS + greeting (+ STLS). Default 15 s. */
  readonly connectTimeoutMs?: number;
  /** Longest silence allowed while a command waits for the server (or a stream waits for its reader). Default 60 s. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Name resolution for the TCP connect (lib/net/guard.ts refuses private addresses); default DNS. */
  readonly lookup?: net.LookupFunction;
  /** Protocol trace: command lines (password masked) and status lines; never message bodies. */
  readonly onLog?: (direction: 'C' | 'S', line: string) => void;
}

export interface Pop3Capabilities {
  /** CAPA lines as sent by the server. */
  readonly raw: readonly string[];
  readonly pipelining: boolean;
  readonly uidl: boolean;
  readonly top: boolean;
  readonly user: boolean;
  readonly stls: boolean;
  readonly respCodes: boolean;
  readonly authRespCode: boolean;
  /** SASL mechanisms, upper case. */
  readonly sasl: readonly string[];
  readonly implementation: string | undefined;
}

export interface Pop3Stat {
  readonly count: number;
  readonly size: number;
}

export interface Pop3ListEntry {
  readonly id: number;
  readonly size: number;
}

export interface Pop3UidlEntry {
  readonly id: number;
  readonly uid: string;
}

export interface Pop3Message {
  readonly id: number;
  readonly data: Buffer;
}

export interface RetrManyOptions {
  /** Commands in flight when the server offers PIPELINING (default 10, max 64); 1 without it. */
  readonly window?: number;
}

const LF = 10;
const MAX_STATUS_LINE = 64 * 1024; // RFC 2449 says 512; be lenient, but never buffer without bound
const BODY_HIGH_WATER_MARK = 64 * 1024;
const noop = () => {};

const NO_CAPABILITIES: Pop3Capabilities = parseCapabilities([]);

/** One command and its response. `body` exists for multi-line commands. */
interface Exchange {
  readonly verb: string;
  /** Command line as shown in logs and errors (password masked). */
  readonly shown: string;
  readonly secret: string | undefined;
  readonly status: Promise<string>;
  readonly resolve: (text: string) => void;
  readonly reject: (error: Pop3Error) => void;
  body: Readable | undefined;
  /** Size from `+OK <n> octets` (RETR), when the server gives one. */
  announced: number | undefined;
  /** Body bytes decoded so far. */
  received: number;
  /** SASL (AUTH): answers a `+ <base64>` continuation with the next client line. */
  continuation?: ((challenge: string) => string) | undefined;
  /** Why the client cancelled a SASL exchange (`*`): the -ERR that follows is rejected with it. */
  cancelled?: Pop3Error | undefined;
}

export class Pop3Client {
  readonly #options: Pop3ClientOptions;
  readonly #host: string;
  readonly #port: number;
  readonly #timeoutMs: number;
  #socket: net.Socket | undefined;
  #phase: Pop3Phase = 'connect';
  #greeting = '';
  #capabilities = NO_CAPABILITIES;

  /** Commands sent and not yet fully answered, in order (POP3 answers strictly in order). */
  #queue: Exchange[] = [];
  /** Partial status line (no LF seen yet). */
  #lineParts: Buffer[] = [];
  #lineLength = 0;
  /** Set while reading the body of the multi-line response at the head of the queue. */
  #decoder: MultilineDecoder | undefined;
  /** Socket data received while a slow body reader holds us paused. */
  #backlog: Buffer[] = [];
  #pausedBy: Exchange | undefined;

  #idleTimer: NodeJS.Timeout | undefined;
  #failure: Pop3Error | undefined;
  #closing = false;
  readonly #failed: Promise<never>;
  #rejectFailed: (error: Pop3Error) => void = noop;

  private constructor(options: Pop3ClientOptions) {
    this.#options = options;
    this.#host = options.host;
    this.#port = options.port ?? ((options.tls ?? 'implicit') === 'implicit' ? 995 : 110);
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#failed = new Promise<never>((_, reject) => {
      this.#rejectFailed = reject;
    });
    this.#failed.catch(noop);
  }

  /** Connects, reads the greeting, upgrades with STLS if asked, and reads CAPA. */
  static async connect(options: Pop3ClientOptions): Promise<Pop3Client> {
    const client = new Pop3Client(options);
    await client.#open();
    return client;
  }

  get greeting(): string {
    return this.#greeting;
  }

  /** Capabilities from the last CAPA (re-read after STLS and after login, as RFC 2449/2595 require). */
  get capabilities(): Pop3Capabilities {
    return this.#capabilities;
  }

  get secure(): boolean {
    return this.#socket instanceof tls.TLSSocket && this.#socket.encrypted;
  }

  /**
   * Bytes read from the socket that no stream has taken yet (memory the client itself holds).
   * Stays small: while a reader is behind, the socket is paused and data waits in the kernel.
   */
  get bufferedBytes(): number {
    return this.#lineLength + this.#backlog.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  /** True once the connection is gone (after quit(), close(), or a failure). */
  get closed(): boolean {
    return this.#failure !== undefined;
  }

  async capa(): Promise<Pop3Capabilities> {
    try {
      this.#capabilities = parseCapabilities(await this.#lines('CAPA', []));
    } catch (error) {
      // -ERR means the server predates CAPA; anything else (connection lost) is real.
      if (!(error instanceof Pop3Error && error.kind === 'server')) throw error;
      this.#capabilities = NO_CAPABILITIES;
    }
    return this.#capabilities;
  }

  /** USER/PASS login. A rejected password is a Pop3Error of kind 'auth' that never contains it. */
  async login(user: string, password: string): Promise<void> {
    await this.#send('USER', [user]).status;
    await this.#send('PASS', [password], { secret: password }).status;
    await this.capa(); // capabilities may change after login (RFC 2449 §5)
  }

  /** APOP login (RFC 1939 §7); needs a `<timestamp>` in the greeting. */
  async apop(user: string, password: string): Promise<void> {
    const stamp = /<[^<>\s]+>/.exec(this.#greeting)?.[0];
    if (!stamp) throw new Pop3Error('auth', 'Server does not offer APOP', { command: 'APOP' });
    const digest = createHash('md5').update(`${stamp}${password}`, 'utf8').digest('hex');
    await this.#send('APOP', [user, digest], { secret: password }).status;
    await this.capa();
  }

  /**
   * SPA: `AUTH NTLM` (RFC 5034 SASL over POP3) with an NTLMv2 response. A rejection is kind
   * 'auth'; when the server announced domains and the box's Domain is none of them, its code is
   * `SaslCode.NTLM_DOMAIN`, so the Domain setting can be named rather than the password.
   */
  async ntlm(credentials: NtlmCredentials): Promise<void> {
    this.#requireMechanism('NTLM');
    let challenge: NtlmChallenge | undefined;
    let step = 0;
    try {
      await this.#authenticate('NTLM', credentials.password, (text) => {
        step += 1;
        if (step === 1) return negotiateMessage().toString('base64');
        if (step === 2) {
          challenge = parseChallenge(Buffer.from(text, 'base64'));
          return authenticateMessage(challenge, credentials).toString('base64');
        }
        throw new NtlmError('The server asked for more NTLM steps than there are');
      });
    } catch (error) {
      if (
        error instanceof Pop3Error &&
        error.kind === 'auth' &&
        error.code === undefined &&
        challenge &&
        isForeignDomain(challenge, credentials.domain)
      )
        throw new Pop3Error(
          'auth',
          `${error.message} (the server is in domain ${challenge.domains.join(' / ')})`,
          { ...detailsOf(error), code: SaslCode.NTLM_DOMAIN },
        );
      throw error;
    }
    await this.capa();
  }

  /** `AUTH XOAUTH2` with an OAuth2 access token (Gmail, Microsoft 365; Dovecot's oauth2 passdb). */
  async xoauth2(user: string, accessToken: string): Promise<void> {
    this.#requireMechanism('XOAUTH2');
    const initial = xoauth2Response(user, accessToken);
    let failure: { status?: string } | undefined;
    let step = 0;
    try {
      await this.#authenticate('XOAUTH2', accessToken, (text) => {
        step += 1;
        if (step === 1) return initial;
        // A failure comes as a JSON challenge the client must acknowledge with an empty line.
        failure = xoauth2Failure(text) ?? {};
        return '';
      });
    } catch (error) {
      if (error instanceof Pop3Error && error.kind === 'auth' && error.code === undefined) {
        const status = failure?.status ? ` (status ${failure.status})` : '';
        throw new Pop3Error('auth', `${error.message}${status}`, {
          ...detailsOf(error),
          code: SaslCode.OAUTH_REJECTED,
        });
      }
      throw error;
    }
    await this.capa();
  }

  /** Refuses before sending anything when the server's CAPA lists SASL mechanisms without this one. */
  #requireMechanism(mechanism: string): void {
    const offered = this.#capabilities.sasl;
    if (offered.length > 0 && !offered.includes(mechanism))
      throw new Pop3Error(
        'auth',
        `The server does not offer AUTH ${mechanism} (it offers ${offered.join(', ')})`,
        {
          command: 'AUTH',
          commandLine: `AUTH ${mechanism}`,
          code: SaslCode.UNAVAILABLE,
          phase: this.#phase,
        },
      );
  }

  /**
   * One SASL exchange: `AUTH <mechanism>`, then each `+ <base64>` answered by `respond` (its
   * lines are never logged). If `respond` throws, the exchange is cancelled with `*` and fails
   * with that reason once the server has answered.
   */
  async #authenticate(
    mechanism: string,
    secret: string,
    respond: (challenge: string) => string,
  ): Promise<void> {
    const exchange = this.#send('AUTH', [mechanism], { secret, shown: `AUTH ${mechanism}` });
    exchange.continuation = respond;
    await exchange.status;
  }

  async stat(): Promise<Pop3Stat> {
    const text = await this.#send('STAT', []).status;
    const [count, size] = parseTwoNumbers(text, 'STAT');
    return { count, size };
  }

  list(): Promise<Pop3ListEntry[]>;
  list(id: number): Promise<Pop3ListEntry>;
  async list(id?: number): Promise<Pop3ListEntry | Pop3ListEntry[]> {
    if (id !== undefined) {
      const [n, size] = parseTwoNumbers(await this.#send('LIST', [messageId(id)]).status, 'LIST');
      return { id: n, size };
    }
    return (await this.#lines('LIST', [])).map((line) => {
      const [n, size] = parseTwoNumbers(line, 'LIST');
      return { id: n, size };
    });
  }

  uidl(): Promise<Pop3UidlEntry[]>;
  uidl(id: number): Promise<Pop3UidlEntry>;
  async uidl(id?: number): Promise<Pop3UidlEntry | Pop3UidlEntry[]> {
    if (id !== undefined) return parseUidl(await this.#send('UIDL', [messageId(id)]).status);
    return (await this.#lines('UIDL', [])).map(parseUidl);
  }

  /** Headers plus the first `lines` body lines, exact bytes. */
  async top(id: number, lines: number): Promise<Buffer> {
    if (!Number.isSafeInteger(lines) || lines < 0) throw new RangeError(`Bad TOP line count: ${lines}`);
    const exchange = this.#send('TOP', [messageId(id), String(lines)], { multiline: true });
    await exchange.status;
    return collect(exchange.body!);
  }

  /** The whole message, exact bytes (un-stuffed, terminator removed). */
  async retr(id: number): Promise<Buffer> {
    return collect(await this.retrStream(id));
  }

  /**
   * The message as a stream of Buffer chunks with backpressure: the socket is paused while the
   * reader is behind. Read it promptly and to the end (or destroy it): the connection carries the
   * rest of the message before the next response, and a reader idle longer than `timeoutMs` fails it.
   */
  async retrStream(id: number): Promise<Readable> {
    const exchange = this.#send('RETR', [messageId(id)], { multiline: true });
    await exchange.status;
    return exchange.body!;
  }

  /**
   * Retrieves messages in the given order. With PIPELINING, up to `window` RETRs are sent ahead so
   * the server never waits for a round trip; without it, one at a time (RFC 2449 §6.6).
   * Memory stays bounded: only the message being yielded is held whole; each one behind it fills
   * at most one stream buffer before the socket is paused, the rest waits in the kernel and on the
   * server. Breaking out early drains the RETRs already sent, so the session stays usable.
   * While the caller holds a yielded message, a RETR behind it may be waiting for its reader: send
   * no other command and await nothing from this client until the loop goes on or ends.
   */
  retrMany(ids: Iterable<number>, options: RetrManyOptions = {}): AsyncGenerator<Pop3Message> {
    return this.#fetchMany('RETR', ids, [], options.window);
  }

  /** Headers plus `lines` body lines of each message, pipelined and in order like retrMany. */
  topMany(ids: Iterable<number>, lines: number, options: RetrManyOptions = {}): AsyncGenerator<Pop3Message> {
    if (!Number.isSafeInteger(lines) || lines < 0) throw new RangeError(`Bad TOP line count: ${lines}`);
    return this.#fetchMany('TOP', ids, [String(lines)], options.window);
  }

  async *#fetchMany(
    verb: 'RETR' | 'TOP',
    ids: Iterable<number>,
    args: readonly string[],
    requested: number | undefined,
  ): AsyncGenerator<Pop3Message> {
    const pending = [...ids];
    pending.forEach(messageId); // validate all before sending any
    const window = this.#window(requested);
    const inFlight: Array<{ id: number; exchange: Exchange }> = [];
    let next = 0;
    try {
      while (next < pending.length || inFlight.length > 0) {
        while (inFlight.length < window && next < pending.length) {
          const id = pending[next++]!;
          inFlight.push({ id, exchange: this.#send(verb, [messageId(id), ...args], { multiline: true }) });
        }
        const head = inFlight.shift()!;
        await head.exchange.status;
        yield { id: head.id, data: await collect(head.exchange.body!) };
      }
    } finally {
      for (const { exchange } of inFlight) exchange.body?.resume(); // read and discard
    }
  }

  /**
   * Marks messages for deletion, pipelined like retrMany; committed only by a successful quit().
   * Rejects with the first failure (the commands already sent still get their answers).
   */
  async deleMany(ids: Iterable<number>, options: RetrManyOptions = {}): Promise<void> {
    const pending = [...ids];
    pending.forEach(messageId);
    const window = this.#window(options.window);
    const inFlight: Promise<string>[] = [];
    for (const id of pending) {
      if (inFlight.length >= window) await inFlight.shift();
      inFlight.push(this.#send('DELE', [messageId(id)]).status);
    }
    await Promise.all(inFlight);
  }

  /** Commands to keep in flight: as asked (1–64, default 10) with PIPELINING, else 1. */
  #window(requested: number | undefined): number {
    return this.#capabilities.pipelining ? Math.min(Math.max(requested ?? 10, 1), 64) : 1;
  }

  /** Marks for deletion; committed only by a successful quit(). */
  async dele(id: number): Promise<void> {
    await this.#send('DELE', [messageId(id)]).status;
  }

  async rset(): Promise<void> {
    await this.#send('RSET', []).status;
  }

  async noop(): Promise<void> {
    await this.#send('NOOP', []).status;
  }

  /** Ends the session with QUIT; the server commits DELEs when it answers +OK (RFC 1939 §6). */
  async quit(): Promise<void> {
    await this.#send('QUIT', []).status;
    this.#closing = true;
    const socket = this.#socket;
    socket?.end();
    // The server closes after +OK; do not leave the socket to a misbehaving one.
    setTimeout(() => socket?.destroy(), 2_000).unref();
  }

  /** Drops the connection without QUIT: DELEs are NOT committed. Safe to call any time, repeatedly. */
  close(): void {
    this.#closing = true;
    this.#fail(new Pop3Error('aborted', 'POP3 connection closed by the client', { phase: this.#phase }));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  // ── connection ────────────────────────────────────────────────────────────────────────────────

  async #open(): Promise<void> {
    const { signal } = this.#options;
    if (signal?.aborted) throw abortError(signal, 'connect');
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    const connectTimeoutMs = this.#options.connectTimeoutMs ?? 15_000;
    const deadline = setTimeout(() => {
      const message = `POP3 ${this.#host}:${this.#port}: ${this.#phase} not done within ${connectTimeoutMs} ms`;
      this.#fail(new Pop3Error('timeout', message, { phase: this.#phase }));
    }, connectTimeoutMs);
    try {
      const { lookup } = this.#options;
      const raw = net.connect({ host: this.#host, port: this.#port, ...(lookup ? { lookup } : {}) });
      this.#watch(raw);
      this.#socket = raw;
      await this.#until(raw, 'connect');
      raw.setNoDelay(true); // pipelined commands are tiny; do not let Nagle hold them back
      const mode = this.#options.tls ?? 'implicit';
      if (mode === 'implicit') await this.#handshake(raw);
      this.#phase = 'greeting';
      const greeting = this.#expect('greeting');
      this.#attach(this.#socket);
      this.#greeting = await greeting.status;
      this.#phase = 'command';
      if (mode === 'starttls') await this.#starttls();
      await this.capa();
    } catch (error) {
      this.#fail(
        error instanceof Pop3Error ? error : fromSocketError(error, this.#phase, this.#host, this.#port),
      );
      throw this.#failure;
    } finally {
      clearTimeout(deadline);
    }
  }

  async #starttls(): Promise<void> {
    try {
      await this.#send('STLS', []).status;
    } catch (error) {
      if (error instanceof Pop3Error && error.kind === 'server')
        throw new Pop3Error('tls', `Server refused STLS: ${error.serverText ?? ''}`.trim(), {
          command: 'STLS',
          serverText: error.serverText,
          responseCode: error.responseCode,
          phase: 'tls',
        });
      throw error;
    }
    // Anything received after the STLS answer came in clear text and could be injected (RFC 2595 §3.1).
    if (this.#lineLength > 0 || this.#backlog.length > 0)
      throw new Pop3Error('protocol', 'Server sent data after +OK to STLS', {
        command: 'STLS',
        phase: 'tls',
      });
    const plain = this.#socket!;
    plain.removeListener('data', this.#onData);
    await this.#handshake(plain);
    this.#attach(this.#socket);
    this.#phase = 'command';
  }

  /** Wraps the TCP socket in TLS and waits for the handshake (certificate checked by Node). */
  async #handshake(plain: net.Socket): Promise<void> {
    this.#phase = 'tls';
    const { servername, ca, rejectUnauthorized } = this.#options;
    const name = servername ?? (net.isIP(this.#host) ? undefined : this.#host);
    const secure = tls.connect({
      socket: plain,
      host: this.#host,
      ...(name === undefined ? {} : { servername: name }),
      ...(ca === undefined ? {} : { ca: ca as string | Buffer | Array<string | Buffer> }),
      rejectUnauthorized: rejectUnauthorized ?? true,
    });
    this.#watch(secure);
    this.#socket = secure;
    await this.#until(secure, 'secureConnect');
  }

  #watch(socket: net.Socket): void {
    socket.on('error', (error) => this.#fail(fromSocketError(error, this.#phase, this.#host, this.#port)));
    socket.on('close', () => this.#fail(this.#closeError()));
  }

  /** Why the socket closed, as far as we can tell (no-op in #fail if we already know better). */
  #closeError(): Pop3Error {
    const phase = this.#phase;
    if (this.#closing) return new Pop3Error('closed', 'POP3 connection closed', { phase });
    // A plain server (or a proxy) hanging up on our ClientHello: the SSL setting is wrong.
    if (phase === 'tls')
      return new Pop3Error('tls', `TLS with ${this.#host}:${this.#port} failed: closed`, { phase });
    const waiting = this.#queue[0];
    const during = waiting
      ? ` while waiting for ${waiting.verb === 'greeting' ? 'the greeting' : waiting.shown}`
      : '';
    return new Pop3Error('closed', `Server closed the POP3 connection${during}`, {
      phase,
      command: waiting?.verb,
      commandLine: waiting?.shown,
    });
  }

  #attach(socket: net.Socket | undefined): void {
    socket?.on('data', this.#onData);
  }

  /** Resolves on `event`, rejects when the client fails (error, close, timeout, abort) first. */
  #until(socket: net.Socket, event: string): Promise<void> {
    return Promise.race([new Promise<void>((resolve) => socket.once(event, () => resolve())), this.#failed]);
  }

  readonly #onAbort = () => {
    this.#fail(abortError(this.#options.signal!, this.#phase));
  };

  /** Tears everything down once; every waiter gets the same typed error. */
  #fail(error: Pop3Error): void {
    if (this.#failure) return;
    this.#failure = error;
    clearTimeout(this.#idleTimer);
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    this.#rejectFailed(error);
    const queue = this.#queue;
    this.#queue = [];
    this.#backlog = [];
    this.#pausedBy = undefined;
    for (const exchange of queue) {
      exchange.reject(error);
      exchange.body?.destroy(error);
    }
    this.#socket?.destroy();
  }

  // ── sending ───────────────────────────────────────────────────────────────────────────────────

  /** Registers the server greeting as the first expected response. */
  #expect(verb: string): Exchange {
    const exchange = newExchange(verb, `(${verb})`, undefined);
    this.#queue.push(exchange);
    return exchange;
  }

  #send(
    verb: string,
    args: readonly string[],
    opts: { multiline?: boolean; secret?: string; shown?: string } = {},
  ): Exchange {
    const shown =
      opts.shown ??
      (opts.secret === undefined
        ? [verb, ...args].join(' ')
        : `${verb}${verb === 'APOP' ? ` ${args[0]}` : ''} ****`);
    const exchange = newExchange(verb, shown, opts.secret);
    if (opts.multiline) exchange.body = this.#newBody(exchange);
    if (this.#failure) {
      exchange.reject(this.#failure);
      exchange.body?.destroy(this.#failure);
      return exchange;
    }
    // A CR or LF in an argument would smuggle a second command into the session.
    if (args.some((arg) => /[\r\n\0]/.test(arg))) {
      const error = new Pop3Error('protocol', `${shown}: arguments must not contain CR, LF or NUL`, {
        command: verb,
      });
      exchange.reject(error);
      exchange.body?.destroy();
      return exchange;
    }
    this.#queue.push(exchange);
    this.#options.onLog?.('C', shown);
    this.#socket!.write(`${[verb, ...args].join(' ')}\r\n`, 'utf8');
    this.#armTimer();
    return exchange;
  }

  async #lines(verb: string, args: readonly string[]): Promise<string[]> {
    const exchange = this.#send(verb, args, { multiline: true });
    await exchange.status;
    const text = (await collect(exchange.body!)).toString('latin1');
    const lines = text.split('\r\n');
    if (lines.at(-1) === '') lines.pop();
    return lines;
  }

  #newBody(exchange: Exchange): Readable {
    const body = new Readable({
      highWaterMark: BODY_HIGH_WATER_MARK,
      read: () => this.#resume(exchange),
      destroy: (error, callback) => {
        // A reader that gives up still leaves the rest of the message on the wire: keep reading it.
        queueMicrotask(() => this.#resume(exchange));
        callback(error);
      },
    });
    body.on('error', noop); // a body nobody reads yet must not crash the process when the link drops
    return body;
  }

  // ── receiving ─────────────────────────────────────────────────────────────────────────────────

  readonly #onData = (chunk: Buffer) => {
    this.#idleTimer?.refresh();
    if (this.#pausedBy) this.#backlog.push(chunk);
    else this.#consume(chunk);
  };

  #consume(chunk: Buffer): void {
    let rest = chunk;
    while (rest.length > 0 && !this.#failure) {
      if (this.#pausedBy) {
        this.#backlog.unshift(rest);
        return;
      }
      const head = this.#queue[0];
      if (!head) {
        this.#fail(
          new Pop3Error('protocol', `Unexpected data from server: ${preview(rest)}`, { phase: this.#phase }),
        );
        return;
      }
      if (this.#decoder) {
        const { data, consumed, done } = this.#decoder.push(rest);
        rest = rest.subarray(consumed);
        const body = head.body!;
        for (const piece of data) {
          head.received += piece.length;
          if (!body.destroyed) body.push(piece);
        }
        if (done) {
          // Some servers (Dovecot 2.3 for a message whose first line starts with ".") forget to stuff
          // the very first line: we would see an empty message and the rest as garbage. Never hand
          // out an empty message the server itself sized as non-empty.
          if (head.received === 0 && (head.announced ?? 0) > 0) {
            this.#fail(
              new Pop3Error(
                'protocol',
                `${head.shown}: server announced ${head.announced} octets but sent an empty message (unstuffed "." line?)`,
                { command: head.verb, commandLine: head.shown, phase: this.#phase, code: EMPTY_ANNOUNCED },
              ),
            );
            return;
          }
          this.#decoder = undefined;
          this.#queue.shift();
          body.push(null);
        } else if (!body.destroyed && body.readableLength >= body.readableHighWaterMark) {
          // The reader is behind: stop reading the socket until it asks for more (_read → #resume).
          this.#pausedBy = head;
          this.#socket?.pause();
        }
      } else {
        const lf = rest.indexOf(LF);
        if (lf < 0) {
          this.#lineParts.push(rest);
          this.#lineLength += rest.length;
          if (this.#lineLength > MAX_STATUS_LINE)
            this.#fail(
              new Pop3Error('protocol', 'Status line too long: not a POP3 server?', { phase: this.#phase }),
            );
          return;
        }
        const line = Buffer.concat([...this.#lineParts, rest.subarray(0, lf)]);
        this.#lineParts = [];
        this.#lineLength = 0;
        rest = rest.subarray(lf + 1);
        this.#onStatus(head, line);
      }
    }
    this.#armTimer();
  }

  #onStatus(exchange: Exchange, raw: Buffer): void {
    // Status lines are ASCII; latin1 maps every byte, so a stray 8-bit byte cannot throw or vanish.
    const line = raw.toString('latin1').replace(/\r$/, '');
    this.#options.onLog?.('S', line);
    if (exchange.continuation && (line === '+' || line.startsWith('+ '))) {
      this.#continue(exchange, line.slice(2).trim());
      return;
    }
    if (line.startsWith('+OK')) {
      const text = line.slice(3).trimStart();
      if (exchange.body) {
        this.#decoder = new MultilineDecoder();
        const octets = /^(\d+) octets/i.exec(text)?.[1];
        if (exchange.verb === 'RETR' && octets) exchange.announced = Number(octets);
      } else {
        this.#queue.shift();
      }
      exchange.resolve(text);
      return;
    }
    if (line.startsWith('-ERR')) {
      this.#queue.shift();
      exchange.body?.destroy(); // a -ERR has no body; nobody holds this stream yet
      let { responseCode, text } = splitResponseCode(line.slice(4).trimStart());
      if (exchange.secret) text = text.split(exchange.secret).join('****');
      const kind = exchange.verb === 'greeting' ? 'server' : kindOfErr(exchange.verb, responseCode);
      const code = responseCode === undefined ? '' : `[${responseCode}] `;
      if (exchange.cancelled) {
        exchange.reject(exchange.cancelled);
        return;
      }
      exchange.reject(
        new Pop3Error(kind, `POP3 ${exchange.shown} failed: ${code}${text}`, {
          command: exchange.verb,
          commandLine: exchange.shown,
          serverText: text,
          responseCode,
          phase: this.#phase,
        }),
      );
      return;
    }
    // Not POP3: e.g. an IMAP ("* OK") or SMTP ("220") server on that port, or TLS bytes read as text.
    this.#fail(
      new Pop3Error('protocol', `Not a POP3 response to ${exchange.shown}: ${preview(raw)}`, {
        command: exchange.verb,
        commandLine: exchange.shown,
        phase: this.#phase,
      }),
    );
  }

  /** Sends the client's next SASL line (masked in the trace), or `*` to cancel. */
  #continue(exchange: Exchange, challenge: string): void {
    let reply: string;
    try {
      reply = exchange.continuation!(challenge);
    } catch (error) {
      exchange.continuation = undefined;
      exchange.cancelled = new Pop3Error(
        error instanceof NtlmError ? 'protocol' : 'auth',
        `POP3 ${exchange.shown}: ${error instanceof Error ? error.message : String(error)}`,
        {
          command: exchange.verb,
          commandLine: exchange.shown,
          phase: this.#phase,
          ...(error instanceof NtlmError ? { code: SaslCode.NTLM_PROTOCOL } : {}),
        },
      );
      reply = '*';
    }
    this.#options.onLog?.('C', reply === '*' || reply === '' ? reply : '****');
    this.#socket!.write(`${reply}\r\n`, 'latin1');
    this.#armTimer();
  }

  #resume(exchange: Exchange): void {
    if (this.#pausedBy !== exchange || this.#failure) return;
    this.#pausedBy = undefined;
    this.#idleTimer?.refresh();
    while (this.#backlog.length > 0 && !this.#pausedBy && !this.#failure)
      this.#consume(this.#backlog.shift()!);
    if (!this.#pausedBy) this.#socket?.resume();
  }

  /** The idle timer runs while anything is outstanding; data from the server or a reading consumer resets it. */
  #armTimer(): void {
    if (this.#queue.length === 0 || this.#failure) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
      return;
    }
    if (this.#idleTimer) {
      this.#idleTimer.refresh();
      return;
    }
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      const head = this.#queue[0];
      if (!head) return;
      const why = this.#pausedBy
        ? `the reader of ${head.shown} did not read for ${this.#timeoutMs} ms`
        : `no answer to ${head.shown} within ${this.#timeoutMs} ms`;
      this.#fail(
        new Pop3Error('timeout', `POP3 ${this.#host}:${this.#port}: ${why}`, {
          command: head.verb,
          commandLine: head.shown,
          phase: this.#phase,
        }),
      );
    }, this.#timeoutMs);
    this.#idleTimer.unref?.();
  }
}

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────

function detailsOf(error: Pop3Error) {
  return {
    command: error.command,
    commandLine: error.commandLine,
    serverText: error.serverText,
    responseCode: error.responseCode,
    phase: error.phase,
  };
}

function newExchange(verb: string, shown: string, secret: string | undefined): Exchange {
  let resolve: (text: string) => void = noop;
  let reject: (error: Pop3Error) => void = noop;
  const status = new Promise<string>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  status.catch(noop); // pipelined exchanges may fail with nobody awaiting them yet
  return { verb, shown, secret, status, resolve, reject, body: undefined, announced: undefined, received: 0 };
}

async function collect(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

function messageId(id: number): string {
  if (!Number.isSafeInteger(id) || id < 1) throw new RangeError(`Bad POP3 message number: ${id}`);
  return String(id);
}

/** `"2 320 …"` → [2, 320]; STAT, LIST n and LIST lines all start with two numbers. */
function parseTwoNumbers(text: string, command: string): [number, number] {
  const match = /^(\d+)\s+(\d+)/.exec(text.trim());
  if (!match)
    throw new Pop3Error('protocol', `Malformed ${command} answer: ${JSON.stringify(text)}`, { command });
  return [Number(match[1]), Number(match[2])];
}

function parseUidl(text: string): Pop3UidlEntry {
  const match = /^(\d+)\s+(\S+)/.exec(text.trim());
  if (!match)
    throw new Pop3Error('protocol', `Malformed UIDL answer: ${JSON.stringify(text)}`, { command: 'UIDL' });
  return { id: Number(match[1]), uid: match[2]! };
}

export function parseCapabilities(lines: readonly string[]): Pop3Capabilities {
  const words = new Map<string, string[]>();
  for (const line of lines) {
    const [name, ...args] = line.trim().split(/\s+/);
    if (name) words.set(name.toUpperCase(), args);
  }
  return {
    raw: lines,
    pipelining: words.has('PIPELINING'),
    uidl: words.has('UIDL'),
    top: words.has('TOP'),
    user: words.has('USER'),
    stls: words.has('STLS'),
    respCodes: words.has('RESP-CODES'),
    authRespCode: words.has('AUTH-RESP-CODE'),
    sasl: (words.get('SASL') ?? []).map((mechanism) => mechanism.toUpperCase()),
    implementation: words.get('IMPLEMENTATION')?.join(' '),
  };
}

function abortError(signal: AbortSignal, phase: Pop3Phase): Pop3Error {
  return new Pop3Error('aborted', 'POP3 operation aborted', { phase, cause: signal.reason });
}

function preview(bytes: Buffer): string {
  return JSON.stringify(bytes.subarray(0, 40).toString('latin1'));
}
