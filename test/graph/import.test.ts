import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rawMail } from '#test/support/mail';
import { graphFixture, sid } from './support.ts';

const { ctx, makeBox, poll, portsWith } = graphFixture();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function imported(boxId: string) {
  const unassigned = await ctx.d.repos.messages.listUnassigned(sid, 1000);
  return unassigned.items.filter((m) => m.boxId === boxId);
}

/** The requests made since `from` (an index into the server's log). */
const since = (from: number) => ctx.graph.requests.slice(from);

describe('importing an Exchange Online box through Microsoft Graph', () => {
  it('imports every message of a delta spanning several pages, byte for byte, and keeps the delta link', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    const eightBit = Buffer.concat([
      Buffer.from(
        'From: =?ISO-8859-1?Q?Jos=E9?= <jose@client.test>\r\nTo: sales@studio.test\r\nSubject: 8bit\r\nDate: Mon, 01 Jun 2026 10:00:00 +0000\r\nMessage-ID: <latin-graph@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n',
      ),
      Buffer.from([0x4e, 0x6f, 0xeb, 0x6c, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a, 0x2e, 0x2e, 0x0a]),
    ]);
    const raws = [eightBit, ...Array.from({ length: 24 }, (_, i) => rawMail({ subject: `Graph ${i}` }))];
    for (const raw of raws) deliver(raw);
    const from = ctx.graph.requests.length;
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.status).toBe('succeeded');
    expect(outcome.run?.counts).toMatchObject({ seen: 25, imported: 25 });
    const msgs = await imported(box.id);
    const stored = new Set(
      await Promise.all(msgs.map(async (m) => sha(await ctx.d.blobs.getBuffer(m.rawKey)))),
    );
    expect(stored).toEqual(new Set(raws.map(sha)));
    // 25 messages in pages of 10: two next links, then the delta link.
    const deltas = since(from).filter((r) => r.path.endsWith('/messages/delta'));
    expect(deltas).toHaveLength(3);
    const state = await ctx.d.repos.boxState.get(sid, box.id);
    expect(state.graphDelta?.link).toContain('$deltatoken=');
    // Left on the server as it was (keep).
    expect(ctx.graph.messagesIn(box.connection.emailAddress).every((m) => !m.isRead)).toBe(true);
  });

  it('imports only the new mail on the next run, from the delta link', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    for (let i = 0; i < 3; i++) deliver(rawMail({ subject: `old ${i}` }));
    await poll(box.id);
    const later = [rawMail({ subject: 'new 1' }), rawMail({ subject: 'new 2' })];
    for (const raw of later) deliver(raw);
    const from = ctx.graph.requests.length;
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ seen: 2, imported: 2 });
    const fetched = since(from).filter((r) => r.path.endsWith('/$value'));
    expect(fetched).toHaveLength(2);
    expect((await imported(box.id)).map((m) => m.subject).sort()).toEqual([
      'new 1',
      'new 2',
      'old 0',
      'old 1',
      'old 2',
    ]);
  });

  it('waits out 429 and 503 answers as Retry-After says and imports everything', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    for (let i = 0; i < 4; i++) deliver(rawMail({ subject: `busy ${i}` }));
    const from = ctx.graph.requests.length;
    ctx.graph.throttle(2, 1, 429);
    const started = Date.now();
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.status).toBe('succeeded');
    expect(outcome.run?.counts.imported).toBe(4);
    expect(since(from).filter((r) => r.status === 429)).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    ctx.graph.throttle(1, 1, 503);
    deliver(rawMail({ subject: 'busy again' }));
    const again = await poll(box.id);
    expect(again.run?.counts.imported).toBe(1);
  });

  it('fails a run throttled past its budget without losing anything, and the next run imports the mail', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    deliver(rawMail({ subject: 'later' }));
    ctx.graph.throttle(1, 3600);
    // Act
    const throttled = await poll(box.id);
    const next = await poll(box.id);
    // Assess
    expect(throttled.status).toBe('failed');
    expect(throttled.failure).toMatchObject({ kind: 'throttled', field: 'connection.emailAddress' });
    expect(next.run?.counts.imported).toBe(1);
  });

  it('gets a new token when Graph says the current one expired, and goes on', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    deliver(rawMail({ subject: 'before' }));
    await poll(box.id);
    deliver(rawMail({ subject: 'after' }));
    ctx.graph.expireTokens();
    const issued = ctx.graph.tokensIssued;
    const from = ctx.graph.requests.length;
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.status).toBe('succeeded');
    expect(outcome.run?.counts.imported).toBe(1);
    expect(since(from).filter((r) => r.status === 401)).toHaveLength(1);
    expect(ctx.graph.tokensIssued).toBe(issued + 1);
  });

  it('marks stored mail read when the box says so, and leaves it in the inbox', async () => {
    // Prepare
    const { box, address, deliver } = await makeBox({
      connection: { afterImport: 'mark-read' } as never,
    });
    deliver(rawMail({ subject: 'read me' }));
    deliver(rawMail({ subject: 'read me too' }));
    // Act
    const outcome = await poll(box.id);
    const again = await poll(box.id);
    // Assess
    expect(outcome.run?.counts.imported).toBe(2);
    const inbox = ctx.graph.messagesIn(address);
    expect(inbox).toHaveLength(2);
    expect(inbox.every((m) => m.isRead)).toBe(true);
    // Marking them read is a change the next delta lists: skipped, never imported or marked again.
    expect(again.run?.counts).toMatchObject({ imported: 0 });
    expect(
      ctx.graph.requests.filter(
        (r) => r.method === 'PATCH' && r.path.includes(encodeURIComponent(inbox[0]!.id)),
      ),
    ).toHaveLength(1);
  });

  it('moves stored mail to the named folder when the box does not leave it on the server', async () => {
    // Prepare
    const { box, address, deliver } = await makeBox({
      leaveOnServer: false,
      connection: { afterImport: 'move', moveToFolder: 'Imported' } as never,
    });
    const folder = ctx.graph.addFolder(address, 'Imported', 'inbox');
    const raw = rawMail({ subject: 'move me' });
    deliver(raw);
    // Act
    const outcome = await poll(box.id);
    const again = await poll(box.id);
    // Assess
    expect(outcome.status).toBe('succeeded');
    expect(ctx.graph.messagesIn(address)).toHaveLength(0);
    expect(ctx.graph.messagesIn(address, folder).map((m) => sha(m.raw))).toEqual([sha(raw)]);
    expect(again.run?.counts).toMatchObject({ seen: 0, imported: 0 });
  });

  it('fails the run naming the folder when the move-to folder does not exist, and deletes nothing', async () => {
    // Prepare
    const { box, address, deliver } = await makeBox({
      leaveOnServer: false,
      connection: { afterImport: 'move', moveToFolder: 'Nowhere' } as never,
    });
    deliver(rawMail({ subject: 'stay' }));
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.status).toBe('failed');
    expect(outcome.failure?.field).toBe('connection.moveToFolder');
    expect(ctx.graph.messagesIn(address)).toHaveLength(1);
    expect(await imported(box.id)).toHaveLength(1);
  });

  it('deletes stored mail when the box does not leave it on the server', async () => {
    // Prepare
    const { box, address, deliver } = await makeBox({ leaveOnServer: false });
    for (let i = 0; i < 3; i++) deliver(rawMail({ subject: `delete ${i}` }));
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts.imported).toBe(3);
    expect(ctx.graph.messagesIn(address)).toHaveLength(0);
    expect(
      ctx.graph.requests.filter((r) => r.method === 'DELETE' && r.path.includes(encodeURIComponent(address))),
    ).toHaveLength(3);
  });

  it('keeps the delta link where it was when a run fails midway, so the next run takes the rest once', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    const ids = Array.from({ length: 5 }, (_, i) => deliver(rawMail({ subject: `cut ${i}` })));
    ctx.graph.failNext(1, 500, new RegExp(`${ids[3]!.replace(/[+=]/g, '\\$&')}/\\$value$`));
    // Act
    const cut = await poll(box.id);
    const stateAfterCut = await ctx.d.repos.boxState.get(sid, box.id);
    const next = await poll(box.id);
    // Assess
    expect(cut.status).toBe('failed');
    expect(cut.run?.counts.imported).toBe(3);
    expect(stateAfterCut.graphDelta).toBeUndefined();
    expect(next.status).toBe('succeeded');
    expect(next.run?.counts).toMatchObject({ seen: 5, imported: 2 });
    expect((await imported(box.id)).map((m) => m.subject).sort()).toEqual([
      'cut 0',
      'cut 1',
      'cut 2',
      'cut 3',
      'cut 4',
    ]);
    expect((await ctx.d.repos.boxState.get(sid, box.id)).graphDelta?.link).toContain('$deltatoken=');
  });

  it('finds the same bytes under a second Graph id as a duplicate', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    const raw = rawMail({ subject: 'twice' });
    deliver(raw);
    deliver(raw);
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ seen: 2, imported: 1 });
    expect(await imported(box.id)).toHaveLength(1);
  });

  it('takes a first sync larger than one listing over several runs', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    for (let i = 0; i < 25; i++) deliver(rawMail({ subject: `bulk ${i}` }));
    const small = portsWith({ pageSize: 10, maxListed: 10 });
    // Act
    const first = await poll(box.id, small);
    const second = await poll(box.id, small);
    const third = await poll(box.id, small);
    // Assess
    expect([first, second, third].map((o) => o.run?.counts.imported)).toEqual([10, 10, 5]);
    expect(await imported(box.id)).toHaveLength(25);
  });
});
