import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoReplier } from '#lib/inbox/auto-reply';
import { openBox } from '#lib/inbox/connect';
import { type PollPorts, sendAutoReply } from '#lib/inbox/poll';
import { defaultRetry } from '#lib/send/retry';
import { SendService } from '#lib/send/service';
import { CredentialCache, defaultPolicy } from '#lib/send/transport';
import { type SesLocal, startSesLocal } from '#local/ses';
import { depsWithSes, seedVerifiedIdentity } from '#test/send/fixtures';
import { rawMail } from '#test/support/mail';
import { inboxFixture, sid } from './support.ts';

let ses: SesLocal;
const {
  ctx,
  makeBox,
  poll: fixturePoll,
} = inboxFixture(async () => {
  ses = await startSesLocal();
  return depsWithSes(ses.endpoint);
});
afterAll(async () => ses?.stop());

let ports: PollPorts;
beforeAll(async () => {
  const service = new SendService(ctx.d, {
    policy: defaultPolicy,
    credentials: new CredentialCache(ctx.d.secrets),
    retry: defaultRetry,
  });
  ports = {
    open: (box, password) => openBox(box.connection, password, { ca: ctx.dovecot.caCertPem }),
    autoReply: autoReplier(service),
  };
  await seedVerifiedIdentity(ctx.d, 'lumen.test', sid);
  await ctx.d.repos.companyEmail.create(sid, 'company', {
    studioName: 'Lumen Studio',
    displayName: 'Lumen Studio',
    emailAddress: 'hello@lumen.test',
    transport: { method: 'ses' },
    timeZone: 'Europe/Madrid',
  });
  await ctx.d.repos.formLetters.create(sid, 'thanks', {
    id: 'thanks',
    name: 'Thanks',
    kind: 'form-letter',
    subject: 'We got your email, {{client.firstName|there}}',
    text: 'Hello {{client.firstName|there}}, {{studio.name}} will answer soon.',
    mergeFields: ['client.firstName', 'studio.name'],
  });
  await ctx.d.repos.clients.create(sid, 'c-eva', {
    id: 'c-eva',
    firstName: 'Eva',
    lastName: 'Lind',
    emails: [{ address: 'eva@client.test', primary: true }],
  });
});

interface StoredEmail {
  from: string;
  subject: string;
  destination: { to: string[]; cc: string[] };
  body: { text?: string };
}
/** What reached the local SES; it keeps a raw message's To header as one string, so split it. */
async function sent(): Promise<StoredEmail[]> {
  const { emails } = (await (await fetch(ses.storeUrl)).json()) as { emails: StoredEmail[] };
  return emails.map((e) => ({
    ...e,
    destination: { ...e.destination, to: e.destination.to.flatMap((t) => t.split(/,\s*/)) },
  }));
}
const sentTo = async (address: string) => (await sent()).filter((e) => e.destination.to.includes(address));

const poll = (boxId: string) => fixturePoll(boxId, ports, 60_000);

const replyBox = (over = {}) =>
  makeBox({ sendAutoReply: true, autoReplyFormLetterId: 'thanks', autoCreateTask: true, ...over });

