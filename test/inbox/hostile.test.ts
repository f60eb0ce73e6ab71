/**
 * Hostile mail against Dovecot: ≥150 generated messages of every kind that has broken an import
 * (thousands of parts, Content-Types S3 refuses, broken encodings, filenames of every shape, huge
 * headers, messages Dovecot sends broken), each followed by an ordinary one. The process must
 * never die, every message ends imported or quarantined with a reason, the one after each poison
 * message is imported, a second poll imports nothing, and a failure leaves no part files behind.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostileMessages } from '#test/support/hostile-mail';
import { rawMail } from '#test/support/mail';
import { inboxFixture, sid } from './support.ts';

const { ctx, ports, makeBox, poll } = inboxFixture();

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('a mailbox full of hostile mail', () => {
  it('imports or quarantines every message with a reason, the one after each poison message too, and a second poll imports nothing', {
    timeout: 600_000,
  }, async () => {
    // Prepare
    const { box, deliver } = await makeBox({ leaveOnServer: false });
    const hostile = hostileMessages();
    for (const [i, [, raw]] of hostile.entries()) {
      await deliver(raw);
      await deliver(rawMail({ subject: `after poison ${i}` }));
    }
    const total = hostile.length * 2;
    // Act
    const first = await poll(box.id, ports, 500_000);
    const second = await poll(box.id, ports, 120_000);
    // Assess
    expect(total).toBeGreaterThanOrEqual(150);
    expect(first.status).not.toBe('failed');
    const c = first.run!.counts;
    expect(c.seen).toBe(total);
    // Each message accounted for: imported, quarantined, or (the same bytes twice) skipped.
    expect(c.imported + c.quarantined + c.skipped).toBe(total);
    const messages = [];
    let cursor: string | undefined;
    do {
      const page = await ctx.d.repos.messages.listUnassigned(sid, 500, cursor);
      messages.push(...page.items.filter((m) => m.boxId === box.id));
      cursor = page.nextCursor;
    } while (cursor);
    const subjects = new Set(messages.filter((m) => m.status === 'imported').map((m) => m.subject));
    for (let i = 0; i < hostile.length; i++) expect(subjects).toContain(`after poison ${i}`);
    const quarantined = messages.filter((m) => m.status === 'quarantined');
    for (const m of quarantined) expect(m.error, `reason for ${m.id}`).toMatch(/\w/);
    expect(first.run!.errors.filter((e) => e.kind === 'quarantined').length).toBeGreaterThan(0);
    expect(second.run?.counts).toMatchObject({ imported: 0, quarantined: 0 });
    expect(second.status).not.toBe('failed');
    // A failed parse leaves no part files: every file under parts/ belongs to an imported message.
    const keep = new Set(
      messages.flatMap((m) => [m.textKey, m.htmlKey, ...m.attachments.map((a) => a.blobKey)].filter(Boolean)),
    );
    const root = join(ctx.d.dir, 'blobs');
    const parts = filesUnder(join(root, 'parts', sid)).map((p) => p.slice(root.length + 1));
    const stray = parts.filter((p) => !keep.has(p));
    expect(stray).toEqual([]);
    for (const m of quarantined) expect(filesUnder(join(root, 'parts', sid, m.id))).toEqual([]);
    // What is stored may go from the server; what could not be had stays there.
    expect(await ctx.dovecot.messageCount(box.id)).toBeLessThanOrEqual(c.quarantined);
  });
});
