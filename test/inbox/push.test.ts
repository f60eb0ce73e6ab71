/**
 * Push intake end to end: mail sent to the local inbound SMTP server (the twin of SES receiving)
 * goes through the inbox-poll function's queue handler into the same pipeline as polled mail.
 */
import { createTransport } from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pushRecords } from '#functions/inbox-poll/app';
import type { EmailBox, Message } from '#lib/domain/model';
import { receivingLocalPart } from '#lib/domain/receiving';
import { PUSH_UNROUTED } from '#lib/events';
import { UNROUTED_PREFIX } from '#lib/inbox/push';
import type { BlobStore } from '#lib/ports/index';
import { type InboundSmtp, startInboundSmtp } from '#local/inbound-smtp';
import { rawMail } from '#test/support/mail';
import { inboxFixture, sid } from './support.ts';

const { ctx, ports, replies, makeBox, poll } = inboxFixture();
const DOMAIN = 'inbound.studio-mail.localhost';
let inbound: InboundSmtp;
/** What the inbound server stores into; a test may make it fail (a crash mid-message). */
let blobs: BlobStore;
let failNextRawPut = 0;

beforeAll(async () => {
  blobs = {
    ...ctx.d.blobs,
    put: async (key, body, type) => {
      if (key.startsWith('raw/') && failNextRawPut > 0) {
        failNextRawPut--;
        if (typeof body !== 'string' && !Buffer.isBuffer(body)) body.resume();
        throw new Error('disk unplugged');
      }
      return ctx.d.blobs.put(key, body, type);
    },
    get: (k) => ctx.d.blobs.get(k),
    getBuffer: (k) => ctx.d.blobs.getBuffer(k),
    exists: (k) => ctx.d.blobs.exists(k),
    delete: (k) => ctx.d.blobs.delete(k),
    downloadUrl: (k, o) => ctx.d.blobs.downloadUrl(k, o),
  };
  inbound = await startInboundSmtp({
    domain: DOMAIN,
    blobs,
    retryDelayMs: 50,
    handler: (event) => pushRecords({ ...ctx.d, blobs }, event, ports),
  });
});
afterAll(async () => {
  await inbound?.stop();
});

async function pushBox(over: Partial<EmailBox> = {}) {
  const made = await makeBox({ intake: 'push', ...over });
  const address = `${receivingLocalPart(sid, made.box.id, over.receivingLocalPart)}@${DOMAIN}`;
  return { ...made, address };
}

/** Sends `raw` to the local inbound server, as a forwarding mailbox would. */
async function forward(raw: Buffer, to: string[]) {
  const transport = createTransport({
    host: '127.0.0.1',
    port: inbound.port,
    secure: false,
    ignoreTLS: true,
  });
  try {
    await transport.sendMail({ envelope: { from: 'forwarder@gmail.test', to }, raw });
  } finally {
    transport.close();
  }
  await inbound.idle();
}

/** Every message filed or quarantined in the box. */
async function boxMessages(boxId: string) {
  const [imported, quarantined] = await Promise.all([
    ctx.d.repos.messages.listForBox(sid, boxId, 'imported', 500),
    ctx.d.repos.messages.listForBox(sid, boxId, 'quarantined', 500),
  ]);
  // Quarantined markers (no record) are listed too; only message records are wanted here.
  return [...imported.items, ...quarantined.items].filter((i): i is Message => 'direction' in i);
}

