import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rawMail } from '#test/support/mail';
import { inboxFixture, sid } from './support.ts';

const { ctx, makeBox, poll } = inboxFixture();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function imported(boxId: string) {
  const unassigned = await ctx.d.repos.messages.listUnassigned(sid, 1000);
  return unassigned.items.filter((m) => m.boxId === boxId);
}

describe('importing a POP3 box', () => {
  it('stores the raw bytes exactly, including lines that begin with a dot', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    const raw = rawMail({ subject: 'Dots', body: 'first\r\n.\r\n..two dots\r\n.leading\r\nlast\r\n' });
    await deliver(raw);
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.status).toBe('succeeded');
    const [msg] = await imported(box.id);
    expect(msg?.subject).toBe('Dots');
    expect(sha(await ctx.d.blobs.getBuffer(msg?.rawKey ?? ''))).toBe(sha(raw));
    expect((await ctx.d.blobs.getBuffer(msg?.textKey ?? '')).toString()).toContain('..two dots\n.leading');
  });

  it('decodes ISO-8859-1 and ISO-2022-JP mail and keeps the raw 8-bit bytes', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    const latin = Buffer.concat([
      Buffer.from(
        'From: =?ISO-8859-1?Q?Jos=E9?= <jose@client.test>\r\nTo: sales@studio.test\r\nSubject: =?ISO-8859-1?Q?Caf=E9?=\r\nDate: Mon, 01 Jun 2026 10:00:00 +0000\r\nMessage-ID: <latin@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n',
      ),
      Buffer.from([0x4e, 0x6f, 0xeb, 0x6c, 0x20, 0xe9, 0x74, 0xe9, 0x0d, 0x0a]),
    ]);
    const jis = Buffer.concat([
      Buffer.from(
        'From: yamada@client.test\r\nTo: sales@studio.test\r\nSubject: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?=\r\nDate: Mon, 01 Jun 2026 11:00:00 +0000\r\nMessage-ID: <jis@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n',
      ),
      Buffer.from([0x1b, 0x24, 0x42, 0x3b, 0x33, 0x45, 0x44, 0x1b, 0x28, 0x42, 0x0d, 0x0a]),
    ]);
    await deliver(latin);
    await deliver(jis);
    // Act
    await poll(box.id);
    // Assess
    const msgs = await imported(box.id);
    const l = msgs.find((m) => m.messageId === '<latin@client.test>');
    const j = msgs.find((m) => m.messageId === '<jis@client.test>');
    expect(l?.subject).toBe('Café');
    expect(l?.from?.name).toBe('José');
    expect((await ctx.d.blobs.getBuffer(l?.textKey ?? '')).toString('utf8')).toContain('Noël été');
    expect(j?.subject).toBe('山田');
    expect((await ctx.d.blobs.getBuffer(j?.textKey ?? '')).toString('utf8')).toContain('山田');
    expect(sha(await ctx.d.blobs.getBuffer(l?.rawKey ?? ''))).toBe(sha(latin));
    expect(sha(await ctx.d.blobs.getBuffer(j?.rawKey ?? ''))).toBe(sha(jis));
  });

  it('imports a message without a Message-ID, and two different messages that reuse one', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    await deliver(rawMail({ subject: 'No id', messageId: null }));
    await deliver(rawMail({ subject: 'Reuse A', messageId: '<same@client.test>' }));
    await deliver(rawMail({ subject: 'Reuse B', messageId: '<same@client.test>' }));
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ seen: 3, imported: 3 });
    const subjects = (await imported(box.id)).map((m) => m.subject).sort();
    expect(subjects).toEqual(['No id', 'Reuse A', 'Reuse B']);
    expect(await ctx.d.repos.messages.findByMessageId(sid, '<same@client.test>')).toHaveLength(2);
  });

  it('imports the same message seen twice only once', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    const raw = rawMail({ subject: 'Twice' });
    await deliver(raw);
    await deliver(raw);
    // Act
    const first = await poll(box.id);
    const second = await poll(box.id);
    // Assess
    expect(first.run?.counts).toMatchObject({ seen: 2, imported: 1, skipped: 1 });
    expect(second.run?.counts).toMatchObject({ seen: 2, imported: 0, skipped: 2 });
    expect((await imported(box.id)).filter((m) => m.subject === 'Twice')).toHaveLength(1);
  });

  it('leaves mail on the server when asked, and deletes what it imported when not', async () => {
    // Prepare (that each DELE follows its record is observed in slow-servers.test.ts)
    const keep = await makeBox({ leaveOnServer: true });
    const take = await makeBox({ leaveOnServer: false });
    for (const b of [keep, take]) {
      await b.deliver(rawMail());
      await b.deliver(rawMail());
    }
    // Act
    await poll(keep.box.id);
    await poll(take.box.id);
    // Assess
    expect(await ctx.dovecot.messageCount(keep.user)).toBe(2);
    expect(await ctx.dovecot.messageCount(take.user)).toBe(0);
    expect(await imported(take.box.id)).toHaveLength(2);
  });

  it('skips mail dated before the exclude date; without a Date the newest Received: date decides, else it is imported', async () => {
    // Prepare
    const { box, deliver } = await makeBox({ excludeBefore: '2026-03-01' });
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
    expect((await imported(box.id)).map((m) => m.subject).sort()).toEqual(['new', 'undated, no trace']);
    expect(outcome.run?.counts).toMatchObject({ seen: 4, imported: 2, skipped: 2 });
    expect(again.run?.counts).toMatchObject({ imported: 0, skipped: 4 });
  });

  it("compares the exclude date with midnight in the box's time zone (UTC+11), not UTC", async () => {
    // Prepare: 1 March 00:30 in Sydney is 28 February 13:30 UTC — mail of the cut-off day.
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
    await deliver(rawMail({ subject: 'cut-off day, Sydney', date: 'Sun, 01 Mar 2026 00:30:00 +1100' }));
    await deliver(rawMail({ subject: 'day before, Sydney', date: 'Sat, 28 Feb 2026 23:30:00 +1100' }));
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect((await imported(box.id)).map((m) => m.subject)).toEqual(['cut-off day, Sydney']);
    expect(outcome.run?.counts).toMatchObject({ imported: 1, skipped: 1 });
  });

  it('brings in excluded mail when the exclude date is moved earlier or cleared', async () => {
    // Prepare
    const { box, deliver } = await makeBox({ excludeBefore: '2026-03-01' });
    await deliver(rawMail({ subject: 'february', date: 'Sun, 01 Feb 2026 10:00:00 +0000' }));
    await deliver(rawMail({ subject: 'january', date: 'Thu, 01 Jan 2026 10:00:00 +0000' }));
    const first = await poll(box.id);
    // Act
    await ctx.d.repos.emailBoxes.replace(sid, box.id, { ...box, excludeBefore: '2026-02-01' });
    const moved = await poll(box.id);
    await ctx.d.repos.emailBoxes.replace(sid, box.id, { ...box, excludeBefore: undefined });
    const cleared = await poll(box.id);
    // Assess
    expect(first.run?.counts).toMatchObject({ imported: 0, skipped: 2 });
    expect(moved.run?.counts).toMatchObject({ imported: 1 });
    expect(cleared.run?.counts).toMatchObject({ imported: 1 });
    expect((await imported(box.id)).map((m) => m.subject).sort()).toEqual(['february', 'january']);
  });

  it('quarantines a message it cannot parse, keeps the raw bytes and goes on', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    const junk = Buffer.from('\x00\x01garbage without any header\r\n\r\nreally\r\n', 'latin1');
    await deliver(junk);
    await deliver(rawMail({ subject: 'after junk' }));
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 1, quarantined: 1 });
    expect(outcome.status).toBe('partial');
    const q = (await ctx.d.repos.messages.listQuarantined(sid)).items.filter((m) => m.boxId === box.id);
    expect(q).toHaveLength(1);
    expect(sha(await ctx.d.blobs.getBuffer(q[0]?.rawKey ?? ''))).toBe(sha(junk));
  });

  it('attaches mail to the client whose address sent it, case-insensitively, and leaves strangers unassigned', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    await ctx.d.repos.clients.create(sid, 'c-ana', {
      id: 'c-ana',
      firstName: 'Ana',
      lastName: 'Ruiz',
      emails: [{ address: 'ANA.RUIZ@client.test', primary: true }],
    });
    await deliver(rawMail({ from: 'Ana <ana.ruiz@CLIENT.test>', subject: 'from Ana' }));
    await deliver(rawMail({ from: 'stranger@else.test', subject: 'from a stranger' }));
    // Act
    await poll(box.id);
    // Assess
    const ana = await ctx.d.repos.messages.listForClient(sid, 'c-ana');
    expect(ana.items.map((m) => m.subject)).toEqual(['from Ana']);
    expect((await imported(box.id)).map((m) => m.subject)).toEqual(['from a stranger']);
  });

  it('parses internationalised (SMTPUTF8) addresses, stores them as written and matches them to the client however the domain is spelt', async () => {
    // Prepare: the client's address in Unicode with a composed é; the mail uses the xn-- domain,
    // a decomposed é and capitals (RFC 6531 lets headers carry UTF-8 as is).
    const { box, deliver } = await makeBox();
    await ctx.d.repos.clients.create(sid, 'c-jose', {
      id: 'c-jose',
      firstName: 'José',
      lastName: 'Müller',
      emails: [{ address: 'josé@bücher.de', primary: true }],
    });
    const decomposed = 'JOSE\u0301@XN--BCHER-KVA.DE';
    await deliver(
      rawMail({
        from: `José Müller <${decomposed}>`,
        to: 'Sales <sales@studio.test>, 用户@例子.广告',
        cc: '"Zoë" <zoë@bücher.de>',
        headers: { 'Reply-To': 'José <josé@bücher.de>' },
        subject: 'Álbum de boda',
      }),
    );
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts.imported).toBe(1);
    const [msg] = (await ctx.d.repos.messages.listForClient(sid, 'c-jose')).items;
    expect(msg?.subject).toBe('Álbum de boda');
    expect(msg?.from).toEqual({ address: 'JOSE\u0301@bücher.de', name: 'José Müller' });
    expect(msg?.to).toEqual([{ address: 'sales@studio.test', name: 'Sales' }, { address: '用户@例子.广告' }]);
    expect(msg?.cc).toEqual([{ address: 'zoë@bücher.de', name: 'Zoë' }]);
    expect(await imported(box.id)).toEqual([]);
  });

  it("threads a reply to a message we sent onto that client's record, even from another address", async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    await ctx.d.repos.messages.create(sid, {
      id: 'sent-1',
      direction: 'out',
      status: 'sent',
      clientId: 'c-bo',
      threadId: 'thread-bo',
      messageId: '<sent-1@studio.test>',
      references: [],
      to: [{ address: 'bo@client.test' }],
      cc: [],
      subject: 'Your proofs',
      date: '2026-05-01T10:00:00.000Z',
      snippet: '',
      rawKey: 'raw/out/sent-1.eml',
      attachments: [],
      automatic: false,
    });
    await deliver(
      rawMail({
        from: 'bo.work@elsewhere.test',
        subject: 'Re: Your proofs',
        inReplyTo: '<sent-1@studio.test>',
      }),
    );
    // Act
    await poll(box.id);
    // Assess
    const thread = await ctx.d.repos.messages.listThread(sid, 'thread-bo');
    expect(thread.map((m) => m.subject).sort()).toEqual(['Re: Your proofs', 'Your proofs']);
    expect(thread.find((m) => m.direction === 'in')?.clientId).toBe('c-bo');
  });

  it('applies the box department, user, email type and status to imported mail', async () => {
    // Prepare
    const { box, deliver } = await makeBox({
      departmentId: 'd-sales',
      userId: 'u-ana',
      emailTypeId: 'et-inquiry',
      emailStatusId: 'es-new',
    });
    await deliver(rawMail());
    // Act
    await poll(box.id);
    // Assess
    expect((await imported(box.id))[0]).toMatchObject({
      departmentId: 'd-sales',
      userId: 'u-ana',
      emailTypeId: 'et-inquiry',
      emailStatusId: 'es-new',
    });
  });

  it('records a failed run with the reason in plain words when the password is wrong', async () => {
    // Prepare
    const { box } = await makeBox();
    await ctx.d.secrets.update(box.connection.passwordRef!, 'wrong-password');
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.status).toBe('failed');
    expect(outcome.failure).toMatchObject({ kind: 'login-rejected', field: 'connection.password' });
    const runs = await ctx.d.repos.runs.list(sid, box.id);
    expect(runs.items[0]).toMatchObject({ status: 'failed', errors: [{ kind: 'login-rejected' }] });
    expect((await ctx.d.repos.boxState.get(sid, box.id)).consecutiveFailures).toBe(1);
  });
});
