/**
 * An IMAP mailbox as a MailSession (lib/inbox/session.ts), on imapflow: one folder of one account,
 * selected for the whole session. The import pipeline then works as with POP3:
 *   - uid = `<UIDVALIDITY>:<UID>`: a new UIDVALIDITY makes every message new to the markers, and
 *     the pipeline's content-hash markers recognise what it already has (never imported twice,
 *     never deleted unless its exact bytes are stored);
 *   - size = RFC822.SIZE, exact bytes = BODY.PEEK[] (never BINARY: the server would decode), the
 *     header pass (topMany) = BODY.PEEK[HEADER], receivedAt = INTERNALDATE;
 *   - after a durable store, `afterImport` says what happens: keep (untouched; EXAMINE, read-only),
 *     mark-read (\Seen, keepMany), move (UID MOVE to `moveToFolder`), delete (\Deleted + UID EXPUNGE).
 * Every imapflow error is mapped to ImapError (./errors.ts), so a refused FETCH is that message's
 * failure and a cut connection fails the run. Log-in: password (AUTHENTICATE PLAIN/LOGIN, or
 * LOGIN), XOAUTH2/OAUTHBEARER with an access token, or SPA = NTLM (./ntlm.ts; imapflow has none).
 */
import type { LookupFunction } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import type { NtlmCredentials } from '#lib/auth-mech/ntlm';
import type { MailSession, SessionMessage, SessionWindow } from '#lib/inbox/session';
import { SaslCode } from '#lib/pop3/client';
import { ImapError, toImapError } from './errors.ts';
import { NtlmImapFlow } from './ntlm.ts';

export type AfterImport = 'keep' | 'mark-read' | 'move' | 'delete';

export type ImapLogin =
  | { readonly method: 'password'; readonly userName: string; readonly password: string }
  | { readonly method: 'oauth2'; readonly userName: string; readonly accessToken: string }
  | { readonly method: 'ntlm'; readonly credentials: NtlmCredentials };

export interface ImapSessionOptions {
  readonly host: string;
  readonly port: number;
  /** true: IMAPS (TLS from the first byte); false: plain, upgraded with STARTTLS when offered. */
  readonly secure: boolean;
  readonly rejectUnauthorized?: boolean;
  readonly ca?: string | Buffer | undefined;
  readonly lookup?: LookupFunction | undefined;
  readonly login: ImapLogin;
  /** The folder read; default INBOX. */
  readonly folder?: string | undefined;
  /** Default keep. */
  readonly afterImport?: AfterImport | undefined;
  /** Where `move` puts imported mail (required with move). */
  readonly moveToFolder?: string | undefined;
  /** DNS + TCP + TLS + greeting. Default 15 s. */
  readonly connectTimeoutMs?: number;
  /** Longest silence on the connection while a command waits. Default 60 s. */
  readonly timeoutMs?: number;
  /** Only log in and open the folder (the connection test); no listing. */
  readonly probeOnly?: boolean;
}

/** Messages per FETCH command when reading whole messages or headers. */
const FETCH_CHUNK = 16;
/** Bytes per partial FETCH of a message streamed (never held whole). */
const STREAM_CHUNK = 512 * 1024;

interface Entry {
  uid: number;
  size: number | undefined;
  internalDate: number | undefined;
  seen: boolean;
}

