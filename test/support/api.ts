/**
 * Calls a function's HTTP handler the way API Gateway would (payload 2.0 events with JWT claims),
 * with dependencies made for one test file: a fresh table in DynamoDB Local, secrets and blobs in
 * a temp dir, the in-process scheduler and event bus.
 */
import { mkdtempSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { vi } from 'vitest';
import { LocalBlobStore } from '#lib/adapters/local/blobs';
import { InProcessEventBus } from '#lib/adapters/local/events';
import { InProcessScheduler } from '#lib/adapters/local/scheduler';
import { LocalSecretStore } from '#lib/adapters/local/secrets';
import { buildDeps, type Deps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import type { ApiEvent } from '#lib/http/api';
import type { RouteTable } from '#lib/http/routes';
import { compileRoutes, lambdaContext, match, toEvent } from '#local/http';
import { testTable } from './db.ts';

export type TestDeps = Deps & { scheduler: InProcessScheduler; events: InProcessEventBus; dir: string };

export async function testDeps(overrides: Partial<Deps> = {}): Promise<TestDeps> {
  const { repos, endpoint, name } = await testTable();
  const dir = mkdtempSync(join(tmpdir(), 'studio-mail-test-'));
  const config = loadConfig({
    STUDIO_MAIL_ADAPTERS: 'local',
    DYNAMODB_ENDPOINT: endpoint,
    TABLE_NAME: name,
    BLOB_DIR: join(dir, 'blobs'),
    SECRET_DIR: join(dir, 'secrets'),
  });
  return {
    ...buildDeps(config, {
      repos,
      secrets: new LocalSecretStore(join(dir, 'secrets'), config.secretPrefix),
      blobs: new LocalBlobStore(join(dir, 'blobs')),
      scheduler: new InProcessScheduler(),
      events: new InProcessEventBus(),
      ...overrides,
    }),
    dir,
  } as TestDeps;
}

export const tokens = {
  admin: 'dev:studio-1:admin-1:admins',
  user: 'dev:studio-1:user-1:',
  otherUser: 'dev:studio-1:user-2:',
  otherStudioAdmin: 'dev:studio-2:admin-9:admins',
};

// biome-ignore lint/suspicious/noExplicitAny: tests read response bodies by path; the assertions check them.
export interface CallResult<T = any> {
  status: number;
  body: T;
  headers: Record<string, string>;
  /** The raw response text, for scanning. */
  text: string;
}

type Handler = (event: ApiEvent, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

/** A client for one function's handler, resolving paths against its route table as API Gateway does. */
export function apiClient(handler: Handler, table: RouteTable, fn = 'under-test') {
  const routes = compileRoutes({ [fn]: table });
  return async function call(
    method: string,
    path: string,
    options: { body?: unknown; token?: string | null; headers?: Record<string, string> } = {},
  ): Promise<CallResult> {
    const url = new URL(path, 'http://localhost');
    const found = match(routes, method, url.pathname);
    if (!('route' in found) || !found.route) throw new Error(`no route for ${method} ${url.pathname}`);
    const token = options.token === undefined ? tokens.admin : options.token;
    const raw =
      options.body === undefined
        ? ''
        : typeof options.body === 'string'
          ? options.body
          : JSON.stringify(options.body);
    const req = Object.assign(Readable.from(raw ? [Buffer.from(raw)] : []), {
      url: `${url.pathname}${url.search}`,
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...options.headers,
      },
      socket: { remoteAddress: '127.0.0.1' },
    }) as unknown as IncomingMessage;
    const event = await toEvent(req, found.route, found.params, 'custom:studioId');
    const result = await handler(event, lambdaContext(fn, 29_000));
    const text = result.body ?? '';
    return {
      status: result.statusCode ?? 200,
      body: text ? JSON.parse(text) : undefined,
      headers: (result.headers ?? {}) as Record<string, string>,
      text,
    };
  };
}

/** Everything written to stdout/stderr while `fn` runs (Powertools logs go there), for secret scans. */
export function captureOutput() {
  const lines: string[] = [];
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  const log = vi
    .spyOn(console, 'log')
    .mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
  const warn = vi
    .spyOn(console, 'warn')
    .mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
  const error = vi
    .spyOn(console, 'error')
    .mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
  const info = vi
    .spyOn(console, 'info')
    .mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
  return {
    lines,
    text: () => lines.join('\n'),
    restore() {
      for (const s of [out, err, log, warn, error, info]) s.mockRestore();
    },
  };
}
