/**
 * A local stand-in for Microsoft Graph and the Microsoft identity platform's token endpoint, on
 * loopback, serving the documented response shapes the connector relies on:
 * - POST /{tenant}/oauth2/v2.0/token (client credentials) with AADSTS errors: 90002 unknown
 *   tenant, 700016 unknown app, 7000215 bad secret, 65001 consent missing;
 * - GET /v1.0/users/{m}/mailFolders/inbox/messages/delta: pages of `value` with `@odata.nextLink`
 *   ($skiptoken) and a last page with `@odata.deltaLink` ($deltatoken); later changes list new or
 *   changed messages, and `@removed` for those gone from the inbox; `Prefer: odata.maxpagesize`;
 * - GET /messages/{id}/$value (the MIME bytes), PATCH /messages/{id} (isRead), POST
 *   /messages/{id}/move (a new id, as Exchange gives), DELETE /messages/{id}, mailFolders with
 *   `$filter=displayName eq '…'`, POST /users/{m}/sendMail (MIME in base64);
 * - 429 with Retry-After when told to throttle; 401 InvalidAuthenticationToken for an expired
 *   token; 403 ErrorAccessDenied for an app without the mailbox permission; 404 ErrorInvalidUser.
 * Every request is logged (method, path) so tests can count what the connector did.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface StoredMessage {
  id: string;
  raw: Buffer;
  receivedDateTime: string;
  isRead: boolean;
  folderId: string;
  /** The change counter value of the message's last change. */
  seq: number;
}

interface Mailbox {
  address: string;
  messages: Map<string, StoredMessage>;
  /** Messages that left the inbox (moved, deleted), at which change. */
  removed: { id: string; seq: number }[];
  folders: Map<string, { displayName: string; parent: string | undefined }>;
  seq: number;
  sent: Buffer[];
}

export interface GraphApp {
  tenant: string;
  clientId: string;
  secret: string;
  /** Has Mail.ReadWrite (application) with admin consent. */
  mailPermission: boolean;
  /** false: the token endpoint answers AADSTS65001. */
  consented: boolean;
}

interface IssuedToken {
  expiresAt: number;
  app: GraphApp | undefined;
}

export interface GraphServer {
  /** The identity platform's root (GRAPH_LOGIN_BASE). */
  readonly loginBase: string;
  /** Graph's API root (GRAPH_API_BASE). */
  readonly apiBase: string;
  readonly requests: { method: string; path: string; status: number }[];
  addApp(app: Partial<GraphApp> & Pick<GraphApp, 'tenant' | 'clientId' | 'secret'>): GraphApp;
  addMailbox(address: string): void;
  /** Puts a message in the inbox; returns its Graph id. */
  deliver(address: string, raw: Buffer, receivedAt?: Date): string;
  addFolder(address: string, displayName: string, parent?: 'inbox'): string;
  /** The messages of a folder ('inbox' or a folder id), oldest first. */
  messagesIn(address: string, folderId?: string): { id: string; raw: Buffer; isRead: boolean }[];
  sent(address: string): Buffer[];
  /** The next `count` API requests are answered 429 (or 503) with this Retry-After (seconds). */
  throttle(count: number, retryAfter: number, status?: 429 | 503): void;
  /** The next `count` API requests whose path matches are answered `status` (a Graph error). */
  failNext(count: number, status: number, path: RegExp): void;
  /** Lifetime of new access tokens, seconds (default 3600). */
  tokenLifetime: number;
  /** Every token issued so far is refused from now on (401 InvalidAuthenticationToken). */
  expireTokens(): void;
  /** A delegated token, as an OAuth2 sign-in would have: valid for every mailbox. */
  issueDelegatedToken(lifetimeSeconds?: number): string;
  /** Token endpoint requests answered with a token. */
  readonly tokensIssued: number;
  stop(): Promise<void>;
}

const INBOX = 'inbox';

