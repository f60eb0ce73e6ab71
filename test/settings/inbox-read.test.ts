import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Message } from '#lib/domain/model';
import { tokens } from '#test/support/api';
import { messageFor, type SettingsHarness, settingsHarness, unreachableProbe } from './harness.ts';

let h: SettingsHarness;
const sid = 'studio-1';

const msg = (id: string, over: Partial<Message> = {}): Message => ({
  id,
  direction: 'in',
  status: 'imported',
  boxId: 'sales',
  threadId: `t-${id}`,
  references: [],
  to: [{ address: 'sales@lumen.test' }],
  cc: [],
  subject: `Subject ${id}`,
  date: '2026-05-01T10:00:00.000Z',
  snippet: 'Hi',
  rawKey: `raw/${id}.eml`,
  attachments: [],
  automatic: false,
  ...over,
});

beforeAll(async () => {
  h = await settingsHarness({ probePop3: unreachableProbe });
  // Prepare: what a poll would have stored.
  await h.call('POST', '/clients', {
    body: { id: 'c1', lastName: 'Berg', emails: [{ address: 'mia@example.com' }] },
  });
  await h.call('POST', '/email-boxes?verify=false', {
    body: {
      id: 'sales',
      description: 'Sales',
      connection: {
        server: 'pop.lumen.test',
        emailAddress: 'sales@lumen.test',
        userName: 'sales',
        password: 'pw-Zebra-9137',
      },
    },
  });
  await h.d.repos.messages.create(sid, msg('m1', { clientId: 'c1', date: '2026-05-01T10:00:00.000Z' }));
  await h.d.repos.messages.create(sid, msg('m2', { clientId: 'c1', date: '2026-05-02T10:00:00.000Z' }));
  await h.d.repos.messages.create(sid, msg('m3'));
  await h.d.repos.messages.create(sid, msg('m4', { status: 'quarantined', error: 'unparseable' }));
  await h.d.repos.tasks.create(sid, { id: 'task1', title: 'Reply to Mia', clientId: 'c1', messageId: 'm1' });
  const counts = { seen: 2, imported: 2, skipped: 0, quarantined: 0, tasks: 1, autoReplies: 0 };
  for (const [id, startedAt] of [
    ['r1', '2026-05-01T10:00:00.000Z'],
    ['r2', '2026-05-01T11:00:00.000Z'],
  ] as const)
    await h.d.repos.runs.put(sid, {
      id,
      boxId: 'sales',
      startedAt,
      status: 'succeeded',
      trigger: 'schedule',
      counts,
      errors: [],
    });
});

afterAll(() => h.output.restore());

describe('read-only inbox routes', () => {
  it("lists a client's messages newest first, a page at a time", async () => {
    // Act
    const first = await h.call('GET', '/clients/c1/messages?limit=1', { token: tokens.user });
    const second = await h.call('GET', `/clients/c1/messages?limit=1&cursor=${first.body.nextCursor}`, {
      token: tokens.user,
    });
    // Assess
    expect(first.status).toBe(200);
    expect(first.body.items.map((m: Message) => m.id)).toEqual(['m2']);
    expect(second.body.items.map((m: Message) => m.id)).toEqual(['m1']);
  });

  it('answers 404 for the messages of a client that does not exist', async () => {
    // Act
    const res = await h.call('GET', '/clients/nope/messages');
    // Assess
    expect(res.status).toBe(404);
  });

  it('lists unassigned and quarantined messages', async () => {
    // Act
    const unassigned = await h.call('GET', '/messages?unassigned=true', { token: tokens.user });
    const quarantined = await h.call('GET', '/messages?quarantined=true', { token: tokens.user });
    // Assess
    expect(unassigned.body.items.map((m: Message) => m.id)).toEqual(['m3']);
    expect(quarantined.body.items.map((m: Message) => m.id)).toEqual(['m4']);
  });

  it('asks which list when neither (or both) is given', async () => {
    // Act
    const neither = await h.call('GET', '/messages');
    const both = await h.call('GET', '/messages?unassigned=true&quarantined=true');
    // Assess
    expect(neither.status).toBe(400);
    expect(messageFor(neither, 'unassigned')).toMatch(/\?unassigned=true .* or \?quarantined=true/);
    expect(both.status).toBe(400);
  });

  it('reads one message, and answers 404 for an unknown one', async () => {
    // Act
    const found = await h.call('GET', '/messages/m1', { token: tokens.user });
    const missing = await h.call('GET', '/messages/nope');
    // Assess
    expect(found.body).toMatchObject({ id: 'm1', clientId: 'c1', subject: 'Subject m1' });
    expect(missing.status).toBe(404);
  });

  it('lists tasks and the runs of a box, newest first', async () => {
    // Act
    const tasks = await h.call('GET', '/tasks', { token: tokens.user });
    const runs = await h.call('GET', '/email-boxes/sales/runs', { token: tokens.user });
    const noBox = await h.call('GET', '/email-boxes/nope/runs');
    // Assess
    expect(tasks.body.items.map((t: { id: string }) => t.id)).toEqual(['task1']);
    expect(runs.body.items.map((r: { id: string }) => r.id)).toEqual(['r2', 'r1']);
    expect(noBox.status).toBe(404);
  });

  it("keeps another studio's mail apart", async () => {
    // Act
    const res = await h.call('GET', '/messages/m1', { token: tokens.otherStudioAdmin });
    // Assess
    expect(res.status).toBe(404);
  });

  it('needs a token', async () => {
    // Act
    const res = await h.call('GET', '/tasks', { token: null });
    // Assess
    expect(res.status).toBe(401);
  });
});
