/**
 * Servers Dovecot cannot play by itself, through a small proxy in front of it
 * (test/support/pop3-proxy.ts): one without TOP, one refusing TOP, and a slow link without
 * PIPELINING.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EmailBox } from '#lib/domain/model';
import { rawMail } from '#test/support/mail';
import { type Pop3ProxyOptions, startPop3Proxy } from '#test/support/pop3-proxy';
import { inboxFixture, sid } from './support.ts';

const { ctx, makeBox, poll } = inboxFixture();
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