export async function startGraphServer(): Promise<GraphServer> {
  const apps = new Map<string, GraphApp>();
  const tenants = new Set<string>();
  const mailboxes = new Map<string, Mailbox>();
  const tokens = new Map<string, IssuedToken>();
  const requests: GraphServer['requests'] = [];
  let throttle = { count: 0, retryAfter: 0, status: 429 };
  let tokensIssued = 0;
  let failing = { count: 0, status: 500, path: /$^/ };
  let base = '';

  const newId = () => `AAMkAD${randomBytes(24).toString('base64').replace(/\//g, '_').replace(/\+/g, '-')}=`;
  const mailbox = (address: string) => mailboxes.get(address.toLowerCase());

  function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}) {
    res.writeHead(status, {
      ...(body !== undefined ? { 'content-type': 'application/json; odata.metadata=minimal' } : {}),
      ...headers,
    });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  }
  const graphError = (res: ServerResponse, status: number, code: string, message: string, headers = {}) =>
    send(res, status, { error: { code, message, innerError: { date: new Date().toISOString() } } }, headers);

  async function body(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  function tokenEndpoint(tenant: string, form: URLSearchParams, res: ServerResponse) {
    const aad = (status: number, error: string, code: string, text: string) =>
      send(res, status, {
        error,
        error_description: `AADSTS${code}: ${text}\r\nTrace ID: ${randomBytes(8).toString('hex')}\r\nCorrelation ID: ${randomBytes(8).toString('hex')}`,
        error_codes: [Number(code)],
      });
    if (!tenants.has(tenant))
      return aad(
        400,
        'invalid_request',
        '90002',
        `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID.`,
      );
    if (form.get('grant_type') !== 'client_credentials')
      return aad(400, 'unsupported_grant_type', '70003', 'The app requested an unsupported grant type.');
    const app = apps.get(`${tenant}\n${form.get('client_id')}`);
    if (!app)
      return aad(
        400,
        'unauthorized_client',
        '700016',
        `Application with identifier '${form.get('client_id')}' was not found in the directory '${tenant}'.`,
      );
    if (form.get('client_secret') !== app.secret)
      return aad(
        401,
        'invalid_client',
        '7000215',
        'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.',
      );
    if (!app.consented)
      return aad(
        400,
        'invalid_grant',
        '65001',
        `The user or administrator has not consented to use the application with ID '${app.clientId}'.`,
      );
    const token = randomBytes(24).toString('base64url');
    tokens.set(token, { expiresAt: Date.now() + server.tokenLifetime * 1000, app });
    tokensIssued++;
    send(res, 200, {
      token_type: 'Bearer',
      expires_in: server.tokenLifetime,
      ext_expires_in: server.tokenLifetime,
      access_token: token,
    });
  }

  /** Delta: since change `since` up to `upto`, from `offset`, `size` items per page. */
  function deltaPage(m: Mailbox, path: string, since: number, upto: number, offset: number, size: number) {
    const changed = [...m.messages.values()]
      .filter((x) => x.folderId === INBOX && x.seq > since && x.seq <= upto)
      .map((x) => ({
        seq: x.seq,
        item: {
          '@odata.type': '#microsoft.graph.message',
          id: x.id,
          receivedDateTime: x.receivedDateTime,
          isRead: x.isRead,
        } as Record<string, unknown>,
      }));
    const removed =
      since === 0
        ? []
        : m.removed
            .filter((r) => r.seq > since && r.seq <= upto)
            .map((r) => ({
              seq: r.seq,
              item: {
                '@odata.type': '#microsoft.graph.message',
                id: r.id,
                '@removed': { reason: 'deleted' },
              },
            }));
    const all = [...changed, ...removed].sort((a, b) => a.seq - b.seq).map((x) => x.item);
    const value = all.slice(offset, offset + size);
    const more = offset + size < all.length;
    return {
      '@odata.context': `${base}/v1.0/$metadata#Collection(message)`,
      value,
      ...(more
        ? {
            '@odata.nextLink': `${base}/v1.0${path}?$skiptoken=${Buffer.from(JSON.stringify([since, upto, offset + size])).toString('base64url')}`,
          }
        : {
            '@odata.deltaLink': `${base}/v1.0${path}?$deltatoken=${Buffer.from(JSON.stringify([upto])).toString('base64url')}`,
          }),
    };
  }

  async function api(req: IncomingMessage, res: ServerResponse, url: URL) {
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const token = auth ? tokens.get(auth) : undefined;
    if (!token || token.expiresAt <= Date.now())
      return graphError(
        res,
        401,
        'InvalidAuthenticationToken',
        'Lifetime validation failed, the token is expired.',
      );
    if (throttle.count > 0) {
      throttle.count--;
      return graphError(
        res,
        throttle.status,
        throttle.status === 429 ? 'ApplicationThrottled' : 'ServiceUnavailable',
        'Application is over its MailboxConcurrency limit.',
        {
          'retry-after': String(throttle.retryAfter),
        },
      );
    }
    if (failing.count > 0 && failing.path.test(decodeURIComponent(url.pathname))) {
      failing.count--;
      return graphError(res, failing.status, 'InternalServerError', 'Something went wrong.');
    }
    const parts = url.pathname.split('/').slice(2).map(decodeURIComponent);
    if (parts[0] !== 'users' || !parts[1])
      return graphError(res, 400, 'BadRequest', 'Resource not found for the segment.');
    const m = mailbox(parts[1]);
    if (!m) return graphError(res, 404, 'ErrorInvalidUser', `The requested user '${parts[1]}' is invalid.`);
    if (token.app && !token.app.mailPermission)
      return graphError(res, 403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
    const rest = parts.slice(2);
    const path = url.pathname.slice('/v1.0'.length);
    const method = req.method ?? 'GET';
    // /sendMail
    if (rest[0] === 'sendMail' && method === 'POST') {
      const text = (await body(req)).toString('ascii').trim();
      m.sent.push(Buffer.from(text, 'base64'));
      return send(res, 202);
    }
    // /mailFolders…
    if (rest[0] === 'mailFolders') {
      if (rest[1] === 'inbox' && rest[2] === 'messages' && rest[3] === 'delta' && method === 'GET') {
        const size = Number(/odata\.maxpagesize=(\d+)/.exec(String(req.headers.prefer ?? ''))?.[1] ?? 10);
        const skip = url.searchParams.get('$skiptoken');
        const delta = url.searchParams.get('$deltatoken');
        try {
          if (skip) {
            const [since, upto, offset] = JSON.parse(Buffer.from(skip, 'base64url').toString()) as number[];
            return send(res, 200, deltaPage(m, path, since!, upto!, offset!, size));
          }
          const since = delta ? (JSON.parse(Buffer.from(delta, 'base64url').toString()) as number[])[0]! : 0;
          return send(res, 200, deltaPage(m, path, since, m.seq, 0, size));
        } catch {
          return graphError(res, 410, 'SyncStateNotFound', 'The sync state generation is not found.');
        }
      }
      if (rest.length === 2 && rest[1] === 'inbox' && method === 'GET')
        return send(res, 200, {
          id: 'AAMkInbox',
          displayName: 'Inbox',
          totalItemCount: [...m.messages.values()].filter((x) => x.folderId === INBOX).length,
        });
      const parent =
        rest.length === 1 ? undefined : rest[1] === 'inbox' && rest[2] === 'childFolders' ? INBOX : null;
      if (parent !== null && method === 'GET') {
        const filter = /^displayName eq '(.*)'$/
          .exec(url.searchParams.get('$filter') ?? '')?.[1]
          ?.replace(/''/g, "'");
        const value = [...m.folders.entries()]
          .filter(([, f]) => f.parent === parent && (filter === undefined || f.displayName === filter))
          .map(([id, f]) => ({ id, displayName: f.displayName }));
        return send(res, 200, { value });
      }
    }
    // /messages/{id}[/$value|/move]
    if (rest[0] === 'messages' && rest[1]) {
      const msg = m.messages.get(rest[1]);
      if (!msg)
        return graphError(res, 404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
      if (rest[2] === '$value' && method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(msg.raw.length) });
        return res.end(msg.raw);
      }
      if (rest.length === 2 && method === 'PATCH') {
        const patch = JSON.parse((await body(req)).toString()) as { isRead?: boolean };
        if (typeof patch.isRead === 'boolean' && patch.isRead !== msg.isRead) {
          msg.isRead = patch.isRead;
          msg.seq = ++m.seq;
        }
        return send(res, 200, { id: msg.id, isRead: msg.isRead });
      }
      if (rest.length === 2 && method === 'DELETE') {
        m.messages.delete(msg.id);
        if (msg.folderId === INBOX) m.removed.push({ id: msg.id, seq: ++m.seq });
        return send(res, 204);
      }
      if (rest[2] === 'move' && method === 'POST') {
        const { destinationId } = JSON.parse((await body(req)).toString()) as { destinationId?: string };
        if (!destinationId || !m.folders.has(destinationId))
          return graphError(
            res,
            404,
            'ErrorItemNotFound',
            'The specified folder could not be found in the store.',
          );
        // Exchange gives a moved message a new id.
        m.messages.delete(msg.id);
        if (msg.folderId === INBOX) m.removed.push({ id: msg.id, seq: ++m.seq });
        const moved = { ...msg, id: newId(), folderId: destinationId, seq: ++m.seq };
        m.messages.set(moved.id, moved);
        return send(res, 201, { id: moved.id, parentFolderId: destinationId });
      }
    }
    return graphError(res, 400, 'BadRequest', `Unsupported request ${method} ${path}.`);
  }

  const http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', base);
    const log = { method: req.method ?? 'GET', path: url.pathname, status: 0 };
    requests.push(log);
    res.on('finish', () => {
      log.status = res.statusCode;
    });
    (async () => {
      const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
      if (token && req.method === 'POST')
        return tokenEndpoint(
          decodeURIComponent(token[1]!),
          new URLSearchParams((await body(req)).toString()),
          res,
        );
      if (url.pathname.startsWith('/v1.0/')) return api(req, res, url);
      return graphError(res, 404, 'NotFound', 'No such endpoint.');
    })().catch((error: unknown) => {
      if (!res.headersSent) graphError(res, 500, 'InternalServerError', String(error));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

  const server: GraphServer = {
    loginBase: base,
    apiBase: `${base}/v1.0`,
    requests,
    tokenLifetime: 3600,
    get tokensIssued() {
      return tokensIssued;
    },
    addApp(app) {
      const full: GraphApp = { mailPermission: true, consented: true, ...app };
      tenants.add(app.tenant);
      apps.set(`${app.tenant}\n${app.clientId}`, full);
      return full;
    },
    addMailbox(address) {
      mailboxes.set(address.toLowerCase(), {
        address,
        messages: new Map(),
        removed: [],
        folders: new Map(),
        seq: 0,
        sent: [],
      });
    },
    deliver(address, raw, receivedAt = new Date()) {
      const m = mailbox(address);
      if (!m) throw new Error(`no mailbox ${address}`);
      const id = newId();
      m.messages.set(id, {
        id,
        raw,
        receivedDateTime: receivedAt.toISOString().replace(/\.\d+Z$/, 'Z'),
        isRead: false,
        folderId: INBOX,
        seq: ++m.seq,
      });
      return id;
    },
    addFolder(address, displayName, parent) {
      const id = `AAMkFolder${randomBytes(6).toString('hex')}`;
      mailbox(address)?.folders.set(id, { displayName, parent });
      return id;
    },
    messagesIn(address, folderId = INBOX) {
      return [...(mailbox(address)?.messages.values() ?? [])]
        .filter((x) => x.folderId === folderId)
        .map((x) => ({ id: x.id, raw: x.raw, isRead: x.isRead }));
    },
    sent: (address) => mailbox(address)?.sent ?? [],
    throttle(count, retryAfter, status = 429) {
      throttle = { count, retryAfter, status };
    },
    failNext(count, status, path) {
      failing = { count, status, path };
    },
    expireTokens() {
      for (const t of tokens.values()) t.expiresAt = 0;
    },
    issueDelegatedToken(lifetimeSeconds = 3600) {
      const token = randomBytes(24).toString('base64url');
      tokens.set(token, { expiresAt: Date.now() + lifetimeSeconds * 1000, app: undefined });
      return token;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
  return server;
}