/** A compact UID set (`1:5,9,12:14`), so one command names thousands of messages briefly. */
export function uidSet(uids: readonly number[]): string {
  const sorted = [...new Set(uids)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}:${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

export class ImapSession implements MailSession {
  #client: ImapFlow;
  readonly #options: ImapSessionOptions;
  readonly #entries: Entry[] = [];
  #uidValidity = '0';
  #exists = 0;
  #lastError: unknown;
  readonly folder: string;
  readonly afterImport: AfterImport;
  capabilities: { raw: string[]; top: boolean } = { raw: [], top: true };

  private constructor(client: ImapFlow, options: ImapSessionOptions) {
    this.#client = client;
    this.#options = options;
    this.folder = options.folder?.trim() || 'INBOX';
    this.afterImport = options.afterImport ?? 'keep';
  }

  /** Connects, logs in and opens the folder (read-only when nothing is ever changed). */
  static async connect(options: ImapSessionOptions): Promise<ImapSession> {
    const session = new ImapSession(
      await ImapSession.#logIn(options, (error) => {
        session.#lastError = error;
      }),
      options,
    );
    try {
      session.capabilities = { raw: [...session.#client.capabilities.keys()], top: true };
      await session.#open();
      if (!options.probeOnly) await session.#list();
      return session;
    } catch (error) {
      session.#client.close();
      throw error;
    }
  }

  /** A new imapflow connection, logged in. */
  static async #logIn(options: ImapSessionOptions, onError: (error: unknown) => void): Promise<ImapFlow> {
    const login = options.login;
    const base: ImapFlowOptions = {
      host: options.host,
      port: options.port,
      secure: options.secure,
      tls: {
        rejectUnauthorized: options.rejectUnauthorized ?? true,
        ...(options.ca ? { ca: options.ca } : {}),
        ...(options.lookup ? { lookup: options.lookup } : {}),
      },
      logger: false,
      // What the pipeline reads must be the server's bytes: no BINARY (decoded) fetches, no
      // extensions that change how answers look, no IDLE between commands.
      disableBinary: true,
      disableAutoIdle: true,
      disableAutoEnable: true,
      connectionTimeout: options.connectTimeoutMs ?? 15_000,
      greetingTimeout: options.connectTimeoutMs ?? 15_000,
      socketTimeout: options.timeoutMs ?? 60_000,
      ...(login.method === 'password' ? { auth: { user: login.userName, pass: login.password } } : {}),
      ...(login.method === 'oauth2'
        ? { auth: { user: login.userName, accessToken: login.accessToken } }
        : {}),
    };
    const client = login.method === 'ntlm' ? new NtlmImapFlow(base, login.credentials) : new ImapFlow(base);
    // Every emitter has an error listener: a socket error after connect fails the command waiting.
    client.on('error', onError);
    try {
      await client.connect();
      return client;
    } catch (error) {
      client.close();
      const where = { host: options.host, port: options.port };
      const mapped = toImapError(error, { ...where, phase: 'greeting', command: 'LOGIN', login: true });
      // A refused token: the sign-in is what to redo (lib/pop3/diagnose.ts reads the code).
      if (login.method === 'oauth2' && mapped.kind === 'auth' && !mapped.code)
        throw new ImapError('auth', mapped.message, {
          command: 'AUTHENTICATE',
          serverText: mapped.serverText,
          code: SaslCode.OAUTH_REJECTED,
          cause: error,
        });
      throw mapped;
    }
  }

  /**
   * Replaces a connection the server dropped while listing (Dovecot ends the session when it
   * cannot read a message): the same folder must come back with the same UIDVALIDITY.
   */
  async #reconnect(): Promise<void> {
    this.#client.close();
    const before = this.#uidValidity;
    this.#client = await ImapSession.#logIn(this.#options, (error) => {
      this.#lastError = error;
    });
    await this.#open();
    if (this.#uidValidity !== before)
      throw new ImapError('closed', 'The folder changed (a new UIDVALIDITY) while it was being listed.', {
        command: 'SELECT',
      });
  }

  /** Messages in the folder when it was opened. */
  get exists(): number {
    return this.#exists;
  }

  get uidValidity(): string {
    return this.#uidValidity;
  }

  async #open(): Promise<void> {
    const readOnly = this.afterImport === 'keep';
    let mailbox: Awaited<ReturnType<ImapFlow['mailboxOpen']>>;
    try {
      mailbox = await this.#client.mailboxOpen(this.folder, { readOnly });
    } catch (error) {
      const mapped = this.#error(error, 'SELECT');
      if (mapped.kind === 'folder' || mapped.kind === 'server')
        throw new ImapError('folder', `The folder "${this.folder}" was not found on the server.`, {
          command: 'SELECT',
          serverText: mapped.serverText,
          responseCode: mapped.responseCode,
          folder: this.folder,
          field: 'connection.folder',
          cause: error,
        });
      throw mapped;
    }
    this.#uidValidity = String(mailbox.uidValidity);
    this.#exists = mailbox.exists;
    if (this.afterImport === 'move') await this.#checkMoveFolder();
  }

  async #checkMoveFolder(): Promise<void> {
    const target = this.#options.moveToFolder?.trim();
    if (!target)
      throw new ImapError('folder', 'Imported mail is to be moved, but no folder to move it to is set.', {
        field: 'connection.moveToFolder',
      });
    try {
      await this.#client.status(target, { messages: true });
    } catch (error) {
      const mapped = this.#error(error, 'STATUS');
      if (mapped.kind !== 'server' && mapped.kind !== 'folder') throw mapped;
      throw new ImapError(
        'folder',
        `The folder "${target}" to move imported mail to was not found on the server.`,
        {
          command: 'STATUS',
          serverText: mapped.serverText,
          folder: target,
          field: 'connection.moveToFolder',
          cause: error,
        },
      );
    }
  }

  /**
   * UIDs, flags and INTERNALDATE of every message (these need no message read), then the sizes.
   * A server that cannot size a message (Dovecot reads the file) may end the session: the sizes
   * had so far are kept, the session is opened again, and a message without a size is streamed
   * alone, so that its failure is charged to it (the pipeline quarantines it after three runs).
   */
  async #list(): Promise<void> {
    if (this.#exists === 0) return;
    try {
      for await (const m of this.#client.fetch(
        '1:*',
        { uid: true, internalDate: true, flags: true },
        { uid: false },
      )) {
        const date = m.internalDate === undefined ? Number.NaN : new Date(m.internalDate).getTime();
        this.#entries.push({
          uid: m.uid,
          size: undefined,
          internalDate: Number.isNaN(date) ? undefined : date,
          seen: m.flags?.has('\\Seen') ?? false,
        });
      }
    } catch (error) {
      throw this.#error(error, 'FETCH');
    }
    // Server order is UID order (what arrived first is taken first).
    this.#entries.sort((a, b) => a.uid - b.uid);
    const byUid = new Map(this.#entries.map((e) => [e.uid, e]));
    try {
      for await (const m of this.#client.fetch('1:*', { uid: true, size: true }, { uid: false })) {
        const entry = byUid.get(m.uid);
        if (entry) entry.size = m.size;
      }
    } catch (error) {
      const mapped = this.#error(error, 'FETCH');
      if (mapped.kind !== 'server' && mapped.kind !== 'closed') throw mapped;
      if (!this.#client.usable) await this.#reconnect();
    }
  }

  #error(error: unknown, command: string): ImapError {
    const where = { host: this.#options.host, port: this.#options.port, command };
    const mapped = toImapError(error, where);
    // A refusal after the connection went away is the connection's failure, not the server's.
    if (mapped.kind === 'server' && !this.#client.usable) {
      const lost = this.#lastError === undefined ? undefined : toImapError(this.#lastError, where);
      return lost && lost.kind !== 'server'
        ? lost
        : new ImapError('closed', `The connection was lost during ${command}.`, { command, cause: error });
    }
    return mapped;
  }

  #entry(id: number): Entry {
    const entry = this.#entries[id - 1];
    if (!entry)
      throw new ImapError('server', `There is no message ${id} in this session.`, { command: 'FETCH' });
    return entry;
  }

  async uidl() {
    return this.#entries.map((e, i) => ({ id: i + 1, uid: `${this.#uidValidity}:${e.uid}` }));
  }

  async list() {
    return this.#entries.flatMap((e, i) => (e.size === undefined ? [] : [{ id: i + 1, size: e.size }]));
  }

  async receivedAt(ids: readonly number[]): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const id of ids) {
      const t = this.#entries[id - 1]?.internalDate;
      if (t !== undefined) out.set(id, t);
    }
    return out;
  }

  /**
   * One FETCH for these messages: the source (or header block) of each by UID, as far as the
   * server got; its failure, if any, beside what came before it (answers arrive in order).
   */
  async #fetchChunk(
    ids: number[],
    query: 'source' | 'headers',
  ): Promise<{ got: Map<number, Buffer>; error?: ImapError }> {
    const uids = ids.map((id) => this.#entry(id).uid);
    const got = new Map<number, Buffer>();
    try {
      for await (const m of this.#client.fetch(
        uidSet(uids),
        query === 'source' ? { uid: true, source: true } : { uid: true, headers: true },
        { uid: true },
      )) {
        const data = query === 'source' ? m.source : m.headers;
        if (data) got.set(m.uid, data);
      }
    } catch (error) {
      return { got, error: this.#error(error, 'FETCH') };
    }
    return { got };
  }

  /**
   * Fetches in chunks of FETCH_CHUNK (the next chunk asked while this one is taken), yields in
   * order. Where a chunk's answer stops, the failure belongs to the first message it lacks: a
   * refusal (NO) is asked again message by message, so it is that one message's; a lost connection
   * ends the generator there (the pipeline charges that message). A message missing from a good
   * answer (expunged meanwhile) is refused.
   */
  async *#fetchMany(ids: Iterable<number>, query: 'source' | 'headers'): AsyncGenerator<SessionMessage> {
    const all = [...ids];
    const chunks: number[][] = [];
    for (let i = 0; i < all.length; i += FETCH_CHUNK) chunks.push(all.slice(i, i + FETCH_CHUNK));
    const ask = (chunk: number[] | undefined) => (chunk ? this.#fetchChunk(chunk, query) : undefined);
    let next = ask(chunks[0]);
    for (let c = 0; c < chunks.length; c++) {
      const chunk = chunks[c]!;
      const { got, error } = await next!;
      next = error ? undefined : ask(chunks[c + 1]);
      for (const [i, id] of chunk.entries()) {
        const data = got.get(this.#entry(id).uid);
        if (data) {
          yield { id, data };
          continue;
        }
        if (!error) throw this.#refused(id);
        if (error.kind !== 'server') throw error;
        // One by one from here: what the server sends is yielded, the first refusal ends it.
        for (const rest of chunk.slice(i)) {
          const one = await this.#fetchChunk([rest], query);
          const alone = one.got.get(this.#entry(rest).uid);
          if (!alone)
            throw !one.error || one.error.kind === 'server' ? this.#refused(rest, one.error) : one.error;
          yield { id: rest, data: alone };
        }
        break;
      }
      next ??= ask(chunks[c + 1]);
    }
  }

  #refused(id: number, cause?: ImapError): ImapError {
    const uid = this.#entry(id).uid;
    return new ImapError(
      'server',
      cause
        ? `The server refused to send message UID ${uid}: ${cause.serverText ?? cause.message}`
        : `The server did not send message UID ${uid} (it may have been deleted meanwhile).`,
      { command: 'FETCH', serverText: cause?.serverText, responseCode: cause?.responseCode, cause },
    );
  }

  topMany(ids: Iterable<number>, _lines: number, _options?: SessionWindow): AsyncGenerator<SessionMessage> {
    return this.#fetchMany(ids, 'headers');
  }

  retrMany(ids: Iterable<number>, _options?: SessionWindow): AsyncGenerator<SessionMessage> {
    return this.#fetchMany(ids, 'source');
  }

  /** The message in partial FETCHes of STREAM_CHUNK bytes, each asked when the reader wants more. */
  async retrStream(id: number): Promise<Readable> {
    const { uid } = this.#entry(id);
    let offset = 0;
    let ended = false;
    const out = new PassThrough({ highWaterMark: STREAM_CHUNK });
    const pump = async () => {
      while (!ended) {
        let data: Buffer | undefined;
        try {
          const m = await this.#client.fetchOne(
            String(uid),
            { uid: true, source: { start: offset, maxLength: STREAM_CHUNK } },
            { uid: true },
          );
          data = m && Buffer.isBuffer(m.source) ? m.source : undefined;
        } catch (error) {
          throw this.#error(error, 'FETCH');
        }
        if (data === undefined && offset === 0) throw this.#refused(id);
        // No FETCH answer at all part-way (the message went, or the server dropped it): a cut, not
        // the end; never stored as complete. (RFC822.SIZE is not trusted for this: Exchange's is an
        // estimate.) An empty answer is the end of a message that filled its last chunk exactly.
        // NIL exactly at a chunk boundary is the end of a message that filled its last chunk
        // (some servers answer NIL, not "", for a range past the end).
        if (data === undefined && offset % STREAM_CHUNK === 0) break;
        if (data === undefined)
          throw new ImapError(
            'server',
            `The server stopped sending message UID ${uid} after ${offset} bytes.`,
            { command: 'FETCH' },
          );
        if (data.length === 0) break;
        offset += data.length;
        // The reader went away while this FETCH was out: stop, nothing will drain.
        if (ended || out.destroyed) break;
        if (!out.write(data))
          await new Promise<void>((resolve) => {
            // Settles when the reader wants more, or is gone (the pump then stops: `ended`).
            out.once('drain', resolve);
            out.once('close', resolve);
          });
        if (data.length < STREAM_CHUNK) break;
      }
    };
    // A refusal ends the stream with a FETCH ImapError: the pipeline makes it this message's failure.
    pump().then(
      () => {
        ended = true;
        out.end();
      },
      (error: unknown) => {
        ended = true;
        out.destroy(error instanceof ImapError ? error : this.#error(error, 'FETCH'));
      },
    );
    out.on('close', () => {
      ended = true;
    });
    return out;
  }

  /** Moves or deletes (by the box's afterImport) these stored messages; by UID only. */
  async deleMany(ids: Iterable<number>, _options?: SessionWindow): Promise<void> {
    const uids = [...ids].map((id) => this.#entry(id).uid);
    if (uids.length === 0) return;
    if (this.afterImport === 'move') {
      const target = this.#options.moveToFolder ?? '';
      const ok = await this.#client.messageMove(uidSet(uids), target, { uid: true }).catch((e: unknown) => {
        throw this.#error(e, 'MOVE');
      });
      if (!ok) throw this.#failed('MOVE', `Moving imported mail to "${target}" was refused.`);
      return;
    }
    if (this.afterImport !== 'delete') return;
    // \Deleted + UID EXPUNGE of exactly these (imapflow uses UID EXPUNGE with UIDPLUS).
    const ok = await this.#client.messageDelete(uidSet(uids), { uid: true }).catch((e: unknown) => {
      throw this.#error(e, 'EXPUNGE');
    });
    if (!ok) throw this.#failed('EXPUNGE', 'Deleting imported mail was refused.');
  }

  /** Marks stored messages \Seen (mark-read); nothing for keep. Those already seen are left alone. */
  async keepMany(ids: Iterable<number>): Promise<void> {
    if (this.afterImport !== 'mark-read') return;
    const entries = [...ids].map((id) => this.#entry(id)).filter((e) => !e.seen);
    if (entries.length === 0) return;
    const ok = await this.#client
      .messageFlagsAdd(uidSet(entries.map((e) => e.uid)), ['\\Seen'], { uid: true })
      .catch((e: unknown) => {
        throw this.#error(e, 'STORE');
      });
    if (!ok) throw this.#failed('STORE', 'Marking imported mail as read was refused.');
    for (const e of entries) e.seen = true;
  }

  /** imapflow answers false for a refused STORE/MOVE/EXPUNGE: the server's refusal, or a lost line. */
  #failed(command: string, message: string): ImapError {
    if (!this.#client.usable)
      return new ImapError('closed', `The connection was lost during ${command}.`, { command });
    return new ImapError('server', message, { command });
  }

  async quit(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#client.logout(),
        new Promise((resolve) => {
          timer = setTimeout(resolve, this.#options.timeoutMs ?? 60_000);
        }),
      ]);
    } catch {
      // Moves, deletions and flags are applied as each command is answered (IMAP has no commit):
      // a LOGOUT that fails or goes unanswered loses nothing.
    } finally {
      clearTimeout(timer);
      this.#client.close();
    }
  }

  close(): void {
    this.#client.close();
  }
}
