import { afterAll, beforeAll } from 'vitest';
import type { EmailBox } from '#lib/domain/model';
import { type OpenGraphOptions, openGraphBox } from '#lib/graph/box';
import { mailboxIdentity, type PollPorts, pollBox } from '#lib/inbox/poll';
import { type TestDeps, testDeps } from '#test/support/api';
import { type GraphServer, startGraphServer } from '#test/support/graph-server';

export const sid = 'studio-1';
export const TENANT = 'contoso.onmicrosoft.com';
export const CLIENT_ID = '11111111-2222-3333-4444-555555555555';
export const SECRET = 'app-secret~value';

let n = 0;

/** One Graph stand-in and one table per test file; a fresh mailbox and box per test. */
export function graphFixture() {
  const ctx = {} as { d: TestDeps; graph: GraphServer };
  beforeAll(async () => {
    ctx.d = await testDeps();
    ctx.graph = await startGraphServer();
    ctx.graph.addApp({ tenant: TENANT, clientId: CLIENT_ID, secret: SECRET });
  });
  afterAll(async () => {
    await ctx.graph?.stop();
  });

  const settings = () => ({ apiBase: ctx.graph.apiBase, loginBase: ctx.graph.loginBase });

  /** The poller's ports, as functions/inbox-poll wires them, pointed at the stand-in. */
  function portsWith(over: Partial<OpenGraphOptions> = {}): PollPorts {
    return {
      open: (box, password, studioId, run) =>
        openGraphBox(box, password, {
          settings: settings(),
          repos: ctx.d.repos,
          studioId,
          identity: mailboxIdentity(box),
          ...(run ? { deadline: run.deadline } : {}),
          ...over,
        }),
      autoReply: async () => {},
    };
  }

  async function makeBox(over: Partial<EmailBox> = {}, secret = SECRET) {
    n += 1;
    const address = `box${n}-${process.pid}@contoso.test`;
    ctx.graph.addMailbox(address);
    const id = `graph-${n}-${Date.now().toString(36)}`;
    const passwordRef = await ctx.d.secrets.create(`${sid}/boxes/${id}/exchange`, secret);
    const box: EmailBox = {
      id,
      description: `Graph box ${n}`,
      autoCreateTask: false,
      sendAutoReply: false,
      autoReplyToAll: false,
      autoReplyFirstEmailOnly: false,
      leaveOnServer: true,
      ...over,
      connection: {
        type: 'exchange',
        access: 'graph',
        server: 'graph.microsoft.com',
        emailAddress: address,
        userName: address,
        tenantId: TENANT,
        clientId: CLIENT_ID,
        passwordRef,
        ssl: true,
        spa: false,
        port: 443,
        authentication: 'password',
        ...over.connection,
      },
    };
    await ctx.d.repos.emailBoxes.create(sid, box.id, box);
    return { box, address, deliver: (raw: Buffer, at?: Date) => ctx.graph.deliver(address, raw, at) };
  }

  const poll = (boxId: string, ports: PollPorts = portsWith({ pageSize: 10 }), budgetMs = 120_000) =>
    pollBox(ctx.d, { studioId: sid, boxId, trigger: 'manual', budgetMs }, ports);

  return { ctx, settings, portsWith, makeBox, poll };
}
