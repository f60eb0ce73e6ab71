/**
 * Issue 12, item 4: bad input answers 400 naming what is wrong, never 500. Path ids are checked
 * at the edge from the route tables; cursors are opaque, signed and bound to studio and list;
 * form letters stay below DynamoDB's item limit; signatures and form letters are paged; a new
 * default and the clearing of the old one are one write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeFunctions } from '#functions/compose';
import { apiTables } from '#functions/routes';
import { MAX_PATH_ID_LENGTH } from '#lib/http/api';
import { MAX_BODY_BYTES } from '#lib/settings/schemas';
import { fieldsOf, type SettingsHarness, settingsHarness, unreachableProbe } from '#test/settings/harness';
import { apiClient, tokens } from '#test/support/api';

let h: SettingsHarness;
beforeAll(async () => {
  h = await settingsHarness({ probePop3: unreachableProbe });
});
afterAll(() => h.output.restore());

const ADMIN2 = tokens.otherStudioAdmin;
const base64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Every route of every table with an id in its path. */
/**
 * Path parameters that are not ids: names from a fixed list (the docs page's files, message body parts, OAuth2
 * providers), email addresses (the block list; up to 254 characters) and signed link tokens.
 */
const ENUM_PARAMS = ['file', 'provider', 'part', 'address', 'token'];

const idRoutes = Object.entries(apiTables).flatMap(([fn, table]) =>
  Object.entries(table)
    // Every route with an id in its path.
    .filter(
      ([key]) =>
        /\{\w+\}/.test(key) && [...key.matchAll(/\{(\w+)\}/g)].some((m) => !ENUM_PARAMS.includes(m[1]!)),
    )
    .map(([key]) => ({ fn, key })),
);

/** Every paged list (its query declares `cursor`). */
const pagedRoutes = Object.entries(apiTables.settings)
  .filter(([, spec]) => 'query' in spec && spec.query && 'cursor' in spec.query.shape)
  .map(([key]) => key.replace(/^GET /, '').replace(/\{\w+\}/g, 'x'));

describe('path ids', () => {
  const fns = (() => {
    let built: ReturnType<typeof composeFunctions> | undefined;
    return () => {
      built ??= composeFunctions(h.d, {
        settings: { probePop3: unreachableProbe },
        inboxPoll: { ports: { open: async () => Promise.reject(new Error('no POP3 here')) } as never },
      });
      return built;
    };
  })();

  it('finds the routes it checks (a list of nothing proves nothing)', () => {
    expect(idRoutes.length).toBeGreaterThan(40);
  });

  it.each(idRoutes)(
    '$key answers 400 naming the parameter for an id over 64 characters',
    async ({ fn, key }) => {
      // Prepare
      const handler = fns()[fn as keyof typeof apiTables] as Parameters<typeof apiClient>[0];
      const call = apiClient(handler, apiTables[fn as keyof typeof apiTables], fn);
      const [method, path] = key.split(' ') as [string, string];
      const long = 'a'.repeat(MAX_PATH_ID_LENGTH + 1);
      const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const concrete = path.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'index' ? '0' : long));
      // Act
      const res = await call(method, concrete, {
        body: method === 'GET' || method === 'DELETE' ? undefined : {},
      });
      // Assess
      expect(res.status).toBe(400);
      expect(fieldsOf(res)).toEqual(expect.arrayContaining(params.filter((p) => p !== 'index')));
      expect(res.body.error.message).toContain(`at most ${MAX_PATH_ID_LENGTH} characters`);
    },
  );

  it('documents every such path id in the OpenAPI document as at most 64 characters', async () => {
    // Act
    const doc = (await h.call('GET', '/openapi.json', { token: null })).body;
    // Assess
    const ids = Object.values(doc.paths as Record<string, Record<string, { parameters?: unknown[] }>>)
      .flatMap((ops) => Object.values(ops))
      .flatMap(
        (op) => (op.parameters ?? []) as { in: string; name: string; schema: { maxLength?: number } }[],
      )
      .filter((p) => p.in === 'path' && p.name !== 'index' && !ENUM_PARAMS.includes(p.name));
    expect(ids.length).toBeGreaterThan(40);
    for (const p of ids) expect(p.schema.maxLength, p.name).toBe(MAX_PATH_ID_LENGTH);
  });

  it('refuses a path id with a control character or a key separator, naming it', async () => {
    // Act
    const nul = await h.call('GET', '/departments/a%00b');
    const hash = await h.call('GET', '/departments/DEPT%23x');
    // Assess
    expect(nul.status).toBe(400);
    expect(fieldsOf(nul)).toEqual(['id']);
    expect(hash.status).toBe(400);
    expect(fieldsOf(hash)).toEqual(['id']);
  });
});

