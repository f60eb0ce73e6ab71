/**
 * Shared set-up for the bulk tests: the bulk function over test dependencies with a controllable
 * clock, its own in-process queue and timer, an SMTP sink, and clients seeded in bulk.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import type * as z from 'zod';
import { type BulkOptions, bulkFunction, bulkParts } from '#functions/bulk/app';
import { bulkRoutes } from '#functions/bulk/routes';
import { InProcessQueue, type InProcessQueueOptions } from '#lib/bulk/adapters/local-queue';
import { InProcessTimer } from '#lib/bulk/adapters/local-timer';
import { clientListPk, clientTimelinePk } from '#lib/data/keys';
import { type Client, client as clientSchema } from '#lib/domain/model';
import { compileRoutes, lambdaContext, match, toEvent } from '#local/http';
import { seedCompany, seedUser, smtpTransportRecord } from '#test/send/fixtures';
import { apiClient, type TestDeps, testDeps } from '#test/support/api';
import { type SmtpHarness, startSmtpServer } from '#test/support/smtp';

export const SID = 'studio-1';

/** A clock tests move by hand; it does not move by itself. */
export function testClock(start = '2026-12-01T09:00:00.000Z') {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    advance(ms: number) {
      t += ms;
    },
    set(iso: string) {
      t = Date.parse(iso);
    },
  };
}

export interface BulkHarness {
  d: TestDeps;
  smtp: SmtpHarness;
  clock: ReturnType<typeof testClock>;
  queue: InProcessQueue;
  timer: InProcessTimer;
  parts: ReturnType<typeof bulkParts>;
  call: ReturnType<typeof apiClient>;
  stop(): Promise<void>;
}

/** Sleeps that do not wait (rate slots and retries): the clock is the test's. */
export const noWait = async () => {};

/** Errors the queue's consumers threw (a test that expects none checks this). */
export const errors: unknown[] = [];

export async function bulkHarness(
  options: {
    queue?: Partial<InProcessQueueOptions>;
    bulk?: Partial<BulkOptions>;
    smtp?: SmtpHarness;
    /** Leave the queue without a consumer (the test starts one). */
    consume?: boolean;
    overrides?: Partial<TestDeps>;
  } = {},
): Promise<BulkHarness> {
  const clock = testClock();
  const d = await testDeps({ now: clock.now, ...options.overrides });
  const smtp = options.smtp ?? (await startSmtpServer({ mode: 'plain' }));
  const queue = new InProcessQueue(
    { visibilityTimeoutMs: 30_000, concurrency: 2, maxReceives: 5, ...options.queue },
    (error) => errors.push(error),
  );
  const timer = new InProcessTimer(() => queue, clock.now);
  const parts = bulkParts(d, {
    queue,
    timer,
    linkKey: async () => 'test-link-key',
    publicUrl: 'https://api.lumen.test',
    retry: { sleep: noWait },
    ...options.bulk,
    // Settings changed by a test apply to its next batch at once.
    worker: { sleep: noWait, contextTtlMs: 0, ...options.bulk?.worker },
  });
  if (options.consume !== false) queue.consume((m) => parts.worker.handle(m));
  const call = apiClient(bulkFunction(d, parts) as never, bulkRoutes, 'bulk');
  await seedCompany(d, await smtpTransportRecord(d, smtp, 'none', null), {}, SID);
  await seedUser(d, 'user-1');
  await d.repos.formLetters.create(SID, 'fl-news', {
    id: 'fl-news',
    name: 'Newsletter',
    kind: 'html-email',
    subject: 'News for {{client.firstName|you}}',
    html: '<p>Dear {{client.firstName}} {{client.lastName}},</p><p><a href="{{unsubscribe.url}}">Unsubscribe</a></p>',
    text: 'Dear {{client.firstName}} {{client.lastName}},\nUnsubscribe: {{unsubscribe.url}}',
  });
  await call('PUT', '/settings/bulk-email', { body: { smtpRatePerSecond: 10_000 } });
  return {
    d,
    smtp,
    clock,
    queue,
    timer,
    parts,
    call,
    async stop() {
      queue.stop();
      timer.stop();
      if (!options.smtp) await smtp.stop();
    },
  };
}

