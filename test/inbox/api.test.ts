import { beforeAll, describe, expect, it, vi } from 'vitest';
import { inboxPollFunction } from '#functions/inbox-poll/app';
import { inboxPollRoutes } from '#functions/inbox-poll/routes';
import type { Message } from '#lib/domain/model';
import { apiClient, tokens } from '#test/support/api';
import { rawMail } from '#test/support/mail';
import { inboxFixture, sid } from './support.ts';

const { ctx, ports, makeBox } = inboxFixture();

/** A message record with the fields a test does not care about filled in. */
function record(over: Partial<Message> & Pick<Message, 'id' | 'rawKey'>): Message {
  return {
    direction: 'in',
    status: 'quarantined',
    threadId: over.id,
    references: [],
    to: [],
    cc: [],
    subject: '',
    date: '2026-06-01T10:00:00.000Z',
    snippet: '',
    attachments: [],
    automatic: false,
    ...over,
  };
}
let call: ReturnType<typeof apiClient>;

beforeAll(() => {
  const handler = inboxPollFunction(ctx.d, { ports });
  call = apiClient(handler as never, inboxPollRoutes, 'inbox-poll');
});

describe('POST /email-boxes/{id}/poll', () => {
  it('runs a poll now and answers with the run and its counts, and reports it as an event and metrics', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    await deliver(rawMail({ subject: 'via API' }));
    const metric = vi.spyOn(ctx.d.metrics, 'addMetric');
    // Act
    const res = await call('POST', `/email-boxes/${box.id}/poll`);
    // Assess
    expect(metric).toHaveBeenCalledWith('MessagesImported', 'Count', 1);
    expect(metric).toHaveBeenCalledWith('PollsFailed', 'Count', 0);
    metric.mockRestore();
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'succeeded', run: { counts: { seen: 1, imported: 1 } } });
    expect(ctx.d.events.published.at(-1)).toMatchObject({
      source: 'studio-mail.inbox-poll',
      detailType: 'Inbox Poll Succeeded',
      detail: { boxId: box.id, counts: { imported: 1 } },
    });
  });

  it('answers 502 with the failure in plain words when the server rejects the login', async () => {
    // Prepare
    const { box } = await makeBox();
    await ctx.d.secrets.update(box.connection.passwordRef, 'not-the-password');
    // Act
    const res = await call('POST', `/email-boxes/${box.id}/poll`);
    // Assess
    expect(res.status).toBe(502);
    expect(res.body.failure).toMatchObject({ kind: 'login-rejected', field: 'connection.password' });
    expect(res.text).not.toContain('not-the-password');
    expect(ctx.d.events.published.at(-1)?.detailType).toBe('Inbox Poll Failed');
  });

  it('refuses a user who is not an admin, and an unknown box', async () => {
    const { box } = await makeBox();
    expect((await call('POST', `/email-boxes/${box.id}/poll`, { token: tokens.user })).status).toBe(403);
    expect((await call('POST', '/email-boxes/nope/poll')).status).toBe(404);
  });

  it('answers 409 box_busy in the one error shape while another poll of the box holds it', async () => {
    // Prepare: another run holds the box's lease.
    const { box } = await makeBox();
    await ctx.d.repos.boxState.acquireLease(sid, box.id, 'other-run', 60_000, Date.now());
    // Act
    const res = await call('POST', `/email-boxes/${box.id}/poll`);
    // Assess
    expect(res.status).toBe(409);
    expect(res.body).toEqual({
      error: {
        code: 'box_busy',
        message: 'Another poll of this box is running.',
        requestId: expect.any(String),
      },
    });
  });

  it('refuses a body with fields, since the poll takes none', async () => {
    const { box } = await makeBox();
    const res = await call('POST', `/email-boxes/${box.id}/poll`, { body: { wait: true } });
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].field).toBe('wait');
  });
});

describe('POST /messages/{id}/reprocess', () => {
  it('parses a quarantined message again from its raw copy and files it on the client', async () => {
    // Prepare: a message quarantined by an older parser, whose raw copy parses today.
    await ctx.d.repos.clients.create(sid, 'c-uma', {
      id: 'c-uma',
      emails: [{ address: 'uma@client.test', primary: true }],
    });
    await ctx.d.blobs.put('raw/q/1.eml', rawMail({ from: 'uma@client.test', subject: 'Fixed now' }));
    await ctx.d.repos.messages.create(
      sid,
      record({ id: 'q1', rawKey: 'raw/q/1.eml', error: 'old parser failed' }),
    );
    // Act
    const res = await call('POST', '/messages/q1/reprocess');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'imported', subject: 'Fixed now', clientId: 'c-uma' });
    expect((await ctx.d.repos.messages.listForClient(sid, 'c-uma')).items.map((m) => m.id)).toEqual(['q1']);
  });

  it('files a reprocessed reply in its thread and on its client, as an import would', async () => {
    // Prepare: we sent to the client; the reply, from another address, was quarantined.
    await ctx.d.repos.messages.create(
      sid,
      record({
        id: 'sent-r',
        direction: 'out',
        status: 'sent',
        clientId: 'c-rae',
        threadId: 'thread-rae',
        messageId: '<sent-r@studio.test>',
        to: [{ address: 'rae@client.test' }],
        subject: 'Your album',
        rawKey: 'raw/out/sent-r.eml',
      }),
    );
    const reply = rawMail({
      from: 'rae.work@elsewhere.test',
      subject: 'Re: Your album',
      inReplyTo: '<sent-r@studio.test>',
      headers: { 'Auto-Submitted': 'auto-replied' },
    });
    await ctx.d.blobs.put('raw/q/3.eml', reply);
    await ctx.d.repos.messages.create(sid, record({ id: 'q3', rawKey: 'raw/q/3.eml' }));
    // Act
    const res = await call('POST', '/messages/q3/reprocess');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'imported',
      threadId: 'thread-rae',
      clientId: 'c-rae',
      automatic: true,
    });
    const thread = await ctx.d.repos.messages.listThread(sid, 'thread-rae');
    expect(thread.map((m) => m.id).sort()).toEqual(['q3', 'sent-r']);
  });

  it('keeps a message quarantined, with the reason, when it still cannot be parsed', async () => {
    // Prepare
    await ctx.d.blobs.put('raw/q/2.eml', Buffer.from('\x00\x01 not mail'));
    await ctx.d.repos.messages.create(sid, record({ id: 'q2', rawKey: 'raw/q/2.eml' }));
    // Act
    const res = await call('POST', '/messages/q2/reprocess');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'quarantined' });
    expect(res.body.error).toMatch(/none of the headers/);
  });

  it('refuses to reprocess a message that is not quarantined', async () => {
    await ctx.d.repos.messages.create(
      sid,
      record({ id: 'ok1', status: 'imported', subject: 'fine', rawKey: 'raw/ok1.eml' }),
    );
    const res = await call('POST', '/messages/ok1/reprocess');
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].field).toBe('id');
  });
});
