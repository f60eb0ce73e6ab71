import { beforeAll, describe, expect, it } from 'vitest';
import { inboxPollFunction } from '#functions/inbox-poll/app';
import { inboxPollRoutes } from '#functions/inbox-poll/routes';
import { quarantined } from '#lib/inbox/poll';
import { apiClient } from '#test/support/api';
import { rawMail } from '#test/support/mail';
import { inboxFixture, sid } from './support.ts';

const { ctx, ports, replies, makeBox } = inboxFixture();
let call: ReturnType<typeof apiClient>;

beforeAll(() => {
  call = apiClient(inboxPollFunction(ctx.d, { ports }) as never, inboxPollRoutes, 'inbox-poll');
});

const filing = {
  departmentId: 'dept-sales',
  userId: 'ana',
  emailTypeId: 'type-enquiry',
  emailStatusId: 'status-new',
  taskTypeId: 'tt-call',
  taskStatusId: 'ts-open',
};

let n = 0;
/** A message of `boxId` quarantined by an older parser, whose raw copy parses today. */
async function quarantinedIn(boxId: string, raw: Buffer): Promise<string> {
  const id = `rq-${++n}-${Date.now()}`;
  const rawKey = `raw/${sid}/${boxId}/${id}.eml`;
  await ctx.d.blobs.put(rawKey, raw);
  // The record import writes for a quarantined message (see lib/inbox/poll.ts).
  const record = quarantined(id, boxId, rawKey, new Date().toISOString(), 'old parser failed');

  await ctx.d.repos.messages.create(sid, record);
  return id;
}

const tasksOf = async (messageId: string) =>
  (await ctx.d.repos.tasks.list(sid, 100)).items.filter((t) => t.messageId === messageId);

describe('POST /messages/{id}/reprocess files mail as an import does', () => {
  it("restores the box's department, user, email type and status, creates the task and sends the auto-reply", async () => {
    // Prepare
    const { box } = await makeBox({ ...filing, autoCreateTask: true, sendAutoReply: true });
    const id = await quarantinedIn(
      box.id,
      rawMail({
        from: 'Uma Diaz <uma@client.test>',
        subject: 'Wedding in May',
        date: new Date().toUTCString(),
      }),
    );
    // Act
    const res = await call('POST', `/messages/${id}/reprocess`);
    const again = await call('POST', `/messages/${id}/reprocess`);
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'imported',
      subject: 'Wedding in May',
      departmentId: 'dept-sales',
      userId: 'ana',
      emailTypeId: 'type-enquiry',
      emailStatusId: 'status-new',
    });
    expect(await tasksOf(id)).toMatchObject([
      {
        title: 'Email from Uma Diaz: Wedding in May',
        typeId: 'tt-call',
        statusId: 'ts-open',
        departmentId: 'dept-sales',
        userId: 'ana',
        boxId: box.id,
      },
    ]);
    expect(replies.filter((r) => r.inbound.id === id).map((r) => r.to)).toEqual([['uma@client.test']]);
    // Filed once: a second reprocess is refused and adds no task and no reply.
    expect(again.status).toBe(400);
    expect(await tasksOf(id)).toHaveLength(1);
  });

  it('sends no auto-reply for mail dated more than a day ago, and still creates its task', async () => {
    // Prepare
    const { box } = await makeBox({ ...filing, autoCreateTask: true, sendAutoReply: true });
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000).toUTCString();
    const id = await quarantinedIn(box.id, rawMail({ from: 'old@client.test', date: twoDaysAgo }));
    // Act
    const res = await call('POST', `/messages/${id}/reprocess`);
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('imported');
    expect(await tasksOf(id)).toHaveLength(1);
    expect(replies.filter((r) => r.inbound.id === id)).toEqual([]);
  });

  it('follows the box rules: no task and no reply for automatic mail', async () => {
    // Prepare
    const { box } = await makeBox({ ...filing, autoCreateTask: true, sendAutoReply: true });
    const id = await quarantinedIn(
      box.id,
      rawMail({ date: new Date().toUTCString(), headers: { 'Auto-Submitted': 'auto-generated' } }),
    );
    // Act
    const res = await call('POST', `/messages/${id}/reprocess`);
    // Assess
    expect(res.body).toMatchObject({ status: 'imported', automatic: true, departmentId: 'dept-sales' });
    expect(await tasksOf(id)).toEqual([]);
    expect(replies.filter((r) => r.inbound.id === id)).toEqual([]);
  });

  it('files a message quarantined as too large to record, with its oversized header fields cut down', async () => {
    // Prepare: a sender name of 450 KB made the record larger than DynamoDB takes.
    const { box } = await makeBox(filing);
    const id = await quarantinedIn(
      box.id,
      rawMail({ from: `"${'N'.repeat(450_000)}" <huge@client.test>`, subject: 'huge name' }),
    );
    // Act
    const res = await call('POST', `/messages/${id}/reprocess`);
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'imported',
      subject: 'huge name',
      from: { address: 'huge@client.test' },
    });
    expect(res.body.from.name).toHaveLength(320);
    expect((await ctx.d.blobs.getBuffer(res.body.rawKey)).length).toBeGreaterThan(450_000);
  });
});
