import { chmod } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { mailboxIdentity } from '#lib/inbox/poll';
import { rawMail } from '#test/support/mail';
import { folderState, imapFixture, sid } from './support.ts';

const { ctx, makeBox, poll, messagesOf } = imapFixture();

describe('an IMAP message the server cannot send', () => {
  it("is that message's failure only: the others are imported, it is retried and after three runs quarantined, left on the server", async () => {
    // Prepare: Dovecot cannot read the second message's file.
    const { box, deliver, user, owner } = await makeBox({
      leaveOnServer: false,
      connection: { afterImport: 'delete' },
    });
    await deliver(rawMail({ subject: 'first' }));
    const broken = await deliver(rawMail({ subject: 'unreadable' }));
    await deliver(rawMail({ subject: 'third' }));
    const o = await owner();
    const listing = await folderState(o);
    await o.logout();
    const uidsOf = async () => listing.messages.map((m) => `${listing.uidValidity}:${m.uid}`);
    await chmod(broken.path, 0o000);
    // Act
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push(await poll(box.id));
    // Assess
    expect((await messagesOf(box.id)).map((m) => m.subject).sort()).toEqual(['first', 'third']);
    // Each failed run was charged to the unreadable message (never to its neighbours).
    expect(runs.map((r) => r.status)).toEqual(['failed', 'failed', 'failed', 'succeeded']);
    const markers = await ctx.d.repos.importMarkers.findUidls(sid, box.id, mailboxIdentity(box), [
      ...(await uidsOf()),
    ]);
    expect([...markers.values()].map((m) => m.state).sort()).toEqual(['imported', 'imported', 'quarantined']);
    // Stored mail is deleted; the one that could not be had stays on the server.
    expect(await ctx.dovecot.messageCount(user)).toBe(1);
  });
});
