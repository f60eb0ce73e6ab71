/**
 * IMAP boxes on the test Dovecot (the same Maildirs POP3 reads), polled through the poller's own
 * way in (openMailbox), plus what the tests need to look at the server from outside: flags and
 * folders (a plain imapflow session), a TCP proxy that can cut the line, and UIDVALIDITY resets.
 */
import { readdir, rm, utimes } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll } from 'vitest';
import type { EmailBox } from '#lib/domain/model';
import { openMailbox } from '#lib/inbox/connect';
import { type AutoReplyRequest, type PollPorts, pollBox } from '#lib/inbox/poll';
import { type TestDeps, testDeps } from '#test/support/api';
import { type Dovecot, startDovecot, uniqueUser } from '#test/support/dovecot';

export const sid = 'studio-1';

export function imapFixture() {
  const ctx = {} as { d: TestDeps; dovecot: Dovecot };
  beforeAll(async () => {
    ctx.d = await testDeps();
    ctx.dovecot = await startDovecot();
  }, 60_000);
  afterAll(async () => {
    await ctx.dovecot?.stop();
  });

  const replies: AutoReplyRequest[] = [];
  const ports: PollPorts = {
    open: (box, password) => openMailbox(box, password, { imap: { ca: ctx.dovecot.caCertPem } }),
    autoReply: async (r) => {
      replies.push(r);
    },
  };

  async function makeBox(
    over: Omit<Partial<EmailBox>, 'connection'> & { connection?: Partial<EmailBox['connection']> } = {},
  ) {
    const user = uniqueUser('imap');
    const password = `pw-${user}`;
    await ctx.dovecot.addUser(user, password);
    const passwordRef = await ctx.d.secrets.create(`${sid}/boxes/${user}/imap`, password);
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
        type: 'imap',
        server: '127.0.0.1',
        emailAddress: 'sales@studio.test',
        userName: user,
        passwordRef,
        ssl: true,
        spa: false,
        port: ctx.dovecot.imapsPort,
        ...over.connection,
      },
    };
    await ctx.d.repos.emailBoxes.create(sid, box.id, box);
    const maildir = join(ctx.dovecot.dir, 'home', user, 'Maildir');
    return {
      box,
      user,
      password,
      maildir,
      deliver: (raw: Buffer) => ctx.dovecot.deliver(user, raw),
      /** A plain imapflow session as the mailbox's owner (a mail program looking at it). */
      owner: () => ownerSession(ctx.dovecot, user, password),
    };
  }

  const poll = (boxId: string, p: PollPorts = ports, budgetMs = 120_000) =>
    pollBox(ctx.d, { studioId: sid, boxId, trigger: 'manual', budgetMs }, p);

  /** Every message of the box recorded in the store, all pages. */
  async function messagesOf(boxId: string) {
    const all = [];
    let cursor: string | undefined;
    do {
      const page = await ctx.d.repos.messages.listUnassigned(sid, 500, cursor);
      all.push(...page.items.filter((m) => m.boxId === boxId));
      cursor = page.nextCursor;
    } while (cursor);
    return all;
  }

  return { ctx, ports, replies, makeBox, poll, messagesOf };
}

export async function ownerSession(dovecot: Dovecot, user: string, password: string): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: dovecot.host,
    port: dovecot.imapsPort,
    secure: true,
    tls: { ca: dovecot.caCertPem },
    auth: { user, pass: password },
    logger: false,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Flags and subjects of a folder, in UID order, as the owner's mail program would see them. */
export async function folderState(owner: ImapFlow, folder = 'INBOX') {
  const box = await owner.mailboxOpen(folder, { readOnly: true });
  const out: { uid: number; flags: string[]; subject: string }[] = [];
  if (box.exists > 0)
    for await (const m of owner.fetch('1:*', { uid: true, flags: true, envelope: true }))
      out.push({ uid: m.uid, flags: [...(m.flags ?? [])].sort(), subject: m.envelope?.subject ?? '' });
  return { uidValidity: String(box.uidValidity), messages: out };
}

/**
 * Makes Dovecot give the folder a new UIDVALIDITY (as a server restored from backup or rebuilt
 * does): its UID list and indexes are removed, so every message gets a new UID.
 */
export async function resetUidValidity(maildir: string): Promise<void> {
  for (const name of await readdir(maildir)) {
    if (name.startsWith('dovecot')) await rm(join(maildir, name), { recursive: true, force: true });
  }
}

/** Sets a delivered message's INTERNALDATE (Dovecot's Maildir takes the file's mtime). */
export async function setReceived(path: string, at: Date): Promise<void> {
  await utimes(path, at, at);
}

/** A TCP proxy in front of a server; cut() resets every connection through it at once. */
export async function startCutProxy(target: { host: string; port: number }) {
  const sockets = new Set<net.Socket>();
  let sessions = 0;
  const server = net.createServer((client) => {
    sessions++;
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get sessions() {
      return sessions;
    },
    cut() {
      for (const s of sockets) s.resetAndDestroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
