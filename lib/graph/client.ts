/**
 * A small Microsoft Graph client on fetch: what the mailbox connector needs and no more (the
 * Graph SDK's weight and its own retry and auth layers buy nothing here: docs/decisions.md).
 * - every request carries a current access token; a 401 drops it and retries once with a new one;
 * - 429 and 503 (throttling) wait as `Retry-After` says, a bounded number of times and never past
 *   the caller's deadline (a run's budget), else fail with kind `throttled`;
 * - `@odata.nextLink` / `@odata.deltaLink` URLs are followed only under the configured base, so a
 *   token never goes anywhere else;
 * - raw bodies (`$value`) come back byte for byte, as a Buffer or a stream.
 */
import { Readable } from 'node:stream';
import { apiErrorKind, GraphError } from './errors.ts';
import type { AccessTokens } from './tokens.ts';

export { GRAPH_BASE } from './settings.ts';

export interface GraphClientOptions {
  /** The API root, e.g. https://graph.microsoft.com/v1.0 (tests: a local server). */
  readonly baseUrl: string;
  readonly tokens: AccessTokens;
  readonly fetch?: typeof fetch;
  /** Epoch ms: a throttling wait that would end after it is not waited for. */
  readonly deadline?: number;
  readonly clock?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Throttled answers waited out per request. Default 6. */
  readonly maxRetries?: number;
  /**
   * Answers waited out and retried (default 429 and 503). A request that must not be repeated
   * once the service may have acted on it (sendMail) retries 429 only: a 503 can come after the
   * message was taken.
   */
  readonly retryStatuses?: readonly number[];
  /** The longest one `Retry-After` is honoured. Default 120 s. */
  readonly maxWaitMs?: number;
  /** For headers of any answer, and between chunks of a body. Default 60 s. */
  readonly timeoutMs?: number;
}

/** What the client did, for the run's log and the bench. */
export interface GraphStats {
  requests: number;
  throttled: number;
  waitedMs: number;
  tokenRenewals: number;
}

interface RequestInit {
  readonly method?: string;
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Sent as is, `text/plain` (sendMail's base64 MIME), instead of a JSON body. */
  readonly text?: string;
  readonly headers?: Record<string, string>;
}

export class GraphClient {
  readonly stats: GraphStats = { requests: 0, throttled: 0, waitedMs: 0, tokenRenewals: 0 };
  readonly #o: GraphClientOptions;
  readonly #base: URL;
  readonly #abort = new AbortController();

  constructor(options: GraphClientOptions) {
    this.#o = options;
    this.#base = new URL(options.baseUrl.replace(/\/+$/, ''));
  }

  /** A JSON answer (undefined for 204). */
  async json<T>(pathOrUrl: string, init: RequestInit = {}): Promise<T> {
    const response = await this.#send(pathOrUrl, init);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    try {
      return (text ? JSON.parse(text) : undefined) as T;
    } catch (error) {
      throw new GraphError(
        'protocol',
        `Microsoft Graph answered ${pathOrUrl} with something that is not JSON.`,
        {
          status: response.status,
        },
        { cause: error },
      );
    }
  }

  /** The exact bytes of a raw body. */
  async bytes(pathOrUrl: string): Promise<Buffer> {
    const response = await this.#send(pathOrUrl, {});
    return Buffer.from(await response.arrayBuffer());
  }

