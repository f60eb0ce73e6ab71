/**
 * Servers Dovecot cannot play by itself, through a small proxy in front of it
 * (test/support/pop3-proxy.ts): one without TOP, one refusing TOP, and a slow link without
 * PIPELINING.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeRepositories } from '#lib/data/repositories';
import type { Table, TxItem } from '#lib/data/table';
import type { EmailBox } from '#lib/domain/model';
import { openBox } from '#lib/inbox/connect';
import { pollBox } from '#lib/inbox/poll';
import { rawMail } from '#test/support/mail';
import { type Pop3ProxyOptions, startPop3Proxy } from '#test/support/pop3-proxy';
import { inboxFixture, sid } from './support.ts';

const { ctx, ports, makeBox, poll } = inboxFixture();
const proxies: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

/** A box reached through a proxy with `options` over Dovecot's plain POP3 port. */
async function proxiedBox(options: Omit<Pop3ProxyOptions, 'target'>, over: Partial<EmailBox> = {}) {
  const proxy = await startPop3Proxy({
    ...options,
    target: { host: '127.0.0.1', port: ctx.dovecot.pop3Port },
  });
  proxies.push(proxy);
  const made = await makeBox({
    ...over,
    connection: { ssl: false, port: proxy.port } as EmailBox['connection'],
  });
  return { ...made, proxy };
}

async function importedSubjects(boxId: string) {
  const page = await ctx.d.repos.messages.listUnassigned(sid, 1000);
  return page.items
    .filter((m) => m.boxId === boxId)
    .map((m) => m.subject)
    .sort();
}

describe('exclude-before on a server without TOP', () => {
  it.each([
    ['whose CAPA lacks TOP', { hide: ['TOP'], refuse: ['TOP'] }, false],
    ['that lists TOP but refuses it', { refuse: ['TOP'] }, true],
  ])(
    'judges each message from its retrieved copy on a server %s: old mail stays on the server, the rest is imported',
    async (_label, options, topsTried) => {
      // Prepare
      const { box, user, deliver, proxy } = await proxiedBox(options, {
        excludeBefore: '2026-03-01',
        leaveOnServer: false,
      });
      await deliver(rawMail({ subject: 'old', date: 'Sun, 01 Feb 2026 10:00:00 +0000' }));
      await deliver(
        rawMail({
          subject: 'old, undated, received',
          date: 'not a date',
          headers: { Received: 'from mx.client.test by mx.studio.test; Mon, 02 Feb 2026 10:00:00 +0000' },
        }),
      );
      await deliver(rawMail({ subject: 'undated, no trace', date: 'not a date' }));
      await deliver(rawMail({ subject: 'new', date: 'Sun, 01 Mar 2026 10:00:00 +0000' }));
      // Act
      const outcome = await poll(box.id);
      const again = await poll(box.id);
      // Assess
      expect(outcome.status).toBe('succeeded');
      expect(outcome.run?.counts).toMatchObject({ seen: 4, imported: 2, skipped: 2, quarantined: 0 });
      expect(await importedSubjects(box.id)).toEqual(['new', 'undated, no trace']);
      expect(again.run?.counts).toMatchObject({ seen: 2, imported: 0, skipped: 2 });
      // The excluded two stay on the server, and no raw copy of them is kept.
      expect(await ctx.dovecot.messageCount(user)).toBe(2);
      expect(readdirSync(join(ctx.d.dir, 'blobs', 'raw', sid, box.id))).toHaveLength(2);
      // Without TOP in CAPA none is tried; a refused one is tried (pipelined) in the first run only.
      const tops = proxy.commands.filter((c) => /^TOP /i.test(c.line));
      expect(tops.length > 0).toBe(topsTried);
      expect(new Set(tops.map((t) => t.session)).size).toBeLessThanOrEqual(1);
    },
  );
});

/** The table, except that each committed transaction is also told to `onCommit`. */
function recordingTable(base: Table, onCommit: (items: TxItem[]) => void): Table {
  return Object.create(base, {
    transact: {
      value: async (items: TxItem[]) => {
        await base.transact(items);
        onCommit(items);
      },
    },
  });
}

