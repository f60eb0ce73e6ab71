import { afterAll, beforeAll } from 'vitest';
import type { EmailBox } from '#lib/domain/model';
import { openBox } from '#lib/inbox/connect';
import { type AutoReplyRequest, type PollPorts, pollBox } from '#lib/inbox/poll';
import { type TestDeps, testDeps } from '#test/support/api';
import { type Dovecot, startDovecot, uniqueUser } from '#test/support/dovecot';

export const sid = 'studio-1';

/** One Dovecot and one table per test file; a fresh mailbox and box per test. */
export function inboxFixture(makeDeps: () => Promise<TestDeps> = () => testDeps()) {
  const ctx = {} as { d: TestDeps; dovecot: Dovecot };
  beforeAll(async () => {
    ctx.d = await makeDeps();
    ctx.dovecot = await startDovecot();
  });
  afterAll(async () => {
    await ctx.dovecot?.stop();
  });

  const replies: AutoReplyRequest[] = [];
  const ports: PollPorts = {
    open: (box, password) => openBox(box.connection, password, { ca: ctx.dovecot.caCertPem }),
    autoReply: async (r) => {
      replies.push(r);
    },
  };

  async function makeBox(over: Partial<EmailBox> = {}) {
    const user = uniqueUser('box');
    const password = `pw-${user}`;
    await ctx.dovecot.addUser(user, password);
    const passwordRef = await ctx.d.secrets.create(`${sid}/boxes/${user}/pop3`, password);
    const box: EmailBox = {
      id: user,
      description: `Box ${user}`,
      autoCreateTask: false,
      sendAutoReply: false,
      autoReplyToAll: false,
      autoReplyFirstEmailOnly: false,
      leaveOnServer: true,
      ...over,
      connection: {
        type: 'pop3',
        server: '127.0.0.1',
        emailAddress: 'sales@studio.test',
        userName: user,
        passwordRef,
        ssl: true,
        spa: false,
        port: ctx.dovecot.pop3sPort,
        ...over.connection,
      },
    };
    await ctx.d.repos.emailBoxes.create(sid, box.id, box);
    return { box, user, deliver: (raw: Buffer) => ctx.dovecot.deliver(user, raw) };
  }

  const poll = (boxId: string, p: PollPorts = ports, budgetMs = 120_000) =>
    pollBox(ctx.d, { studioId: sid, boxId, trigger: 'manual', budgetMs }, p);

  return { ctx, ports, replies, makeBox, poll };
}