describe('push intake', () => {
  it('files forwarded mail on the client record at once, threaded, with its task and auto-reply', async () => {
    // Prepare
    await ctx.d.repos.clients.create(sid, 'client-push', {
      id: 'client-push',
      firstName: 'Pia',
      lastName: 'Push',
      emails: [{ address: 'pia@client.test', primary: true }],
    });
    const { box, address } = await pushBox({
      autoCreateTask: true,
      taskTypeId: 'follow-up',
      taskStatusId: 'open',
      sendAutoReply: true,
      autoReplyFormLetterId: 'thanks',
    });
    replies.length = 0;
    const first = rawMail({
      from: 'Pia Push <pia@client.test>',
      subject: 'Wedding in May',
      messageId: '<p1@client.test>',
    });
    const second = rawMail({
      from: 'Pia Push <pia@client.test>',
      subject: 'Re: Wedding in May',
      messageId: '<p2@client.test>',
      inReplyTo: '<p1@client.test>',
    });
    // Act
    await forward(first, [address]);
    await forward(second, [address]);
    // Assess
    const timeline = await ctx.d.repos.messages.listForClient(sid, 'client-push', 10);
    expect(timeline.items.map((m) => m.subject).sort()).toEqual(['Re: Wedding in May', 'Wedding in May']);
    expect(new Set(timeline.items.map((m) => m.threadId)).size).toBe(1);
    expect(timeline.items.every((m) => m.intake === 'push' && m.boxId === box.id)).toBe(true);
    // One task for the new conversation; the reply joins its thread.
    const tasks = await ctx.d.repos.tasks.list(sid, 50, undefined, { boxId: box.id });
    expect(tasks.items.map((t) => t.title)).toEqual(['Email from Pia Push: Wedding in May']);
    expect(replies.filter((r) => r.box.id === box.id).length).toBeGreaterThan(0);
    const runs = await ctx.d.repos.runs.list(sid, box.id, 10);
    expect(runs.items.map((r) => `${r.trigger}:${r.status}:${r.counts.imported}`)).toEqual([
      'push:succeeded:1',
      'push:succeeded:1',
    ]);
    // The landing copy is gone once the box has its own under the studio's prefix.
    expect(timeline.items.every((m) => m.rawKey.startsWith(`raw/${sid}/${box.id}/`))).toBe(true);
  });

  it('imports the same email once when it is both forwarded and polled', async () => {
    // Prepare
    const { box, address, deliver } = await pushBox({ intake: 'both' });
    const original = rawMail({ subject: 'Both ways', messageId: '<both@client.test>' });
    const forwarded = Buffer.concat([
      Buffer.from(
        'Received: from mail.gmail.test by inbound; Mon, 01 Jun 2026 10:00:05 +0000\r\nX-Forwarded-For: sales@studio.test\r\n',
      ),
      original,
    ]);
    await deliver(original);
    // Act
    await forward(forwarded, [address]);
    const polled = await poll(box.id);
    // Assess
    expect(polled.run?.counts).toMatchObject({ imported: 0, skipped: 1 });
    const filed = (await boxMessages(box.id)).filter((m) => m.subject === 'Both ways');
    expect(filed).toHaveLength(1);
    expect(filed[0]?.intake).toBe('push');
  });

  it('keeps mail for an address no box has under the dead-letter prefix and reports it', async () => {
    // Prepare
    const raw = rawMail({ subject: 'Nobody home' });
    const before = ctx.d.events.published.length;
    // Act
    await forward(raw, [`nobody.here@${DOMAIN}`]);
    // Assess
    const reported = ctx.d.events.published.slice(before).filter((e) => e.detailType === PUSH_UNROUTED);
    expect(reported).toHaveLength(1);
    const key = String((reported[0]?.detail as { key?: string } | undefined)?.key);
    expect(key.startsWith(UNROUTED_PREFIX)).toBe(true);
    expect((await ctx.d.blobs.getBuffer(key)).equals(raw)).toBe(true);
  });

  it('refuses mail for another domain at RCPT TO', async () => {
    // Prepare
    const transport = createTransport({
      host: '127.0.0.1',
      port: inbound.port,
      secure: false,
      ignoreTLS: true,
    });
    // Act
    const sent = transport.sendMail({
      envelope: { from: 'a@x.test', to: ['someone@elsewhere.test'] },
      raw: rawMail(),
    });
    // Assess
    await expect(sent).rejects.toThrow(/550/);
    transport.close();
  });

  it('quarantines a message SES judged spam, with no task and no reply', async () => {
    // Prepare
    const { box, address } = await pushBox({
      autoCreateTask: true,
      taskTypeId: 'follow-up',
      taskStatusId: 'open',
      sendAutoReply: true,
      autoReplyFormLetterId: 'thanks',
    });
    replies.length = 0;
    await ctx.d.blobs.put('inbound/spam-1', rawMail({ subject: 'Cheap watches' }));
    const notice = {
      notificationType: 'Received',
      mail: { messageId: 'spam-1', destination: [address] },
      receipt: {
        recipients: [address],
        spamVerdict: { status: 'FAIL' },
        virusVerdict: { status: 'PASS' },
        action: { type: 'S3', bucketName: 'b', objectKey: 'inbound/spam-1' },
      },
    };
    // Act
    const out = await pushRecords(
      ctx.d,
      {
        Records: [
          {
            messageId: 'q-1',
            eventSource: 'aws:sqs',
            body: JSON.stringify({ Type: 'Notification', Message: JSON.stringify(notice) }),
          },
        ],
      },
      ports,
    );
    // Assess
    expect(out.batchItemFailures).toEqual([]);
    const [message] = await boxMessages(box.id);
    expect(message?.status).toBe('quarantined');
    expect(message?.verdicts).toMatchObject({ spam: 'FAIL', virus: 'PASS' });
    expect(message?.error).toMatch(/spam/);
    expect((await ctx.d.repos.tasks.list(sid, 50, undefined, { boxId: box.id })).items).toHaveLength(0);
    expect(replies.filter((r) => r.box.id === box.id)).toHaveLength(0);
  });

  it('delivers a message again after the handler failed mid-message, and files it once', async () => {
    // Prepare
    const { box, address } = await pushBox();
    failNextRawPut = 1;
    const raw = rawMail({ subject: 'Retried' });
    // Act
    await forward(raw, [address]);
    // Assess
    expect(failNextRawPut).toBe(0);
    expect(inbound.deadLetters).toHaveLength(0);
    const filed = (await boxMessages(box.id)).filter((m) => m.subject === 'Retried');
    expect(filed).toHaveLength(1);
    const runs = await ctx.d.repos.runs.list(sid, box.id, 10);
    expect(runs.items.map((r) => r.status).sort()).toEqual(['failed', 'succeeded']);
  });

  it('does nothing twice when the queue delivers the same notice twice', async () => {
    // Prepare
    const { box, address } = await pushBox();
    const notice = (key: string) => ({
      messageId: 'dup-record',
      eventSource: 'aws:sqs' as const,
      body: JSON.stringify({
        notificationType: 'Received',
        mail: { messageId: 'dup-1', destination: [address] },
        receipt: { recipients: [address], action: { type: 'S3', bucketName: 'b', objectKey: key } },
      }),
    });
    await ctx.d.blobs.put('inbound/dup-1', rawMail({ subject: 'Once only' }));
    // Act: the second delivery finds the landing copy gone and the marker written.
    const first = await pushRecords(ctx.d, { Records: [notice('inbound/dup-1')] }, ports);
    const second = await pushRecords(ctx.d, { Records: [notice('inbound/dup-1')] }, ports);
    // Assess
    expect(first.batchItemFailures).toEqual([]);
    expect(second.batchItemFailures).toEqual([]);
    expect((await boxMessages(box.id)).filter((m) => m.subject === 'Once only')).toHaveLength(1);
  });

  it("shows Gmail's forwarding confirmation on the box, with its link and code", async () => {
    // Prepare
    const { box, address } = await pushBox();
    const raw = rawMail({
      from: 'Gmail Team <forwarding-noreply@google.com>',
      subject: '(#123456789) Gmail Forwarding Confirmation - Receive Mail from sales@studio.test',
      body: 'Confirmation code: 123456789\r\n\r\nTo allow forwarding, click the link below:\r\nhttps://mail-settings.google.com/mail/vf-abc123\r\n',
    });
    // Act
    await forward(raw, [address]);
    // Assess
    const state = await ctx.d.repos.boxState.get(sid, box.id);
    expect(state.forwardingConfirmation).toMatchObject({
      code: '123456789',
      links: ['https://mail-settings.google.com/mail/vf-abc123'],
    });
  });

  it('keeps a recorded import, not failed and not redelivered, when the check after it fails', async () => {
    // Prepare: the box-state write for a forwarding confirmation fails after the message is filed.
    const { box, address } = await pushBox({ sendAutoReply: true, autoReplyFormLetterId: 'thanks' });
    replies.length = 0;
    const failing = vi
      .spyOn(ctx.d.repos.boxState, 'setForwardingConfirmation')
      .mockRejectedValue(new Error('throttled'));
    const raw = rawMail({
      from: 'Gmail Team <forwarding-noreply@google.com>',
      subject: '(#987654321) Gmail Forwarding Confirmation',
      body: 'Confirmation code: 987654321\r\n',
    });
    // Act
    await forward(raw, [address]);
    failing.mockRestore();
    // Assess
    expect(inbound.deadLetters).toHaveLength(0);
    const runs = await ctx.d.repos.runs.list(sid, box.id, 10);
    expect(runs.items.map((r) => r.status)).toEqual(['succeeded']);
    expect((await boxMessages(box.id)).map((m) => m.subject)).toEqual([
      '(#987654321) Gmail Forwarding Confirmation',
    ]);
  });
});
