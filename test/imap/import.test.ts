import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rawMail } from '#test/support/mail';
import { folderState, imapFixture, resetUidValidity, setReceived, sid } from './support.ts';

const { ctx, ports, makeBox, poll, messagesOf } = imapFixture();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('importing an IMAP box', () => {
  it('stores the raw bytes exactly: CRLF, dot lines, 8-bit ISO-8859-1 and ISO-2022-JP', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    const dots = rawMail({ subject: 'Dots', body: 'first\r\n.\r\n..two dots\r\n.leading\r\nlast\r\n' });
    const latin = Buffer.concat([
      Buffer.from(
        'From: =?ISO-8859-1?Q?Jos=E9?= <jose@client.test>\r\nTo: sales@studio.test\r\nSubject: =?ISO-8859-1?Q?Caf=E9?=\r\nDate: Mon, 01 Jun 2026 10:00:00 +0000\r\nMessage-ID: <latin-imap@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n',
      ),
      Buffer.from([0x4e, 0x6f, 0xeb, 0x6c, 0x20, 0xe9, 0x74, 0xe9, 0x0d, 0x0a]),
    ]);
    const jis = Buffer.concat([
      Buffer.from(
        'From: yamada@client.test\r\nTo: sales@studio.test\r\nSubject: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?=\r\nDate: Mon, 01 Jun 2026 11:00:00 +0000\r\nMessage-ID: <jis-imap@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n',
      ),
      Buffer.from([0x1b, 0x24, 0x42, 0x3b, 0x33, 0x45, 0x44, 0x1b, 0x28, 0x42, 0x0d, 0x0a]),
    ]);
    for (const raw of [dots, latin, jis]) await deliver(raw);
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.status).toBe('succeeded');
    expect(outcome.run?.counts).toMatchObject({ seen: 3, imported: 3 });
    const msgs = await messagesOf(box.id);
    const bySubject = new Map(msgs.map((m) => [m.subject, m]));
    expect(sha(await ctx.d.blobs.getBuffer(bySubject.get('Dots')!.rawKey))).toBe(sha(dots));
    expect(sha(await ctx.d.blobs.getBuffer(bySubject.get('Café')!.rawKey))).toBe(sha(latin));
    expect(sha(await ctx.d.blobs.getBuffer(bySubject.get('山田')!.rawKey))).toBe(sha(jis));
    expect((await ctx.d.blobs.getBuffer(bySubject.get('Café')!.textKey ?? '')).toString()).toContain(
      'Noël été',
    );
    expect((await ctx.d.blobs.getBuffer(bySubject.get('Dots')!.textKey ?? '')).toString()).toContain(
      '..two dots\n.leading',
    );
  });

  it('streams a message above the in-memory limit byte-exact', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    const raw = rawMail({ subject: 'Large', body: `${'y'.repeat(998)}\r\n`.repeat(2_000) });
    await deliver(raw);
    // Act
    const outcome = await poll(box.id, { ...ports, inMemoryLimit: 100_000 });
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 1 });
    const [msg] = await messagesOf(box.id);
    expect(sha(await ctx.d.blobs.getBuffer(msg!.rawKey))).toBe(sha(raw));
  });

  it('imports two different messages that reuse a Message-ID, and the same bytes twice only once', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    await deliver(rawMail({ subject: 'Reuse A', messageId: '<same-imap@client.test>' }));
    await deliver(rawMail({ subject: 'Reuse B', messageId: '<same-imap@client.test>' }));
    const twice = rawMail({ subject: 'Twice' });
    await deliver(twice);
    await deliver(twice);
    // Act
    const first = await poll(box.id);
    const second = await poll(box.id);
    // Assess
    expect(first.run?.counts).toMatchObject({ seen: 4, imported: 3, skipped: 1 });
    expect(second.run?.counts).toMatchObject({ seen: 4, imported: 0, skipped: 4 });
    expect((await messagesOf(box.id)).map((m) => m.subject).sort()).toEqual(['Reuse A', 'Reuse B', 'Twice']);
  });

  it('keeps mail untouched with afterImport keep (the folder is opened read-only)', async () => {
    // Prepare
    const b = await makeBox({ connection: { afterImport: 'keep' } });
    await b.deliver(rawMail({ subject: 'k1' }));
    await b.deliver(rawMail({ subject: 'k2' }));
    // Act
    const outcome = await poll(b.box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 2 });
    const owner = await b.owner();
    const state = await folderState(owner);
    await owner.logout();
    // Not \Seen, and still \Recent: the folder was EXAMINEd, not SELECTed.
    expect(state.messages.map((m) => m.flags)).toEqual([['\\Recent'], ['\\Recent']]);
  });

  it('marks stored mail read with afterImport mark-read, and only what it stored', async () => {
    // Prepare: the second message is refused by the exclude date, so it is not stored.
    const b = await makeBox({
      excludeBefore: '2026-03-01',
      connection: { afterImport: 'mark-read' },
    });
    await b.deliver(rawMail({ subject: 'new' }));
    const old = await b.deliver(rawMail({ subject: 'old by arrival' }));
    await setReceived(old.path, new Date('2026-02-01T10:00:00Z'));
    // Act
    const outcome = await poll(b.box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ seen: 2, imported: 1, skipped: 1 });
    const owner = await b.owner();
    const state = await folderState(owner);
    await owner.logout();
    expect(state.messages.map((m) => [m.subject, m.flags])).toEqual([
      ['new', ['\\Seen']],
      ['old by arrival', []],
    ]);
  });

  it('moves stored mail to moveToFolder with afterImport move', async () => {
    // Prepare
    const b = await makeBox({
      leaveOnServer: false,
      connection: { afterImport: 'move', moveToFolder: 'Imported' },
    });
    const owner = await b.owner();
    await owner.mailboxCreate('Imported');
    await b.deliver(rawMail({ subject: 'm1' }));
    await b.deliver(rawMail({ subject: 'm2' }));
    // Act
    const outcome = await poll(b.box.id);
    // Assess
    expect(outcome.status).toBe('succeeded');
    expect((await folderState(owner)).messages).toEqual([]);
    expect((await folderState(owner, 'Imported')).messages.map((m) => m.subject)).toEqual(['m1', 'm2']);
    await owner.logout();
    expect(await messagesOf(b.box.id)).toHaveLength(2);
  });

  it('deletes stored mail with afterImport delete, and imports a message another client flagged \\Deleted before deleting it', async () => {
    // Prepare
    const b = await makeBox({ leaveOnServer: false, connection: { afterImport: 'delete' } });
    await b.deliver(rawMail({ subject: 'd1' }));
    await b.deliver(rawMail({ subject: 'd2' }));
    // Act
    const outcome = await poll(b.box.id);
    await b.deliver(rawMail({ subject: 'theirs' }));
    const owner = await b.owner();
    await owner.mailboxOpen('INBOX');
    await owner.messageFlagsAdd('1:*', ['\\Deleted']);
    const b2 = await poll(b.box.id);
    const state = await folderState(owner);
    await owner.logout();
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 2 });
    expect(b2.run?.counts).toMatchObject({ imported: 1 });
    expect(state.messages).toEqual([]);
    expect((await messagesOf(b.box.id)).map((m) => m.subject).sort()).toEqual(['d1', 'd2', 'theirs']);
  });

  it("expunges only the UIDs it stored: another client's \\Deleted message it did not take stays (UID EXPUNGE)", async () => {
    // Prepare: the old message is excluded by its arrival date, and its owner flagged it \Deleted.
    const b = await makeBox({
      leaveOnServer: false,
      excludeBefore: '2026-03-01',
      connection: { afterImport: 'delete' },
    });
    const old = await b.deliver(rawMail({ subject: 'old, flagged deleted by its owner' }));
    await setReceived(old.path, new Date('2026-01-15T10:00:00Z'));
    await b.deliver(rawMail({ subject: 'new' }));
    const owner = await b.owner();
    await owner.mailboxOpen('INBOX');
    await owner.messageFlagsAdd('1', ['\\Deleted']);
    // Act
    const outcome = await poll(b.box.id);
    const state = await folderState(owner);
    await owner.logout();
    // Assess
    expect(outcome.run?.counts).toMatchObject({ seen: 2, imported: 1, skipped: 1 });
    expect(state.messages.map((m) => m.subject)).toEqual(['old, flagged deleted by its owner']);
  });

  it('judges the exclude date by INTERNALDATE in the box time zone, not by the Date header', async () => {
    // Prepare: 1 March 00:30 in Sydney is 28 February 13:30 UTC — the cut-off day there.
    const { box, deliver } = await makeBox({
      excludeBefore: '2026-03-01',
      schedule: {
        enabled: false,
        timeZone: 'Australia/Sydney',
        weekdays: ['MON'],
        startTime: '08:00',
        endTime: '17:00',
        intervalMinutes: 20,
        notifyOn: 'failures',
      },
    });
    const a = await deliver(
      rawMail({ subject: 'arrived on the day', date: 'Sun, 01 Feb 2026 10:00:00 +0000' }),
    );
    const b = await deliver(
      rawMail({ subject: 'arrived the day before', date: 'Sun, 01 Mar 2026 10:00:00 +0000' }),
    );
    await setReceived(a.path, new Date('2026-02-28T13:30:00Z'));
    await setReceived(b.path, new Date('2026-02-28T12:30:00Z'));
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect((await messagesOf(box.id)).map((m) => m.subject)).toEqual(['arrived on the day']);
    expect(outcome.run?.counts).toMatchObject({ seen: 2, imported: 1, skipped: 1 });
  });

  it('after a UIDVALIDITY change re-scans by content hash: nothing imported twice, only known bytes deleted', async () => {
    // Prepare: three stored and left on the server; then the folder is rebuilt (new UIDVALIDITY).
    const b = await makeBox({ leaveOnServer: true });
    for (let i = 0; i < 3; i++) await b.deliver(rawMail({ subject: `before ${i}` }));
    const first = await poll(b.box.id);
    const owner = await b.owner();
    const before = await folderState(owner);
    await owner.logout();
    // Dovecot takes a new UIDVALIDITY from the clock (seconds): let the second change first.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await resetUidValidity(b.maildir);
    await b.deliver(rawMail({ subject: 'after the change' }));
    await ctx.d.repos.emailBoxes.replace(
      sid,
      b.box.id,
      { ...b.box, leaveOnServer: false, connection: { ...b.box.connection, afterImport: 'delete' } },
      1,
    );
    // Act
    const second = await poll(b.box.id);
    // Assess
    const again = await b.owner();
    const after = await folderState(again);
    await again.logout();
    expect(first.run?.counts).toMatchObject({ imported: 3 });
    expect(after.uidValidity).not.toBe(before.uidValidity);
    expect(second.run?.counts).toMatchObject({ seen: 4, imported: 1, skipped: 3 });
    expect((await messagesOf(b.box.id)).map((m) => m.subject).sort()).toEqual([
      'after the change',
      'before 0',
      'before 1',
      'before 2',
    ]);
    // Deleted because their exact bytes are stored (found by hash), not because of a UID.
    expect(after.messages).toEqual([]);
  });

  it('fails the run naming connection.folder when the folder does not exist', async () => {
    // Prepare
    const { box } = await makeBox({ connection: { folder: 'Clients' } });
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.status).toBe('failed');
    expect(outcome.failure).toMatchObject({ kind: 'folder-not-found', field: 'connection.folder' });
    expect(outcome.failure?.message).toMatch(/"Clients" does not exist/);
  });

  it('reads the folder the box names', async () => {
    // Prepare
    const b = await makeBox({ connection: { folder: 'Clients' } });
    const owner = await b.owner();
    await owner.mailboxCreate('Clients');
    await owner.append('Clients', rawMail({ subject: 'in Clients' }));
    await owner.logout();
    await b.deliver(rawMail({ subject: 'in INBOX' }));
    // Act
    const outcome = await poll(b.box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ seen: 1, imported: 1 });
    expect((await messagesOf(b.box.id)).map((m) => m.subject)).toEqual(['in Clients']);
  });

  it('records a failed run naming the password when it is wrong', async () => {
    // Prepare
    const { box } = await makeBox();
    await ctx.d.secrets.update(box.connection.passwordRef!, 'wrong-password');
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.status).toBe('failed');
    expect(outcome.failure).toMatchObject({ kind: 'login-rejected', field: 'connection.password' });
  });
});
