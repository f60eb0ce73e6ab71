import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Repositories } from '#lib/data/repositories';
import type { Table } from '#lib/data/table';
import { ConflictError, NotFoundError } from '#lib/domain/errors';
import type { EmailBox, Message } from '#lib/domain/model';
import { testTable } from '#test/support/db';

const sid = 'studio-a';
let repos: Repositories;
let table: Table;

beforeAll(async () => {
  ({ repos, table } = await testTable());
});

const box: EmailBox = {
  id: 'sales',
  description: 'Sales',
  departmentId: 'd1',
  userId: 'u1',
  autoCreateTask: true,
  taskTypeId: 'tt1',
  taskStatusId: 'ts1',
  sendAutoReply: true,
  autoReplyFormLetterId: 'fl1',
  autoReplyToAll: false,
  autoReplyFirstEmailOnly: true,
  excludeBefore: '2026-01-01',
  leaveOnServer: true,
  connection: {
    type: 'pop3',
    server: 'pop.gmail.com',
    emailAddress: 'sales@studio.test',
    userName: 'sales@studio.test',
    passwordRef: 'arn:aws:secretsmanager:us-east-1:1:secret:studio-mail/x',
    ssl: true,
    spa: false,
    port: 995,
  },
};

describe('reference data repositories', () => {
  it.each([
    ['departments', { id: 'd1', name: 'Sales' }],
    ['users', { id: 'u1', firstName: 'Ana', lastName: 'Ruiz', email: 'ana@studio.test', departmentId: 'd1' }],
    ['signatures', { id: 's1', name: 'Default', html: '<p>Ana</p>', text: 'Ana' }],
    ['taskTypes', { id: 'tt1', name: 'Follow up', isDefault: true }],
    ['taskStatuses', { id: 'ts1', name: 'Open', isDefault: false }],
    ['emailTypes', { id: 'et1', name: 'Inquiry', isDefault: false }],
    ['emailStatuses', { id: 'es1', name: 'Unread', isDefault: true }],
    [
      'formLetters',
      {
        id: 'fl1',
        name: 'Thanks',
        kind: 'form-letter',
        subject: 'Thanks {{client.firstName}}',
        text: 'Hi',
        mergeFields: ['client.firstName'],
      },
    ],
    ['emailBoxes', box],
  ] as const)('round-trips a %s record: create, get, list, replace, delete', async (repoName, value) => {
    // Prepare
    const repo = repos[repoName] as unknown as Repositories['departments'];
    // Act
    const created = await repo.create(sid, value.id, value as never);
    const read = await repo.get(sid, value.id);
    const listed = await repo.list(sid);
    const replaced = await repo.replace(sid, value.id, value as never, 1);
    await repo.delete(sid, value.id);
    // Assess
    expect(created.version).toBe(1);
    expect(read).toMatchObject(value);
    expect(listed.map((r) => r.id)).toContain(value.id);
    expect(replaced.version).toBe(2);
    expect(await repo.get(sid, value.id)).toBeUndefined();
  });

  it('refuses to create an email box whose id already exists', async () => {
    // Prepare
    await repos.emailBoxes.create(sid, 'dup', { ...box, id: 'dup' });
    // Act
    const second = repos.emailBoxes.create(sid, 'dup', { ...box, id: 'dup', description: 'Other' });
    // Assess
    await expect(second).rejects.toBeInstanceOf(ConflictError);
    expect((await repos.emailBoxes.require(sid, 'dup')).description).toBe('Sales');
  });

  it('refuses a replace that carries a stale version', async () => {
    // Prepare
    await repos.departments.create(sid, 'stale', { id: 'stale', name: 'A' });
    await repos.departments.replace(sid, 'stale', { id: 'stale', name: 'B' }, 1);
    // Act
    const stale = repos.departments.replace(sid, 'stale', { id: 'stale', name: 'C' }, 1);
    // Assess
    await expect(stale).rejects.toBeInstanceOf(ConflictError);
    expect((await repos.departments.require(sid, 'stale')).name).toBe('B');
  });

  it('reports a missing record as not found on delete', async () => {
    await expect(repos.signatures.delete(sid, 'nope')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('keeps studios apart', async () => {
    // Prepare
    await repos.departments.create('studio-b', 'only-b', { id: 'only-b', name: 'B only' });
    // Act
    const fromA = await repos.departments.get(sid, 'only-b');
    // Assess
    expect(fromA).toBeUndefined();
  });
});

describe('settings singletons', () => {
  it('round-trips company email settings with an SMTP transport', async () => {
    // Prepare
    const settings = {
      studioName: 'Lumen Studio',
      displayName: 'Lumen Studio',
      emailAddress: 'hello@lumen.test',
      transport: {
        method: 'smtp' as const,
        server: 'smtp.lumen.test',
        port: 587,
        security: 'starttls' as const,
        logonName: 'hello@lumen.test',
        passwordRef: 'ref-1',
      },
      timeZone: 'Europe/Madrid',
    };
    // Act
    await repos.companyEmail.upsert(sid, 'company', settings);
    const second = await repos.companyEmail.upsert(sid, 'company', { ...settings, displayName: 'Lumen' });
    // Assess
    expect(second.version).toBe(2);
    expect((await repos.companyEmail.require(sid, 'company')).transport).toEqual(settings.transport);
  });

  it('round-trips user email settings that override only the sender', async () => {
    // Act
    await repos.userEmail.upsert(sid, 'u1', { userId: 'u1', emailAddress: 'ana@lumen.test' });
    // Assess
    const read = await repos.userEmail.require(sid, 'u1');
    expect(read.emailAddress).toBe('ana@lumen.test');
    expect(read.transport).toBeUndefined();
  });
});

describe('clients', () => {
  it('finds a client by any of its addresses, case-insensitively, and forgets removed ones', async () => {
    // Prepare
    await repos.clients.create(sid, 'c1', {
      id: 'c1',
      firstName: 'José',
      lastName: 'Núñez',
      emails: [
        { address: 'Jose@Example.com', primary: true },
        { address: 'jose.work@example.com', primary: false },
      ],
      groups: ['weddings'],
    });
    // Act
    const byPrimary = await repos.clients.findByAddress(sid, 'jose@example.COM');
    await repos.clients.replace(sid, 'c1', {
      id: 'c1',
      firstName: 'José',
      lastName: 'Núñez',
      emails: [{ address: 'jose@example.com', primary: true }],
      groups: [],
    });
    const byRemoved = await repos.clients.findByAddress(sid, 'jose.work@example.com');
    const page = await repos.clients.page(sid);
    // Assess
    expect(byPrimary).toEqual(['c1']);
    expect(byRemoved).toEqual([]);
    expect(page.items.map((c) => c.id)).toEqual(['c1']);
  });

  it('refuses to create a client that exists and leaves no address behind on delete', async () => {
    // Prepare
    await repos.clients.create(sid, 'c2', { id: 'c2', emails: [{ address: 'x@y.test', primary: true }] });
    // Act
    const again = repos.clients.create(sid, 'c2', {
      id: 'c2',
      emails: [{ address: 'other@y.test', primary: true }],
    });
    // Assess
    await expect(again).rejects.toBeInstanceOf(ConflictError);
    expect(await repos.clients.findByAddress(sid, 'other@y.test')).toEqual([]);
    await repos.clients.delete(sid, 'c2');
    expect(await repos.clients.findByAddress(sid, 'x@y.test')).toEqual([]);
  });
});

describe('inbox records', () => {
  const msg = (id: string, over: Partial<Message> = {}): Message => ({
    id,
    direction: 'in',
    status: 'imported',
    boxId: 'sales',
    threadId: 't1',
    messageId: '<abc@mail.test>',
    references: [],
    to: [{ address: 'sales@studio.test' }],
    cc: [],
    subject: 'Hello',
    date: '2026-05-01T10:00:00.000Z',
    snippet: 'Hi',
    rawKey: `raw/${id}.eml`,
    attachments: [],
    automatic: false,
    ...over,
  });

  it('round-trips messages and lists them by client, unassigned, thread and Message-ID', async () => {
    // Act
    await repos.messages.create(sid, msg('m1', { clientId: 'c9' }));
    await repos.messages.create(sid, msg('m2', { date: '2026-05-02T10:00:00.000Z' }));
    // Assess
    expect((await repos.messages.require(sid, 'm1')).clientId).toBe('c9');
    expect((await repos.messages.listForClient(sid, 'c9')).items.map((m) => m.id)).toEqual(['m1']);
    expect((await repos.messages.listUnassigned(sid)).items.map((m) => m.id)).toEqual(['m2']);
    expect((await repos.messages.listThread(sid, 't1')).map((m) => m.id).sort()).toEqual(['m1', 'm2']);
    expect((await repos.messages.findByMessageId(sid, '<ABC@mail.test>')).map((m) => m.id).sort()).toEqual([
      'm1',
      'm2',
    ]);
    await expect(repos.messages.create(sid, msg('m1'))).rejects.toBeInstanceOf(ConflictError);
  });

  it('round-trips tasks newest first', async () => {
    // Act
    await repos.tasks.create(sid, { id: 'task1', title: 'Reply to Ana', messageId: 'm1' });
    await new Promise((r) => setTimeout(r, 5));
    await repos.tasks.create(sid, { id: 'task2', title: 'Reply to Bo' });
    // Assess
    expect((await repos.tasks.list(sid)).items.map((t) => t.id)).toEqual(['task2', 'task1']);
    await expect(repos.tasks.create(sid, { id: 'task1', title: 'again' })).rejects.toBeInstanceOf(
      ConflictError,
    );
  });

  it('round-trips runs newest first', async () => {
    // Prepare
    const base = { boxId: 'sales', status: 'succeeded' as const, trigger: 'manual' as const, errors: [] };
    const counts = { seen: 3, imported: 2, skipped: 1, quarantined: 0, tasks: 1, autoReplies: 1 };
    // Act
    await repos.runs.put(sid, { ...base, id: 'r1', startedAt: '2026-05-01T10:00:00.000Z', counts });
    await repos.runs.put(sid, { ...base, id: 'r2', startedAt: '2026-05-01T11:00:00.000Z', counts });
    // Assess
    const runs = await repos.runs.list(sid, 'sales');
    expect(runs.items.map((r) => r.id)).toEqual(['r2', 'r1']);
    expect(runs.items[0]?.counts).toEqual(counts);
  });

  it('lets one poll hold a box lease at a time, and a second take it once it expires', async () => {
    // Prepare
    const t0 = Date.now();
    // Act
    const first = await repos.boxState.acquireLease(sid, 'sales', 'run-1', 60_000, t0);
    const second = await repos.boxState.acquireLease(sid, 'sales', 'run-2', 60_000, t0 + 1_000);
    const afterExpiry = await repos.boxState.acquireLease(sid, 'sales', 'run-2', 60_000, t0 + 61_000);
    await repos.boxState.releaseLease(sid, 'sales', 'run-1');
    // Assess
    expect([first, second, afterExpiry]).toEqual([true, false, true]);
    expect((await repos.boxState.get(sid, 'sales')).leaseOwner).toBe('run-2');
  });

  it('counts consecutive failures and resets them on success', async () => {
    // Act
    await repos.boxState.recordOutcome(sid, 'b2', false, 'auth');
    const two = await repos.boxState.recordOutcome(sid, 'b2', false, 'auth');
    const ok = await repos.boxState.recordOutcome(sid, 'b2', true);
    // Assess
    expect(two.consecutiveFailures).toBe(2);
    expect(ok.consecutiveFailures).toBe(0);
    expect(ok.lastSuccessAt).toBeDefined();
  });
});

describe('batch reads', () => {
  it('gives up, instead of retrying forever, on keys DynamoDB keeps leaving unprocessed', async () => {
    // Prepare: every answer hands all keys back as unprocessed (throttling that does not pass).
    const keys = [{ PK: 'ST#x', SK: 'UIDL#1' }];
    const send = vi
      .spyOn(table.doc, 'send')
      .mockImplementation(async () => ({ Responses: {}, UnprocessedKeys: { [table.name]: { Keys: keys } } }));
    vi.useFakeTimers();
    try {
      // Act
      const read = table.batchGet(keys).catch((error: unknown) => error);
      await vi.advanceTimersByTimeAsync(60_000);
      // Assess
      expect(await read).toMatchObject({
        message: expect.stringMatching(/1 keys unprocessed after 10 tries/),
      });
      expect(send).toHaveBeenCalledTimes(10);
    } finally {
      vi.useRealTimers();
      send.mockRestore();
    }
  });
});

describe('coalesced reads', () => {
  it('sends reads asked for in the same turn as one BatchGetItem and gives each caller its own item', async () => {
    // Prepare: two items; a third key that names nothing, and the first asked for twice.
    await table.put({ PK: 'ST#coalesce', SK: 'A', v: 1 });
    await table.put({ PK: 'ST#coalesce', SK: 'B', v: 2 });
    const send = vi.spyOn(table.doc, 'send');
    try {
      // Act
      const [a, b, missing, again] = await Promise.all([
        table.get({ PK: 'ST#coalesce', SK: 'A' }),
        table.get({ PK: 'ST#coalesce', SK: 'B' }),
        table.get({ PK: 'ST#coalesce', SK: 'none' }),
        table.get({ PK: 'ST#coalesce', SK: 'A' }),
      ]);
      // Assess
      expect([a?.v, b?.v, missing, again?.v]).toEqual([1, 2, undefined, 1]);
      expect(send.mock.calls.map(([c]) => c.constructor.name)).toEqual(['BatchGetCommand']);
    } finally {
      send.mockRestore();
    }
  });

  it('reads a key alone with GetItem, and when a batch fails tries each read on its own', async () => {
    // Prepare
    await table.put({ PK: 'ST#coalesce', SK: 'C', v: 3 });
    const original = table.doc.send.bind(table.doc) as (c: unknown) => Promise<unknown>;
    const send = vi.spyOn(table.doc, 'send');
    try {
      // Act
      const alone = await table.get({ PK: 'ST#coalesce', SK: 'C' });
      // Assess
      expect(alone?.v).toBe(3);
      expect(send.mock.calls.map(([c]) => c.constructor.name)).toEqual(['GetCommand']);
      // Act: the batch request fails, and so does the lone read of B afterwards
      send.mockClear();
      let calls = 0;
      send.mockImplementation((async (command: { input?: { Key?: { SK?: string } } }) => {
        if (calls++ === 0) throw new Error('network down');
        if (command.input?.Key?.SK === 'B') throw new Error('B is unreadable');
        return original(command);
      }) as never);
      const results = await Promise.allSettled([
        table.get({ PK: 'ST#coalesce', SK: 'A' }),
        table.get({ PK: 'ST#coalesce', SK: 'B' }),
      ]);
      // Assess: A's reader gets its item; only B's reader sees an error
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
      expect((results[0] as PromiseFulfilledResult<{ v: number }>).value.v).toBe(1);
      expect(send.mock.calls.map(([c]) => c.constructor.name)).toEqual([
        'BatchGetCommand',
        'GetCommand',
        'GetCommand',
      ]);
    } finally {
      send.mockRestore();
    }
  });
});