  /** A raw body as a stream; it errors when the body stalls for the timeout or the client closes. */
  async stream(pathOrUrl: string): Promise<Readable> {
    const response = await this.#send(pathOrUrl, {});
    if (!response.body) return Readable.from([]);
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
    const idleMs = this.#o.timeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => body.destroy(new GraphError('network', `Microsoft Graph stopped sending ${pathOrUrl}.`)),
        idleMs,
      );
      timer.unref();
    };
    arm();
    body.on('data', arm);
    body.on('close', () => clearTimeout(timer));
    // The consumer listens too; this one only keeps an unconsumed error from being unhandled.
    body.on('error', () => clearTimeout(timer));
    return body;
  }

  /** Ends every request in flight (the session is dropped). */
  close(): void {
    this.#abort.abort(new GraphError('network', 'The Graph session was closed.'));
  }

  /** A link Graph gave (nextLink, deltaLink) or a path under the base; nothing else is ever called. */
  url(pathOrUrl: string): URL {
    if (!/^https?:/i.test(pathOrUrl)) return new URL(`${this.#base.href}${pathOrUrl}`);
    const url = new URL(pathOrUrl);
    const basePath = this.#base.pathname.replace(/\/+$/, '');
    if (
      url.origin !== this.#base.origin ||
      !(url.pathname === basePath || url.pathname.startsWith(`${basePath}/`))
    )
      throw new GraphError(
        'protocol',
        'Microsoft Graph gave a link outside its own API; it is not followed.',
      );
    return url;
  }

  async #send(pathOrUrl: string, init: RequestInit): Promise<Response> {
    const url = this.url(pathOrUrl);
    const clock = this.#o.clock ?? Date.now;
    const sleep = this.#o.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    const maxRetries = this.#o.maxRetries ?? 6;
    let renewed = false;
    for (let attempt = 0; ; attempt++) {
      const token = await this.#o.tokens.get();
      const response = await this.#fetch(url, init, token);
      if (response.ok) return response;
      if (response.status === 401 && !renewed) {
        // Expired before its time, or revoked: one new token, one more try.
        await response.body?.cancel().catch(() => {});
        this.#o.tokens.expire();
        this.stats.tokenRenewals++;
        renewed = true;
        continue;
      }
      if ((this.#o.retryStatuses ?? [429, 503]).includes(response.status) && attempt < maxRetries) {
        const waitMs = retryAfterMs(response.headers.get('retry-after'), attempt, clock());
        const deadline = this.#o.deadline ?? Number.POSITIVE_INFINITY;
        if (waitMs <= (this.#o.maxWaitMs ?? 120_000) && clock() + waitMs < deadline) {
          await response.body?.cancel().catch(() => {});
          this.stats.throttled++;
          this.stats.waitedMs += waitMs;
          await sleep(waitMs);
          continue;
        }
      }
      throw await apiError(response, url);
    }
  }

  async #fetch(url: URL, init: RequestInit, token: string): Promise<Response> {
    this.stats.requests++;
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...init.headers };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    if (init.text !== undefined) headers['content-type'] = 'text/plain';
    try {
      return await (this.#o.fetch ?? fetch)(url, {
        method: init.method ?? 'GET',
        headers,
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        ...(init.text !== undefined ? { body: init.text } : {}),
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#o.timeoutMs ?? 60_000)]),
        redirect: 'error',
      });
    } catch (error) {
      if (error instanceof GraphError) throw error;
      throw new GraphError(
        'network',
        `Microsoft Graph could not be reached (${error instanceof Error ? error.message : String(error)}).`,
        {},
        { cause: error },
      );
    }
  }
}

/** `Retry-After` in seconds or as an HTTP date; without one, 1, 2, 4 … seconds. */
export function retryAfterMs(header: string | null, attempt: number, now: number): number {
  if (header) {
    const seconds = Number(header);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
    const at = Date.parse(header);
    if (Number.isFinite(at)) return Math.max(0, at - now);
  }
  return 1000 * 2 ** Math.min(attempt, 6);
}

/** Graph's error body `{ error: { code, message } }` as a GraphError. */
async function apiError(response: Response, url: URL): Promise<GraphError> {
  let code = '';
  let message = '';
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    code = body.error?.code ?? '';
    message = body.error?.message ?? '';
  } catch {}
  const kind = apiErrorKind(response.status, code);
  const what = url.pathname.split('/').slice(-2).join('/');
  return new GraphError(
    kind,
    `Microsoft Graph answered ${response.status}${code ? ` ${code}` : ''} to ${what}.`,
    { status: response.status, code, ...(message ? { serverReply: message.slice(0, 300) } : {}) },
  );
}
