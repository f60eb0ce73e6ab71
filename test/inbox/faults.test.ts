/**
 * Connection cuts in each phase of a poll (UIDL/LIST, TOP, RETR, between the record and DELE,
 * during QUIT) and a reconfigured box. Each asserts exactly-once import and no DELE of an unstored message.
 */
import { describe, expect, it } from 'vitest';
import { openBox } from '#lib/inbox/connect';
import type { PollPorts } from '#lib/inbox/poll';
import { type Pop3Client, Pop3Error } from '#lib/pop3/client';
import { rawMail } from '#test/support/mail';
import { inboxFixture, sid } from './support.ts';

const { ctx, ports, makeBox, poll } = inboxFixture();

async function subjectsOf(boxId: string): Promise<string[]> {
  const page = await ctx.d.repos.messages.listUnassigned(sid, 1000);
  return page.items.filter((m) => m.boxId === boxId && m.status === 'imported').map((m) => m.subject);
}

type Phase = 'uidl' | 'list' | 'top' | 'retr' | 'dele' | 'quit';

/** Ports whose first session drops the line in `phase` (the client closes without QUIT). */
function cutIn(phase: Phase): PollPorts {
  let sessions = 0;
  return {
    ...ports,
    open: async (box, password) => {
      const client = await openBox(box.connection, password, { ca: ctx.dovecot.caCertPem });
      if (sessions++ > 0) return client;
      const cut = <T extends unknown[], R>(fn: (...a: T) => R) =>
        ((...args: T) => {
          client.close();
          return fn.apply(client, args);
        }) as (...a: T) => R;
      const c = client as unknown as Record<string, unknown>;
      if (phase === 'uidl') c.uidl = cut(client.uidl);
      if (phase === 'list') c.list = cut(client.list);
      if (phase === 'dele') c.deleMany = cut(client.deleMany);
      if (phase === 'quit') c.quit = cut(client.quit);
      if (phase === 'top' || phase === 'retr') {
        const name = phase === 'top' ? 'topMany' : 'retrMany';
        const original = (client as unknown as Record<string, (...a: unknown[]) => AsyncGenerator>)[name]!;
        c[name] = (...args: unknown[]) => {
          const inner = original.apply(client, args);
          let n = 0;
          return {
            next: async () => {
              // The line drops after the second message of the first fetch.
              if (n++ === 2) client.close();
              return inner.next();
            },
            return: (v: unknown) => inner.return(v),
            throw: (e: unknown) => inner.throw(e),
            [Symbol.asyncIterator]() {
              return this;
            },
          };
        };
      }
      return client as Pop3Client;
    },
  };
}

describe('a poll cut in each phase', () => {
  for (const phase of ['uidl', 'list', 'top', 'retr', 'dele', 'quit'] as const) {
    it(`imports every message exactly once and deletes none unstored when cut during ${phase.toUpperCase()}`, async () => {
      // Prepare
      const { box, deliver } = await makeBox({ leaveOnServer: false, excludeBefore: '2026-01-01' });
      for (let i = 0; i < 6; i++) await deliver(rawMail({ subject: `${phase} ${i}` }));
      // Act
      const first = await poll(box.id, cutIn(phase));
      const storedAfterCut = (await subjectsOf(box.id)).length;
      const onServerAfterCut = await ctx.dovecot.messageCount(box.id);
      const second = await poll(box.id);
      // Assess
      expect(first.status).toBe('failed');
      // Nothing left the server that is not stored.
      expect(6 - onServerAfterCut).toBeLessThanOrEqual(storedAfterCut);
      expect(second.status).toBe('succeeded');
      const subjects = (await subjectsOf(box.id)).sort();
      expect(subjects).toEqual(Array.from({ length: 6 }, (_, i) => `${phase} ${i}`).sort());
      expect(await ctx.dovecot.messageCount(box.id)).toBe(0);
    });
  }
});