/** Writes clients straight to the table (25 per request), with their address lookups. */
export async function seedClients(
  d: TestDeps,
  clients: Partial<z.input<typeof clientSchema>>[],
  sid = SID,
): Promise<Client[]> {
  const parsed = clients.map((c, i) => clientSchema.parse({ id: `c-${String(i).padStart(5, '0')}`, ...c }));
  const at = new Date().toISOString();
  const items = parsed.flatMap((c) => [
    {
      ...c,
      PK: clientTimelinePk(sid, c.id),
      SK: 'CLIENT',
      entity: 'CLIENT',
      GSI1PK: clientListPk(sid),
      GSI1SK: `${c.lastName.toLowerCase()}#${c.firstName.toLowerCase()}#${c.id}`,
      version: 1,
      createdAt: at,
      updatedAt: at,
    },
  ]);
  for (let i = 0; i < items.length; i += 25) {
    await d.repos.table.doc.send(
      new BatchWriteCommand({
        RequestItems: {
          [d.repos.table.name]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })),
        },
      }),
    );
  }
  return parsed;
}

/** `n` consenting clients with distinct addresses. */
export function consenting(n: number, group = 'newsletter'): Partial<z.input<typeof clientSchema>>[] {
  return Array.from({ length: n }, (_, i) => ({
    firstName: `First${i}`,
    lastName: `Last${i}`,
    emails: [{ address: `client${i}@example.test`, primary: true }],
    groups: [group],
    marketingConsent: true,
  }));
}

/**
 * Waits until the queue is empty and the job has nothing being sent, or is waiting for a later
 * period: a handler can outlive its message's visibility timeout, so the queue alone is not enough.
 */
export async function settle(h: BulkHarness, jobId: string, timeoutMs = 25_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    await h.queue.drained(Math.max(1, until - Date.now()));
    const { body } = await h.call('GET', `/bulk-emails/${jobId}`);
    const idle =
      body.status !== 'preparing' &&
      body.counts.sending === 0 &&
      (body.counts.queued === 0 || body.status !== 'running' || body.waiting > 0);
    if (idle && h.queue.depth === 0) return body;
    if (Date.now() > until)
      throw new Error(
        `job ${jobId} did not settle: ${JSON.stringify(body)}; worker errors: ${errors.map(String).join('; ')}`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Addresses the sink received, with how many times each. */
export function arrivals(smtp: SmtpHarness): Map<string, number> {
  const seen = new Map<string, number>();
  for (const m of smtp.messages) for (const to of m.envelope.to) seen.set(to, (seen.get(to) ?? 0) + 1);
  return seen;
}

/** Like the API client, for routes that answer HTML (unsubscribe): the body is left as text. */
export function pageClient(h: BulkHarness) {
  const routes = compileRoutes({ bulk: bulkRoutes });
  const handler = bulkFunction(h.d, h.parts);
  return async (
    method: string,
    path: string,
    options: { body?: string | Buffer; headers?: Record<string, string> } = {},
  ) => {
    const found = match(routes, method, new URL(path, 'http://localhost').pathname);
    if (!('route' in found) || !found.route) throw new Error(`no route for ${method} ${path}`);
    const req = Object.assign(Readable.from(options.body ? [Buffer.from(options.body)] : []), {
      url: path,
      headers: { ...options.headers },
      socket: { remoteAddress: '127.0.0.1' },
    }) as unknown as IncomingMessage;
    const event = await toEvent(req, found.route, found.params, 'custom:studioId');
    const result = await handler(event, lambdaContext('bulk', 29_000));
    return {
      status: result.statusCode ?? 200,
      text: result.body ?? '',
      headers: (result.headers ?? {}) as Record<string, string>,
    };
  };
}