describe('deleting from the server', () => {
  it('sends each DELE, in server order, and the QUIT that commits it, only after that message is durably recorded', async () => {
    // Prepare: one log of what happened, in order: each message's record committing (the table
    // twin) and each command reaching the server (the proxy).
    const events: ({ kind: 'durable'; uidl: string } | { kind: 'command'; session: number; line: string })[] =
      [];
    const { box, user, deliver } = await proxiedBox(
      { onCommand: (c) => events.push({ kind: 'command', session: c.session, line: c.line }) },
      { leaveOnServer: false },
    );
    for (let i = 0; i < 20; i++) await deliver(rawMail({ subject: `order ${i}` }));
    // The server's numbering, as the poll's first session will see it.
    const lister = await openBox(
      { ...box.connection, ssl: true, port: ctx.dovecot.pop3sPort },
      `pw-${user}`,
      { ca: ctx.dovecot.caCertPem },
    );
    const uidlOf = new Map((await lister.uidl()).map((e) => [e.id, e.uid]));
    await lister.quit();
    const repos = makeRepositories(
      recordingTable(ctx.d.repos.table, (items) => {
        for (const i of items) {
          const item = 'Put' in i ? i.Put.Item : undefined;
          if (item?.entity === 'UIDL' && item.state === 'imported')
            events.push({ kind: 'durable', uidl: String(item.uidl) });
        }
      }),
    );
    // Act
    const outcome = await pollBox(
      { ...ctx.d, repos },
      { studioId: sid, boxId: box.id, trigger: 'manual', budgetMs: 120_000 },
      ports,
    );
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 20 });
    expect(await ctx.dovecot.messageCount(user)).toBe(0);
    const at = (predicate: (e: (typeof events)[number]) => boolean) => events.findIndex(predicate);
    const deles = events.flatMap((e, index) =>
      e.kind === 'command' && /^DELE \d+$/.test(e.line)
        ? [{ index, session: e.session, n: Number(e.line.slice(5)) }]
        : [],
    );
    expect(deles).toHaveLength(20);
    // In server order, though messages are recorded several at once (IMPORT_CONCURRENCY).
    expect(deles.map((x) => x.n)).toEqual(deles.map((x) => x.n).sort((a, b) => a - b));
    for (const dele of deles) {
      const uidl = uidlOf.get(dele.n);
      const durable = at((e) => e.kind === 'durable' && e.uidl === uidl);
      const quit = at((e) => e.kind === 'command' && e.session === dele.session && e.line === 'QUIT');
      expect(durable, `record of message ${dele.n}`).toBeGreaterThanOrEqual(0);
      expect(dele.index, `DELE ${dele.n} after its record`).toBeGreaterThan(durable);
      expect(quit, `QUIT after DELE ${dele.n}`).toBeGreaterThan(dele.index);
    }
  });
});

describe('a slow link to a server without PIPELINING', () => {
  it('converges over runs: each run ends (never left running), commits its DELEs with QUIT, and imports every message once', {
    timeout: 120_000,
  }, async () => {
    // Prepare: every command takes 40 ms to arrive and one is in flight at a time, against a
    // 2 s budget: one run cannot take the 40 messages and delete them.
    const { box, user, deliver, proxy } = await proxiedBox(
      { hide: ['PIPELINING'], latencyMs: 40 },
      { leaveOnServer: false },
    );
    for (let i = 0; i < 40; i++) await deliver(rawMail({ subject: `slow ${i}` }));
    // Act
    const runs = [];
    const left: number[] = [];
    for (let i = 0; i < 20; i++) {
      const outcome = await poll(box.id, ports, 2_000);
      runs.push(outcome);
      left.push(await ctx.dovecot.messageCount(user));
      if (outcome.status === 'succeeded' && left.at(-1) === 0) break;
    }
    // Assess
    expect(runs.length).toBeGreaterThan(1);
    expect(runs.at(-1)?.status).toBe('succeeded');
    expect(runs.slice(0, -1).every((r) => r.status === 'partial')).toBe(true);
    const stored = await ctx.d.repos.runs.list(sid, box.id, 50);
    expect(stored.items.filter((r) => r.status === 'running')).toEqual([]);
    expect(runs.reduce((n, r) => n + (r.run?.counts.imported ?? 0), 0)).toBe(40);
    expect(new Set(await importedSubjects(box.id)).size).toBe(40);
    expect(left.at(-1)).toBe(0);
    // Each session's DELEs were committed by its QUIT: the mailbox shrank run by run by them.
    const sessions = new Map<number, string[]>();
    for (const c of proxy.commands) sessions.set(c.session, [...(sessions.get(c.session) ?? []), c.line]);
    let deleted = 0;
    for (const lines of sessions.values()) {
      const deles = lines.filter((l) => l.startsWith('DELE ')).length;
      if (deles > 0) expect(lines.at(-1)).toBe('QUIT');
      deleted += deles;
    }
    expect(deleted).toBe(40);
    expect(left.every((n, i) => n <= (left[i - 1] ?? 40))).toBe(true);
  });
});