describe('a box whose mailbox changed', () => {
  it('imports, and never deletes unread, the mail of another user whose UIDLs match old markers', async () => {
    // Prepare: the box read mailbox A (kept on the server), then is pointed at mailbox B.
    const a = await makeBox({ leaveOnServer: true });
    const raw = rawMail({ subject: 'in A' });
    const { uidl } = await a.deliver(raw);
    await poll(a.box.id);
    const b = await makeBox({ leaveOnServer: false });
    await b.deliver(rawMail({ subject: 'in B' }));
    // Dovecot gives B's message its own UIDL: give the old box's marker that UIDL too, as a
    // server reusing UIDLs would.
    const listing = await (async () => {
      const client = await openBox(b.box.connection, `pw-${b.user}`, { ca: ctx.dovecot.caCertPem });
      const u = await client.uidl();
      await client.quit();
      return u;
    })();
    const markers = await ctx.d.repos.table.queryAll<{ SK: string; uidl: string }>({
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :u)',
      ExpressionAttributeValues: { ':pk': `ST#${sid}#BOX#${a.box.id}`, ':u': 'UIDL#' },
    });
    expect(markers.map((m) => m.uidl)).toEqual([uidl]);
    for (const m of markers) {
      await ctx.d.repos.table.put({
        ...m,
        PK: `ST#${sid}#BOX#${a.box.id}`,
        SK: m.SK.replace(uidl, listing[0]!.uid),
        uidl: listing[0]!.uid,
      });
    }
    // Act
    await ctx.d.repos.emailBoxes.replace(sid, a.box.id, {
      ...a.box,
      leaveOnServer: false,
      connection: b.box.connection,
    });
    const outcome = await poll(a.box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 1 });
    expect(await subjectsOf(a.box.id)).toContain('in B');
  });
});

/** Ports whose server answers -ERR to RETR of the message with UIDL `uidl`. */
function refusing(uidl: string): PollPorts {
  return {
    ...ports,
    open: async (box, password) => {
      const client = await openBox(box.connection, password, { ca: ctx.dovecot.caCertPem });
      const index = (await client.uidl()).find((u) => u.uid === uidl)?.id;
      const original = client.retrMany.bind(client);
      (client as unknown as Record<string, unknown>).retrMany = (ids: number[], options: object) => {
        const inner = original(ids, options);
        return {
          next: async () => {
            const r = await inner.next();
            if (!r.done && r.value.id === index) {
              // As the real generator does on -ERR: it ends, having drained what was in flight.
              await inner.return(undefined);
              throw new Pop3Error('server', `POP3 RETR ${index} failed: [SYS/TEMP] cannot read it`, {
                command: 'RETR',
              });
            }
            return r;
          },
          return: (v: unknown) => inner.return(v as never),
          throw: (e: unknown) => inner.throw(e),
          [Symbol.asyncIterator]() {
            return this;
          },
        };
      };
      return client;
    },
  };
}

describe('a message the server refuses to send', () => {
  it('imports the others, retries it, and after three failed runs quarantines it and leaves it on the server', async () => {
    // Prepare
    const { box, deliver } = await makeBox({ leaveOnServer: false });
    const delivered = [];
    for (let i = 0; i < 3; i++) delivered.push(await deliver(rawMail({ subject: `refused ${i}` })));
    // Act
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push(await poll(box.id, refusing(delivered[1]!.uidl)));
    // Assess
    expect(runs.map((r) => r.status)).toEqual(['partial', 'partial', 'partial', 'succeeded']);
    expect(runs[0]?.run?.counts).toMatchObject({ imported: 2 });
    expect(runs[0]?.run?.errors).toEqual([
      { kind: 'message-failed', message: expect.stringMatching(/attempt 1 of 3/) },
    ]);
    expect(runs[2]?.run?.errors).toEqual([
      { kind: 'quarantined', message: expect.stringMatching(/failed 3 runs/) },
    ]);
    expect(runs[3]?.run?.counts).toMatchObject({ imported: 0, skipped: 1 });
    expect((await subjectsOf(box.id)).sort()).toEqual(['refused 0', 'refused 2']);
    expect(await ctx.dovecot.messageCount(box.id)).toBe(1);
  });
});