describe('paging cursors', () => {
  beforeAll(async () => {
    for (const sid of [tokens.admin, ADMIN2]) {
      for (const id of ['c-1', 'c-2', 'c-3']) {
        const res = await h.call('POST', '/clients', {
          token: sid,
          body: { id, lastName: `Last ${id}`, emails: [{ address: `${id}@example.test` }] },
        });
        expect(res.status).toBe(201);
      }
      for (const id of ['s-1', 's-2']) {
        const res = await h.call('POST', '/signatures', {
          token: sid,
          body: { id, name: id, text: 'Regards' },
        });
        expect(res.status).toBe(201);
      }
    }
  });

  it('finds every paged list (clients, signatures, form letters and the inbox lists)', () => {
    expect(pagedRoutes).toEqual(
      expect.arrayContaining(['/clients', '/signatures', '/form-letters', '/messages', '/tasks']),
    );
    expect(pagedRoutes.length).toBeGreaterThanOrEqual(8);
  });

  it('pages on with a cursor it gave out, and shows no table key in it', async () => {
    // Act
    const first = await h.call('GET', '/clients?limit=2');
    const second = await h.call('GET', `/clients?limit=2&cursor=${first.body.nextCursor}`);
    // Assess
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    const ids = [...first.body.items, ...second.body.items].map((c: { id: string }) => c.id);
    expect(ids).toEqual(['c-1', 'c-2', 'c-3']);
    const decoded = Buffer.from(first.body.nextCursor, 'base64url').toString('latin1');
    expect(decoded).not.toMatch(/ST#|GSI1|studio-1|c-2/);
  });

  it.each(pagedRoutes)('%s refuses forged cursors with a 400 naming cursor', async (path) => {
    // Prepare: well-formed DynamoDB keys, ours or another studio's, and junk.
    const forged = [
      base64({ PK: 'ST#studio-2#X', SK: 'Y' }),
      base64({}),
      base64({ PK: 'ST#studio-1', SK: 'CLIENT#c-1' }),
      'not-a-cursor',
      'x'.repeat(5000),
    ];
    for (const cursor of forged) {
      // Act
      const res = await h.call('GET', `${path}?cursor=${encodeURIComponent(cursor)}`);
      // Assess
      expect(res.status, `${path} with ${cursor.slice(0, 40)}`).toBe(400);
      expect(fieldsOf(res)).toEqual(['cursor']);
    }
  });

  it("refuses another list's cursor, and another studio's cursor for the same list", async () => {
    // Prepare
    const clients = await h.call('GET', '/clients?limit=1');
    const theirs = await h.call('GET', '/clients?limit=1', { token: ADMIN2 });
    expect(theirs.body.nextCursor).toEqual(expect.any(String));
    // Act
    const otherList = await h.call('GET', `/signatures?limit=1&cursor=${clients.body.nextCursor}`);
    const otherStudio = await h.call('GET', `/clients?limit=1&cursor=${theirs.body.nextCursor}`);
    const otherFilter = await h.call('GET', `/messages?unassigned=true&cursor=${clients.body.nextCursor}`);
    // Assess
    for (const res of [otherList, otherStudio, otherFilter]) {
      expect(res.status).toBe(400);
      expect(fieldsOf(res)).toEqual(['cursor']);
    }
  });

  it('refuses a cursor changed by one character', async () => {
    // Prepare
    const { body } = await h.call('GET', '/clients?limit=1');
    const cursor: string = body.nextCursor;
    const flipped = `${cursor.slice(0, 20)}${cursor[20] === 'A' ? 'B' : 'A'}${cursor.slice(21)}`;
    // Act
    const res = await h.call('GET', `/clients?limit=1&cursor=${flipped}`);
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toEqual(['cursor']);
  });
});

describe('signatures and form letters', () => {
  it('pages signatures and form letters like the other lists', async () => {
    // Prepare
    for (const id of ['fl-1', 'fl-2']) {
      const res = await h.call('POST', '/form-letters', {
        body: { id, name: id, subject: 'Hi', text: 'Hello' },
      });
      expect(res.status).toBe(201);
    }
    // Act
    const letters = await h.call('GET', '/form-letters?limit=1');
    const rest = await h.call('GET', `/form-letters?limit=1&cursor=${letters.body.nextCursor}`);
    const signatures = await h.call('GET', '/signatures?limit=1');
    // Assess
    expect(letters.body.items).toHaveLength(1);
    expect(rest.body.items).toHaveLength(1);
    expect(rest.body.items[0].id).not.toBe(letters.body.items[0].id);
    expect(signatures.body.items).toHaveLength(1);
    expect(signatures.body.nextCursor).toEqual(expect.any(String));
  });

  it.each([
    ['one-byte characters', 'x'.repeat(MAX_BODY_BYTES + 1)],
    ['three-byte characters under the character limit', '中'.repeat(Math.ceil(MAX_BODY_BYTES / 3) + 1)],
  ])('refuses a form letter over the size limit (%s) with a 400 naming html', async (_, html) => {
    // Act
    const res = await h.call('POST', '/form-letters', { body: { name: 'Big', subject: 'Big', html } });
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toEqual(['html']);
    expect(res.body.error.fields[0].message).toContain(`${MAX_BODY_BYTES}`);
  });

  it('refuses texts that are too large together, naming the larger', async () => {
    // Act
    const half = 'y'.repeat(MAX_BODY_BYTES / 2 + 10);
    const res = await h.call('POST', '/form-letters', {
      body: { name: 'Two halves', subject: 'Big', html: `${half}<b>`, text: half },
    });
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toEqual(['html']);
  });
});

describe('a new default', () => {
  it('clears the old default in the same write: a store failing after one write leaves one default', async () => {
    // Prepare
    const first = await h.call('POST', '/email-types', { body: { id: 'et-a', name: 'A', isDefault: true } });
    expect(first.status).toBe(201);
    const doc = h.d.repos.table.doc;
    const send = doc.send.bind(doc);
    let writes = 0;
    const writeNames = /^(Put|Update|Delete|TransactWrite|BatchWrite)/;
    doc.send = (async (command: { constructor: { name: string } }, ...rest: unknown[]) => {
      if (writeNames.test(command.constructor.name) && ++writes > 1)
        throw Object.assign(new Error('throttled'), { name: 'ProvisionedThroughputExceededException' });
      return (send as (...a: unknown[]) => Promise<unknown>)(command, ...rest);
    }) as typeof doc.send;
    // Act
    let res: Awaited<ReturnType<typeof h.call>>;
    try {
      res = await h.call('POST', '/email-types', { body: { id: 'et-b', name: 'B', isDefault: true } });
    } finally {
      doc.send = send as typeof doc.send;
    }
    // Assess
    expect(res.status).toBe(201);
    const list = await h.call('GET', '/email-types');
    const defaults = list.body.items
      .filter((t: { isDefault: boolean }) => t.isDefault)
      .map((t: { id: string }) => t.id);
    expect(defaults).toEqual(['et-b']);
  });

  it('refuses (409) when the old default changed between the read and the write, changing nothing', async () => {
    // Prepare
    await h.call('POST', '/task-statuses', { body: { id: 'ts-a', name: 'A', isDefault: true } });
    const repo = h.d.repos.taskStatuses;
    const list = repo.list.bind(repo);
    repo.list = async (sid: string) => {
      const read = await list(sid);
      // Someone renames the old default right after it was read.
      const a = read.find((r) => r.id === 'ts-a');
      if (a) await repo.replace(sid, 'ts-a', { id: 'ts-a', name: 'A renamed', isDefault: true }, a.version);
      return read;
    };
    // Act
    let res: Awaited<ReturnType<typeof h.call>>;
    try {
      res = await h.call('POST', '/task-statuses', { body: { id: 'ts-b', name: 'B', isDefault: true } });
    } finally {
      repo.list = list;
    }
    // Assess
    expect(res.status).toBe(409);
    expect((await h.call('GET', '/task-statuses/ts-b')).status).toBe(404);
  });
});
