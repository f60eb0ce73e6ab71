/**
 * Issue 12, "Done when": a property-based fuzz of every route of every route table
 * (functions/routes.ts `apiTables`) through the HTTP edge, against DynamoDB Local. Requests carry
 * generated hostile bodies, path ids, cursors, query strings and headers: wrong types, 1 MB
 * strings, 10,000-element arrays, deep JSON, control characters, lone surrogates, CR/LF, forged
 * cursors. Two properties: never a 5xx, and a request answered 4xx leaves the table as it was
 * (a scan before and after). Mail servers and SES are stand-ins that accept everything, so a 5xx
 * can only be ours. The run prints how many requests it sent.
 */
import { randomUUID } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { composeFunctions } from '#functions/compose';
import { apiTables } from '#functions/routes';
import type { ApiEvent } from '#lib/http/api';
import type { RouteSpec } from '#lib/http/routes';
import type { MailTransport } from '#lib/ports/index';
import { lambdaContext } from '#local/http';
import { captureOutput, type TestDeps, testDeps } from '#test/support/api';

/** Runs per route: ~60 routes, so about 60 × RUNS requests (tuned for ~60 s on a loaded 2-core machine). */
const RUNS = Number(process.env.FUZZ_RUNS ?? 20);
const SEED = Number(process.env.FUZZ_SEED ?? 20261202);