describe('auto-replies', () => {
  it('answers a new email with the form letter, threaded and marked Auto-Submitted, on the client record', async () => {
    // Prepare
    const { box, deliver } = await replyBox();
    await deliver(
      rawMail({ from: 'Eva Lind <eva@client.test>', messageId: '<eva-1@client.test>', subject: 'Prices?' }),
    );
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 1, autoReplies: 1, tasks: 1 });
    const [reply] = await sentTo('eva@client.test');
    expect(reply?.subject).toBe('We got your email, Eva');
    expect(reply?.body.text).toContain('Lumen Studio will answer soon.');
    const timeline = (await ctx.d.repos.messages.listForClient(sid, 'c-eva')).items;
    const out = timeline.find((m) => m.direction === 'out');
    const inbound = timeline.find((m) => m.direction === 'in');
    expect(out).toMatchObject({
      automatic: true,
      threadId: inbound?.threadId,
      inReplyTo: '<eva-1@client.test>',
    });
    const raw = (await ctx.d.blobs.getBuffer(out?.rawKey ?? '')).toString();
    expect(raw).toMatch(/^Auto-Submitted: auto-replied\r$/m);
    expect(raw).toMatch(/^In-Reply-To: <eva-1@client\.test>\r$/m);
  });

  it('answers everyone on To and CC with reply-to-all, never the studio itself', async () => {
    // Prepare
    const { box, deliver } = await replyBox({ autoReplyToAll: true });
    await deliver(
      rawMail({
        from: 'kim@client.test',
        to: 'sales@studio.test, lee@client.test',
        cc: 'hello@lumen.test, max@client.test',
        subject: 'Group shoot',
      }),
    );
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.errors).toEqual([]);
    const replies = (await sent()).filter(
      (e) => e.subject.startsWith('We got your email') && e.destination.to.includes('kim@client.test'),
    );
    expect(replies).toHaveLength(1);
    expect(replies[0]?.destination.to.sort()).toEqual([
      'kim@client.test',
      'lee@client.test',
      'max@client.test',
    ]);
  });

  it('answers only the first email of a thread when first-email-only is set', async () => {
    // Prepare
    const { box, deliver } = await replyBox({ autoReplyFirstEmailOnly: true });
    await deliver(rawMail({ from: 'ola@client.test', messageId: '<ola-1@client.test>', subject: 'Wedding' }));
    await poll(box.id);
    await deliver(
      rawMail({
        from: 'ola@client.test',
        messageId: '<ola-2@client.test>',
        inReplyTo: '<ola-1@client.test>',
        subject: 'Re: Wedding',
      }),
    );
    // Act
    const second = await poll(box.id);
    // Assess
    expect(second.run?.counts).toMatchObject({ imported: 1, autoReplies: 0, tasks: 0 });
    expect(await sentTo('ola@client.test')).toHaveLength(1);
  });

  it('answers a later email in a known thread when first-email-only is off, but creates no task', async () => {
    // Prepare
    const { box, deliver } = await replyBox();
    await deliver(rawMail({ from: 'pia@client.test', messageId: '<pia-1@client.test>', subject: 'Session' }));
    await poll(box.id);
    await deliver(
      rawMail({ from: 'pia@client.test', inReplyTo: '<pia-1@client.test>', subject: 'Re: Session' }),
    );
    // Act
    const second = await poll(box.id);
    // Assess
    expect(second.run?.counts).toMatchObject({ autoReplies: 1, tasks: 0 });
  });

  it.each([
    ['Auto-Submitted', { headers: { 'Auto-Submitted': 'auto-replied' } }],
    ['Precedence: bulk', { headers: { Precedence: 'bulk' } }],
    ['Precedence: list', { headers: { Precedence: 'list' } }],
    ['Precedence: junk', { headers: { Precedence: 'junk' } }],
    ['X-Autoreply', { headers: { 'X-Autoreply': 'yes' } }],
    ['a mailing list', { headers: { 'List-Id': '<news.client.test>' } }],
    ['an empty Return-Path', { headers: { 'Return-Path': '<>' } }],
    ['MAILER-DAEMON', { from: 'MAILER-DAEMON@mx.client.test' }],
    ['postmaster', { from: 'postmaster@client.test' }],
    [
      'a delivery report',
      {
        contentType: 'multipart/report; report-type=delivery-status; boundary="r"',
        body: '--r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--r--\r\n',
      },
    ],
  ])('never answers %s, and creates no task for it', async (_name, spec) => {
    // Prepare
    const { box, deliver } = await replyBox();
    const from = 'from' in spec ? spec.from : `auto-${Math.random().toString(36).slice(2)}@client.test`;
    await deliver(rawMail({ ...spec, from, subject: 'automatic' }));
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 1, autoReplies: 0, tasks: 0 });
    expect(await sentTo(from)).toHaveLength(0);
  });

  it('caps replies to one sender at three a day', async () => {
    // Prepare
    const { box, deliver } = await replyBox();
    for (let i = 0; i < 5; i++) await deliver(rawMail({ from: 'rex@client.test', subject: `ask ${i}` }));
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 5, autoReplies: 3, tasks: 5 });
    expect(await sentTo('rex@client.test')).toHaveLength(3);
  });

  it('sends each auto-reply once: two workers racing to send the same reply send one, and polling again sends none', async () => {
    // Prepare: a run imports the message without sending (no reply port), as a run killed after
    // its record would; then two workers (the run and a retried invocation) hold the same reply.
    const { box, deliver } = await replyBox();
    await deliver(rawMail({ from: 'sam@client.test', subject: 'Once' }));
    await fixturePoll(box.id, { open: ports.open }, 60_000);
    const [inbound] = (await ctx.d.repos.messages.listUnassigned(sid, 100)).items.filter(
      (m) => m.subject === 'Once',
    );
    const worker = { sid, box, ports, log: ctx.d.logger };
    // Act
    const raced = await Promise.all([
      sendAutoReply(ctx.d, worker, inbound!, ['sam@client.test']),
      sendAutoReply(ctx.d, worker, inbound!, ['sam@client.test']),
    ]);
    await poll(box.id);
    // Assess: counted where the mail arrives (the local SES), not by our own bookkeeping.
    expect(raced.sort()).toEqual([false, true]);
    expect(await sentTo('sam@client.test')).toHaveLength(1);
  });

  it("never answers, nor makes a task of, mail from the studio's own addresses", async () => {
    // Prepare: a user's address, the company's, and another box's.
    await ctx.d.repos.users.create(sid, 'ana', {
      id: 'ana',
      firstName: 'Ana',
      lastName: 'Ruiz',
      email: 'ana@lumen.test',
    });
    const other = await makeBox({ connection: { emailAddress: 'bookings@lumen.test' } as never });
    const { box, deliver } = await replyBox();
    await deliver(rawMail({ from: 'ana@lumen.test', subject: 'From a user' }));
    await deliver(rawMail({ from: 'Hello <HELLO@lumen.test>', subject: 'From the company' }));
    await deliver(rawMail({ from: 'bookings@lumen.test', subject: 'From another box' }));
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(other.box.connection.emailAddress).toBe('bookings@lumen.test');
    expect(outcome.run?.counts).toMatchObject({ imported: 3, autoReplies: 0, tasks: 0 });
    expect(await sentTo('ana@lumen.test')).toHaveLength(0);
    expect(await sentTo('bookings@lumen.test')).toHaveLength(0);
  });

  it('answers the valid recipients when one CC address cannot be sent to, and spends no slot on it', async () => {
    // Prepare
    const { box, deliver } = await replyBox({ autoReplyToAll: true });
    await deliver(
      rawMail({ from: 'ines@client.test', cc: 'anna@müller.de, otto@client.test', subject: 'With a bad CC' }),
    );
    // Act
    const outcome = await poll(box.id);
    // Assess
    expect(outcome.run?.counts).toMatchObject({ imported: 1, autoReplies: 1 });
    const [reply] = await sentTo('ines@client.test');
    expect(reply?.destination.to.sort()).toEqual(['ines@client.test', 'otto@client.test']);
    const day = new Date().toISOString().slice(0, 10);
    const slot = await ctx.d.repos.table.get({ PK: `ST#${sid}#AUTOREPLY#anna@müller.de`, SK: day });
    expect(slot).toBeUndefined();
  });

  it('files the same email reaching two boxes once: one task, one reply, noted as also received', async () => {
    // Prepare
    const first = await replyBox();
    const second = await replyBox();
    const raw = rawMail({
      from: 'jo@client.test',
      subject: 'To both aliases',
      messageId: '<both-1@client.test>',
    });
    await first.deliver(raw);
    // The second copy differs in its trace headers, as a real second delivery would.
    await second.deliver(Buffer.concat([Buffer.from('Delivered-To: other@lumen.test\r\n'), raw]));
    // Act
    const a = await poll(first.box.id);
    const b = await poll(second.box.id);
    // Assess
    expect(a.run?.counts).toMatchObject({ imported: 1, tasks: 1, autoReplies: 1 });
    expect(b.run?.counts).toMatchObject({ imported: 0, tasks: 0, autoReplies: 0, skipped: 1 });
    expect(await sentTo('jo@client.test')).toHaveLength(1);
    const [known] = await ctx.d.repos.messages.findByMessageId(sid, '<both-1@client.test>');
    const filed = await ctx.d.repos.messages.get(sid, known?.id ?? '');
    expect(filed?.alsoReceivedIn).toEqual([second.box.id]);
  });
});
