/**
 * A Microsoft Graph mailbox as a MailSession (lib/inbox/session.ts), so Exchange Online goes
 * through the same store-first pipeline as POP3:
 * - the listing is the delta query of the inbox, from where the box's last delta link left off
 *   (all of the inbox the first time), paged with `@odata.nextLink` until `@odata.deltaLink` (or
 *   until `maxListed` messages, when the next link is where the next run carries on);
 * - `uid` is the Graph message id; the bytes are the raw MIME (`$value`), byte for byte;
 * - after durable store: keep, mark read (PATCH isRead), move to a folder (POST move) or delete;
 * - quit() advances the box's delta link only when every message the listing covered is durably
 *   handled (its import marker says so, and it was removed or marked as the box says), so a run
 *   cut short lists the rest again and the markers skip what is done.
 */
import type { Readable } from 'node:stream';
import type { MailSession, SessionMessage, SessionWindow } from '#lib/inbox/session';
import { Pop3Error } from '#lib/pop3/errors';
import type { GraphClient } from './client.ts';
import { GraphError } from './errors.ts';

/** Where the box's delta query starts and what its messages' import markers say. */
export interface DeltaCursor {
  /** The link to start from; undefined: the whole inbox. */
  load(): Promise<string | undefined>;
  save(link: string): Promise<void>;
  /** Drops a link Graph no longer knows (sync state expired): the next listing starts over. */
  reset(): Promise<void>;
  /** The import marker state of each uid that has one (failed ones with their attempts). */
  markers(uids: string[]): Promise<Map<string, { state: string; attempts?: number | undefined }>>;
}

export interface GraphSessionOptions {
  readonly client: GraphClient;
  /** The mailbox: its primary SMTP address (or user id). */
  readonly mailbox: string;
  readonly cursor: DeltaCursor;
  /** The box leaves mail on the server (afterImport keep, or mark-read with `markRead`). */
  readonly leaveOnServer: boolean;
  readonly markRead?: boolean | undefined;
  /** Not left on the server: moved to this folder (display name) instead of deleted. */
  readonly moveToFolder?: string | undefined;
  /** Messages one listing covers at most (the rest: the next run). Default 2,000. */
  readonly maxListed?: number;
  /** Delta page size asked for (Prefer: odata.maxpagesize). Default 100. */
  readonly pageSize?: number;
  /** A marker state that is final even when `failed` (the pipeline's MAX_ATTEMPTS). */
  readonly maxAttempts?: number;
}

interface DeltaMessage {
  id: string;
  receivedDateTime?: string;
  isRead?: boolean;
  '@removed'?: unknown;
}

interface DeltaPage {
  value?: DeltaMessage[];
  '@odata.nextLink'?: string;
  '@odata.deltaLink'?: string;
}

interface Entry {
  id: number;
  uid: string;
  receivedAt?: number;
  isRead: boolean;
}

/** Graph's words for a delta link it no longer knows. */
const SYNC_STATE_GONE = new Set([
  'SyncStateNotFound',
  'SyncStateInvalid',
  'ErrorInvalidSyncStateData',
  'resyncRequired',
]);

export class GraphSession implements MailSession {
  readonly capabilities = { raw: ['GRAPH', 'DELTA'], top: false };
  readonly #o: GraphSessionOptions;
  readonly #user: string;
  #entries: Entry[] | undefined;
  #byNumber = new Map<number, Entry>();
  /** Where the next listing starts once this one is handled. */
  #next: string | undefined;
  readonly #removed = new Set<number>();
  readonly #kept = new Set<number>();
  #folderId: Promise<string> | undefined;

  constructor(options: GraphSessionOptions) {
    this.#o = options;
    this.#user = `/users/${encodeURIComponent(options.mailbox)}`;
  }

  /** Opens the session: the first delta pages are read here, so a login or mailbox fault shows at once. */
  static async open(options: GraphSessionOptions): Promise<GraphSession> {
    const session = new GraphSession(options);
    await session.#list();
    return session;
  }