type Fn = keyof typeof apiTables;
type Handler = (event: ApiEvent, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

/** A transport that accepts everything at once: a 5xx cannot come from a mail server here. */
const accepting = (kind: 'ses' | 'smtp'): MailTransport => ({
  kind,
  async send(mail) {
    return { messageId: mail.messageId, accepted: mail.envelope.to, rejected: [], response: '250 OK' };
  },
  async verify() {},
  close() {},
});

let d: TestDeps;
let handlers: Record<Fn, Handler>;
let output: ReturnType<typeof captureOutput>;
let sent = 0;
const statuses = new Map<number, number>();

beforeAll(async () => {
  d = await testDeps({
    ses: () => accepting('ses'),
    smtp: () => accepting('smtp'),
    // A manual poll starts nothing in the background: the table changes only by the request.
    invoker: { invoke: async () => {} },
  });
  const fns = composeFunctions(d, {
    settings: {
      probePop3: async () =>
        ({ ok: false, field: 'connection.password', message: 'Rejected', ms: 1 }) as never,
    },
    send: { probe: false, retry: { sleep: async () => {} } },
    inboxPoll: { ports: { open: async () => Promise.reject(new Error('no POP3 here')) } as never },
  });
  handlers = fns as unknown as Record<Fn, Handler>;
  await seed();
  output = captureOutput();
}, 60_000);

afterAll(() => {
  output?.restore();
  console.log(
    `fuzz: sent ${sent} requests to ${routes.length} routes; statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
  );
});

const ADMIN = { sub: 'admin-1', 'custom:studioId': 'studio-1', 'cognito:groups': '[admins]' };

/** Known records, so generated ids hit real ones too (and paths get past "not found"). */
async function seed() {
  const call = (fn: Fn, routeKey: string, path: string, body: unknown, params: Record<string, string> = {}) =>
    handlers[fn](event(routeKey, path, { body: JSON.stringify(body), params, claims: ADMIN }), ctx());
  const results = await Promise.all([
    call('settings', 'PUT /settings/company/email', '/settings/company/email', {
      studioName: 'Lumen',
      displayName: 'Lumen',
      emailAddress: 'hello@lumen.test',
      transport: { method: 'smtp', server: 'smtp.lumen.test', port: 587, security: 'starttls' },
    }),
    call('settings', 'POST /departments', '/departments', { id: 'dept-1', name: 'Sales' }),
    call('settings', 'POST /users', '/users', {
      id: 'admin-1',
      firstName: 'Ada',
      lastName: 'Min',
      email: 'ada@lumen.test',
    }),
    call('settings', 'POST /clients', '/clients', {
      id: 'client-1',
      lastName: 'Ruiz',
      emails: [{ address: 'ana@example.test' }],
    }),
    call('settings', 'POST /signatures', '/signatures', { id: 'sig-1', name: 'Main', text: 'Regards' }),
    call('settings', 'POST /form-letters', '/form-letters', {
      id: 'fl-1',
      name: 'Proofs',
      subject: 'Hi',
      text: 'Ready',
    }),
    call('settings', 'POST /task-types', '/task-types', { id: 'tt-1', name: 'Call', isDefault: true }),
  ]);
  for (const r of results) expect(r.statusCode, r.body).toBeLessThan(300);
  const box = await call('settings', 'POST /email-boxes', '/email-boxes', {
    id: 'sales',
    description: 'Sales',
    connection: {
      server: 'pop.lumen.test',
      emailAddress: 'sales@lumen.test',
      userName: 'sales',
      password: 'pw',
    },
  });
  // POST /email-boxes verifies by default; the seed saves without.
  if (box.statusCode !== 201) {
    const again = await handlers.settings(
      event('POST /email-boxes', '/email-boxes', {
        body: JSON.stringify({
          id: 'sales',
          description: 'Sales',
          connection: {
            server: 'pop.lumen.test',
            emailAddress: 'sales@lumen.test',
            userName: 'sales',
            password: 'pw',
          },
        }),
        query: { verify: 'false' },
        claims: ADMIN,
      }),
      ctx(),
    );
    expect(again.statusCode, again.body).toBe(201);
  }
}

const ctx = () => lambdaContext('fuzz', 29_000);

function event(
  routeKey: string,
  path: string,
  o: {
    body?: string;
    params?: Record<string, string>;
    query?: Record<string, string>;
    headers?: Record<string, string>;
    claims?: Record<string, string>;
  },
): ApiEvent {
  const now = Date.now();
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...o.headers },
    queryStringParameters: o.query && Object.keys(o.query).length ? o.query : undefined,
    pathParameters: o.params && Object.keys(o.params).length ? o.params : undefined,
    body: o.body,
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'fuzz',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: {
        method: routeKey.split(' ')[0],
        path,
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'fuzz',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: new Date(now).toISOString(),
      timeEpoch: now,
      authorizer: { principalId: '', integrationLatency: 0, jwt: { claims: o.claims ?? {}, scopes: [] } },
    },
  } as unknown as ApiEvent;
}

// ── hostile values ─────────────────────────────────────────────────────────────────────────────

const MB = 'x'.repeat(1024 * 1024);
const deep = (n: number): unknown => {
  let v: unknown = 'bottom';
  for (let i = 0; i < n; i++) v = i % 2 ? [v] : { a: v };
  return v;
};
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

const nastyText = fc.constantFrom(
  '',
  ' ',
  '\r\n',
  'a\r\nBcc: x@example.test',
  '\u0000',
  'nul\u0000byte',
  '\ud800',
  'lone \udfff surrogate',
  '\u0085\u2028\u2029',
  '\u001b[31mred',
  '../../etc/passwd',
  '%00%0d%0a',
  'ST#studio-2#X',
  'DEPT#dept-1',
  '{{client.firstName}}',
  '{{nope}}',
  '<script>alert(1)</script>',
  '😀'.repeat(100),
  '中'.repeat(200_000),
  MB,
  'a'.repeat(65),
  'a'.repeat(1015),
  'me',
  'sales',
  'client-1',
  'dept-1',
  'sig-1',
  'fl-1',
  'tt-1',
  'admin-1',
  'true',
  'false',
  '0',
  '-1',
  '1e309',
  'NaN',
  'smtp.lumen.test',
  '169.254.169.254',
  'ana@example.test',
  '<a@b>',
  '<a@b\u0085>',
);
const text = fc.oneof(
  { arbitrary: nastyText, weight: 4 },
  { arbitrary: fc.string({ maxLength: 40 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 2 },
);
const scalar = fc.oneof(
  text,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(0, -1, 1, 65536, 2 ** 53, Number.MAX_VALUE),
);
const big = fc.constantFrom<unknown>(
  Array.from({ length: 10_000 }, (_, i) => i),
  Array.from({ length: 10_000 }, () => 'x'),
  deep(1_000),
  deep(50),
  MB,
);
const jsonish: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: scalar, weight: 6 },
    { arbitrary: fc.array(tie('v'), { maxLength: 4 }), weight: 1 },
    { arbitrary: fc.dictionary(text, tie('v'), { maxKeys: 4 }), weight: 1 },
  ),
})).v;

/** The object keys a schema knows (its own and one level into its objects), to get past "unknown field". */
function keysOf(schema: z.ZodType | undefined): string[] {
  const def = (schema as { _zod?: { def?: Record<string, unknown> } } | undefined)?._zod?.def;
  if (!def) return [];
  if (def.type === 'object') return Object.keys(def.shape as object);
  if (def.type === 'union') return (def.options as z.ZodType[]).flatMap(keysOf);
  if (def.type === 'pipe') return keysOf(def.in as z.ZodType);
  for (const inner of ['innerType', 'schema']) if (def[inner]) return keysOf(def[inner] as z.ZodType);
  return [];
}

const smtp = {
  method: 'smtp',
  server: 'smtp.lumen.test',
  port: 587,
  security: 'starttls',
  logonName: 'hello',
  password: 'pw-2',
};
const connection = {
  server: 'pop.lumen.test',
  emailAddress: 'sales@lumen.test',
  userName: 'sales',
  password: 'pw',
  ssl: true,
};
/** A valid body per path (the route key without its method), to mutate one field at a time. */
const EXAMPLES: Record<string, Record<string, unknown>> = {
  '/settings/company/email': {
    studioName: 'Lumen',
    displayName: 'Lumen',
    emailAddress: 'hello@lumen.test',
    transport: smtp,
    timeZone: 'Europe/Madrid',
  },
  '/users/{id}/email-settings': { displayName: 'Ana', emailAddress: 'ana@lumen.test', transport: smtp },
  '/departments': { name: 'Front desk' },
  '/users': { id: 'user-1', firstName: 'Ana', lastName: 'Ruiz', email: 'ana@lumen.test', title: 'Lead' },
  '/signatures': { name: 'Short', html: '<p>{{user.firstName}}</p>', text: 'Thanks' },
  '/task-types': { name: 'Follow up', isDefault: true },
  '/task-statuses': { name: 'Open', isDefault: true },
  '/email-types': { name: 'Inquiry', isDefault: false },
  '/email-statuses': { name: 'Unread', isDefault: true },
  '/form-letters': {
    name: 'Proofs',
    subject: 'Your proofs, {{client.firstName}}',
    html: '<p>Ready</p>',
    text: 'Ready',
  },
  '/clients': {
    firstName: 'Ana',
    lastName: 'Ruiz',
    company: 'Co',
    emails: [{ address: 'ana@example.test' }],
    groups: ['vip'],
  },
  '/email-boxes': {
    id: 'box-2',
    description: 'Box',
    excludeBefore: '2026-01-01',
    connection,
    schedule: {
      startTime: '08:00',
      endTime: '18:00',
      intervalMinutes: 20,
      weekdays: ['MON'],
      timeZone: 'UTC',
    },
  },
  '/sender-identities': { identity: 'lumen.test' },
  '/emails': { to: ['ana@example.test'], subject: 'Hi', text: 'Hello', inReplyTo: '<a@b.c>' },
  '/emails/preview': { clientId: 'client-1', formLetterId: 'fl-1' },
  '/settings/company/email/test': { to: 'ana@example.test' },
  '/users/{id}/email-settings/test': {},
};
function exampleFor(key: string): Record<string, unknown> | undefined {
  const path = key.split(' ')[1] as string;
  return EXAMPLES[path] ?? EXAMPLES[path.replace(/\/\{id\}$/, '')];
}

/** Every dotted path into `value` (objects and arrays), for one-field mutations. */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [prefix];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return [prefix, ...entries.flatMap(([k, v]) => pathsOf(v, [...prefix, k]))];
}
function setAt(value: unknown, path: (string | number)[], next: unknown): unknown {
  if (path.length === 0) return next;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<
    string | number,
    unknown
  >;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  copy[head] = setAt(copy[head], rest, next);
  return copy;
}

/** A valid body with one field (or the whole of a nested part) replaced by something hostile. */
function mutated(example: Record<string, unknown>): fc.Arbitrary<unknown> {
  const paths = pathsOf(example);
  return fc.oneof(
    { arbitrary: fc.constant(example), weight: 1 },
    {
      arbitrary: fc
        .tuple(
          fc.constantFrom(...paths),
          fc.oneof({ arbitrary: jsonish, weight: 4 }, { arbitrary: big, weight: 1 }),
        )
        .map(([path, value]) => setAt(example, path, value)),
      weight: 6,
    },
    {
      arbitrary: fc.tuple(text, jsonish).map(([k, v]) => ({ ...example, [k]: v })),
      weight: 1,
    },
  );
}

/** A body: hostile JSON, or an object of the schema's own keys with hostile values, or not JSON at all. */
function bodyOf(key: string, spec: RouteSpec): fc.Arbitrary<string | undefined> {
  const example = exampleFor(key);
  if (example && spec.body)
    return fc.oneof(
      { arbitrary: mutated(example).map((v) => JSON.stringify(v)), weight: 8 },
      { arbitrary: bodyOfKeys(spec), weight: 2 },
    );
  return bodyOfKeys(spec);
}

function bodyOfKeys(spec: RouteSpec): fc.Arbitrary<string | undefined> {
  const keys = keysOf(spec.body);
  const known = keys.length
    ? fc.dictionary(
        fc.constantFrom(...keys),
        fc.oneof(
          jsonish,
          fc.dictionary(fc.constantFrom(...keys, 'server', 'password', 'port'), jsonish, { maxKeys: 4 }),
        ),
        {
          maxKeys: keys.length,
        },
      )
    : fc.constant({});
  return fc.oneof(
    { arbitrary: known.map((v) => JSON.stringify(v)), weight: 6 },
    { arbitrary: jsonish.map((v) => JSON.stringify(v)), weight: 2 },
    { arbitrary: big.map((v) => JSON.stringify(v)), weight: 1 },
    {
      arbitrary: fc.constantFrom('{', '{"a":', 'null', '[]', '"\ud800"', '\u0000', 'x'.repeat(100)),
      weight: 1,
    },
    { arbitrary: fc.constant(undefined), weight: 1 },
  );
}

const cursor = fc.oneof(
  fc.constantFrom(
    b64({ PK: 'ST#studio-2#X', SK: 'Y' }),
    b64({}),
    b64([]),
    b64('x'),
    b64({ PK: 'ST#studio-1', SK: 'DEPT#dept-1' }),
  ),
  text,
);

function queryOf(spec: RouteSpec): fc.Arbitrary<Record<string, string>> {
  const keys = [...keysOf(spec.query), 'verify', 'syncSchedule', 'extra'];
  return fc.dictionary(
    fc.constantFrom(...keys),
    fc.oneof(text, cursor, fc.constantFrom('true', 'false', '1', '100', '101', '0', '-5', '1.5')),
    { maxKeys: 3 },
  );
}

function paramsOf(key: string): fc.Arbitrary<Record<string, string>> {
  const names = [...key.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
  return fc
    .tuple(...names.map(() => text))
    .map((values) => Object.fromEntries(names.map((n, i) => [n, values[i] as string])));
}

const claims = fc.oneof(
  { arbitrary: fc.constant<Record<string, string> | undefined>(ADMIN), weight: 12 },
  {
    arbitrary: fc.constantFrom<Record<string, string> | undefined>(
      { sub: 'user-1', 'custom:studioId': 'studio-1' },
      { sub: 'admin-9', 'custom:studioId': 'studio-2', 'cognito:groups': '[admins]' },
      { sub: 'admin-1', 'custom:studioId': 'ST#studio-1', 'cognito:groups': '[admins]' },
      { sub: 'x\r\ny', 'custom:studioId': 'studio-1' },
      undefined,
    ),
    weight: 3,
  },
);

const headers = fc.record(
  {
    'content-type': fc.constantFrom('application/json', 'application/merge-patch+json', 'text/plain', '\r\n'),
    'if-match': fc.oneof(fc.constantFrom('"1"', '"2"', '*', 'W/"1"', '"x"'), text),
    'idempotency-key': fc.oneof(fc.constantFrom('k-1', 'k-2'), text),
  },
  { requiredKeys: ['content-type'] },
);

// ── the property ───────────────────────────────────────────────────────────────────────────────

/** The table as text, for "unchanged" (DynamoDB Local's scans are cheap for a table this small). */
async function snapshot(): Promise<string> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await d.repos.table.doc.send(
      new ScanCommand({ TableName: d.repos.table.name, ExclusiveStartKey: start, ConsistentRead: true }),
    );
    items.push(...((page.Items ?? []) as Record<string, unknown>[]));
    start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
  } while (start);
  return JSON.stringify(items.map((i) => JSON.stringify(i)).sort());
}

const routes = Object.entries(apiTables).flatMap(([fn, table]) =>
  Object.entries(table as Record<string, RouteSpec>).map(([key, spec]) => ({ fn: fn as Fn, key, spec })),
);

describe('every route under hostile input', () => {
  it('finds every route of every table', () => {
    expect(routes.length).toBeGreaterThan(60);
  });

  it('never answers 5xx, and a 4xx leaves the table unchanged', async () => {
    // Prepare
    let before = await snapshot();
    const failures: string[] = [];
    for (const [index, { fn, key, spec }] of routes.entries()) {
      const [, path] = key.split(' ') as [string, string];
      const request = fc.record({
        params: paramsOf(key),
        query: queryOf(spec),
        body: bodyOf(key, spec),
        headers,
        claims,
      });
      // Act
      await fc
        .assert(
          fc.asyncProperty(request, async (r) => {
            const res = await handlers[fn](event(key, path, r), ctx());
            sent++;
            const status = res.statusCode ?? 200;
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
            const after = await snapshot();
            const problem =
              status >= 500
                ? `${status} ${res.body?.slice(0, 300)} for ${JSON.stringify(r).slice(0, 300)}`
                : status >= 400 && after !== before
                  ? `${status} changed the table`
                  : undefined;
            before = after;
            if (problem) {
              failures.push(`${key}: ${problem}`);
              return false;
            }
            return true;
          }),
          { numRuns: RUNS, seed: SEED + index, endOnFailure: true },
        )
        .catch((error: Error) => failures.push(`${key}: ${error.message.split('\n')[0]?.slice(0, 200)}`));
    }
    // Assess
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(routes.length * RUNS);
  }, 300_000);
});