  async uidl(): Promise<{ id: number; uid: string }[]> {
    return (await this.#list()).map((e) => ({ id: e.id, uid: e.uid }));
  }

  /** Graph does not tell a message's MIME size before it is fetched: every message is streamed. */
  async list(): Promise<{ id: number; size: number }[]> {
    return [];
  }

  async receivedAt(ids: readonly number[]): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const id of ids) {
      const at = this.#byNumber.get(id)?.receivedAt;
      if (at !== undefined) out.set(id, at);
    }
    return out;
  }

  // biome-ignore lint/correctness/useYield: Graph has no header-only fetch; capabilities.top is false.
  async *topMany(): AsyncGenerator<SessionMessage> {
    throw new GraphError('protocol', 'Microsoft Graph gives no header-only copy of a message (TOP).');
  }

  async *retrMany(ids: Iterable<number>, options: SessionWindow = {}): AsyncGenerator<SessionMessage> {
    const list = [...ids];
    const window = Math.min(Math.max(options.window ?? 4, 1), 8);
    const pending: Promise<Buffer>[] = [];
    let started = 0;
    const start = () => {
      const id = list[started++]!;
      const p = this.#o.client.bytes(this.#valuePath(id)).catch((error: unknown) => {
        throw this.#fetchError(id, error);
      });
      // Settled in order below; a rejection waiting its turn is not unhandled.
      p.catch(() => {});
      pending.push(p);
    };
    try {
      for (let i = 0; i < list.length; i++) {
        while (started < list.length && pending.length < window) start();
        const data = await pending.shift()!;
        yield { id: list[i]!, data };
      }
    } finally {
      await Promise.allSettled(pending);
    }
  }

  async retrStream(id: number): Promise<Readable> {
    try {
      return await this.#o.client.stream(this.#valuePath(id));
    } catch (error) {
      throw this.#fetchError(id, error);
    }
  }

  /** Moves (moveToFolder) or deletes the stored messages; one already gone counts as removed. */
  async deleMany(ids: Iterable<number>, options: SessionWindow = {}): Promise<void> {
    const folder = this.#o.moveToFolder;
    const destinationId = folder ? await this.#folder(folder) : undefined;
    await this.#each([...ids], options.window ?? 4, async (id) => {
      const path = `${this.#user}/messages/${encodeURIComponent(this.#entry(id).uid)}`;
      try {
        if (destinationId)
          await this.#o.client.json(`${path}/move`, { method: 'POST', body: { destinationId } });
        else await this.#o.client.json(path, { method: 'DELETE' });
      } catch (error) {
        if (!(error instanceof GraphError && error.details.status === 404)) throw error;
      }
      this.#removed.add(id);
    });
  }

  /** Marks the stored messages read when the box says so (those already read are left alone). */
  async keepMany(ids: Iterable<number>): Promise<void> {
    if (!this.#o.markRead) return;
    await this.#each([...ids], 4, async (id) => {
      const e = this.#entry(id);
      if (!e.isRead) {
        try {
          await this.#o.client.json(`${this.#user}/messages/${encodeURIComponent(e.uid)}`, {
            method: 'PATCH',
            body: { isRead: true },
          });
        } catch (error) {
          if (!(error instanceof GraphError && error.details.status === 404)) throw error;
        }
        e.isRead = true;
      }
      this.#kept.add(id);
    });
  }

  /** Advances the delta link when everything this listing covered is durably handled. */
  async quit(): Promise<void> {
    const next = this.#next;
    const entries = this.#entries;
    this.#o.client.close();
    if (!next || !entries) return;
    if (await this.#allHandled(entries)) await this.#o.cursor.save(next);
  }

  close(): void {
    this.#o.client.close();
  }

  async #allHandled(entries: Entry[]): Promise<boolean> {
    const markers = await this.#o.cursor.markers(entries.map((e) => e.uid));
    const maxAttempts = this.#o.maxAttempts ?? 3;
    return entries.every((e) => {
      const m = markers.get(e.uid);
      if (!m) return false;
      if (m.state === 'failed') return (m.attempts ?? 0) >= maxAttempts;
      if (m.state !== 'imported' && m.state !== 'duplicate') return true;
      if (!this.#o.leaveOnServer) return this.#removed.has(e.id);
      return !this.#o.markRead || e.isRead || this.#kept.has(e.id);
    });
  }

  async #list(): Promise<Entry[]> {
    if (this.#entries) return this.#entries;
    let link = await this.#o.cursor.load();
    let pages: DeltaPage[];
    try {
      pages = await this.#pages(link);
    } catch (error) {
      if (!(link && error instanceof GraphError && isSyncStateGone(error))) throw error;
      // The delta link expired: start over with the whole inbox (the markers skip what is imported).
      await this.#o.cursor.reset();
      link = undefined;
      pages = await this.#pages(undefined);
    }
    const byUid = new Map<string, Entry>();
    for (const page of pages)
      for (const m of page.value ?? []) {
        if (typeof m.id !== 'string' || !m.id) continue;
        // A later page's word wins: removed after all, or changed again.
        if (m['@removed'] !== undefined) {
          byUid.delete(m.id);
          continue;
        }
        const at = m.receivedDateTime ? Date.parse(m.receivedDateTime) : Number.NaN;
        const existing = byUid.get(m.id);
        byUid.set(m.id, {
          id: 0,
          uid: m.id,
          isRead: m.isRead ?? existing?.isRead ?? false,
          ...(Number.isFinite(at) ? { receivedAt: at } : {}),
        });
      }
    const entries = [...byUid.values()];
    entries.forEach((e, i) => {
      e.id = i + 1;
    });
    this.#entries = entries;
    this.#byNumber = new Map(entries.map((e) => [e.id, e]));
    return entries;
  }

  /** Delta pages from `link` (else the start) until the delta link, or until maxListed messages. */
  async #pages(link: string | undefined): Promise<DeltaPage[]> {
    const maxListed = this.#o.maxListed ?? 2000;
    const headers = { prefer: `odata.maxpagesize=${this.#o.pageSize ?? 100}` };
    let url =
      link ??
      `${this.#user}/mailFolders/inbox/messages/delta?$select=${encodeURIComponent('id,receivedDateTime,isRead')}`;
    const pages: DeltaPage[] = [];
    let count = 0;
    for (;;) {
      const page = await this.#o.client.json<DeltaPage>(url, { headers });
      pages.push(page);
      count += page.value?.length ?? 0;
      const delta = page['@odata.deltaLink'];
      const nextLink = page['@odata.nextLink'];
      if (delta) {
        this.#next = this.#o.client.url(delta).href;
        return pages;
      }
      if (!nextLink)
        throw new GraphError(
          'protocol',
          'Microsoft Graph ended a delta page with neither a next link nor a delta link.',
        );
      url = this.#o.client.url(nextLink).href;
      if (count >= maxListed) {
        // The rest of a large first sync waits for the next run, from this page on.
        this.#next = url;
        return pages;
      }
    }
  }

  #entry(id: number): Entry {
    const e = this.#byNumber.get(id);
    if (!e) throw new GraphError('protocol', `No message ${id} in this session.`);
    return e;
  }

  #valuePath(id: number): string {
    return `${this.#user}/messages/${encodeURIComponent(this.#entry(id).uid)}/$value`;
  }

  /** A message gone since the listing is refused like POP3's -ERR to RETR: the pipeline charges that one message. */
  #fetchError(id: number, error: unknown): unknown {
    if (
      error instanceof GraphError &&
      error.details.status === 404 &&
      error.details.code !== 'ErrorInvalidUser'
    )
      return new Pop3Error(
        'server',
        `Microsoft Graph no longer has message ${id}: ${error.details.code ?? 'not found'}`,
        {
          command: 'RETR',
          serverText: error.details.serverReply ?? error.details.code,
          cause: error,
        },
      );
    return error;
  }

  #folder(name: string): Promise<string> {
    this.#folderId ??= findFolder(this.#o.client, this.#o.mailbox, name);
    this.#folderId.catch(() => {
      this.#folderId = undefined;
    });
    return this.#folderId;
  }

  /** `work` for each id, `window` at a time; the first failure is thrown once all have settled. */
  async #each(ids: number[], window: number, work: (id: number) => Promise<void>): Promise<void> {
    let next = 0;
    let failure: { error: unknown } | undefined;
    const worker = async () => {
      while (next < ids.length && !failure) {
        const id = ids[next++]!;
        try {
          await work(id);
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(Math.max(window, 1), 8) }, worker));
    if (failure) throw failure.error;
  }
}

function isSyncStateGone(error: GraphError): boolean {
  return error.details.status === 410 || SYNC_STATE_GONE.has(error.details.code ?? '');
}

/** The id of the folder named `name` (as Outlook shows it): at the top level, else under Inbox. */
export async function findFolder(client: GraphClient, mailbox: string, name: string): Promise<string> {
  const user = `/users/${encodeURIComponent(mailbox)}`;
  const filter = `?$filter=${encodeURIComponent(`displayName eq '${name.replace(/'/g, "''")}'`)}&$select=id,displayName`;
  for (const parent of [`${user}/mailFolders`, `${user}/mailFolders/inbox/childFolders`]) {
    const page = await client.json<{ value?: { id: string; displayName?: string }[] }>(`${parent}${filter}`);
    const hit = page.value?.find((f) => f.displayName?.toLowerCase() === name.toLowerCase());
    if (hit?.id) return hit.id;
  }
  throw new GraphError(
    'folder-not-found',
    `The mailbox ${mailbox} has no folder "${name}" to move stored mail to.`,
  );
}
