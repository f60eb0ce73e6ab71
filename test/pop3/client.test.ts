// @vitest-environment node
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pop3Client, type Pop3ClientOptions, Pop3Error } from '#lib/pop3/client';
import { type Dovecot, startDovecot, uniqueUser } from '#test/support/dovecot';

const PASSWORD = 'correct horse battery staple';

let dovecot: Dovecot;

beforeAll(async () => {
  dovecot = await startDovecot();
}, 30_000);

afterAll(async () => {
  await dovecot?.stop();
});

function pop3s(extra: Partial<Pop3ClientOptions> = {}): Pop3ClientOptions {
  return {
    host: dovecot.host,
    port: dovecot.pop3sPort,
    tls: 'implicit',
    ca: dovecot.caCertPem,
    connectTimeoutMs: 5_000,
    timeoutMs: 10_000,
    ...extra,
  };
}

async function userWith(messages: Buffer[]): Promise<{ user: string; uidls: string[] }> {
  const user = uniqueUser('pop3');
  await dovecot.addUser(user, PASSWORD);
  const uidls: string[] = [];
  for (const message of messages) uidls.push((await dovecot.deliver(user, message)).uidl);
  return { user, uidls };
}

async function loggedIn(user: string, extra: Partial<Pop3ClientOptions> = {}): Promise<Pop3Client> {
  const client = await Pop3Client.connect(pop3s(extra));
  await client.login(user, PASSWORD);
  return client;
}

function mail(subject: string, body: string): Buffer {
  return Buffer.from(
    `From: a@example.com\r\nTo: b@example.com\r\nSubject: ${subject}\r\n\r\n${body}`,
    'latin1',
  );
}

/** Messages in server order, keyed by the UIDL the harness reported at delivery. */
async function retrieveByUidl(client: Pop3Client): Promise<Map<string, Buffer>> {
  const byId = new Map((await client.uidl()).map((entry) => [entry.id, entry.uid]));
  const result = new Map<string, Buffer>();
  for await (const { id, data } of client.retrMany(byId.keys())) result.set(byId.get(id)!, data);
  return result;
}

describe('the POP3 client against Dovecot', () => {
  it('logs in over POP3S with a verified certificate and reads the capabilities', async () => {
    // Prepare
    const { user } = await userWith([]);

    // Act
    const client = await loggedIn(user);
    const capabilities = client.capabilities;
    await client.quit();

    // Assess
    expect(client.secure).toBe(true);
    expect(client.greeting).toMatch(/Dovecot/);
    expect(capabilities).toMatchObject({ pipelining: true, uidl: true, top: true, respCodes: true });
    expect(capabilities.authRespCode).toBe(true);
  });

  it('upgrades a plain connection with STLS and then re-reads the capabilities', async () => {
    // Prepare
    const { user } = await userWith([mail('stls', 'hello\r\n')]);

    // Act
    const client = await Pop3Client.connect(pop3s({ port: dovecot.pop3Port, tls: 'starttls' }));
    const secureBeforeLogin = client.secure;
    const stlsStillOffered = client.capabilities.stls;
    await client.login(user, PASSWORD);
    const stat = await client.stat();
    await client.quit();

    // Assess
    expect(secureBeforeLogin).toBe(true);
    expect(stlsStillOffered).toBe(false);
    expect(stat.count).toBe(1);
  });

  it('logs in over plain POP3 when TLS is switched off', async () => {
    // Prepare
    const { user } = await userWith([mail('plain', 'hello\r\n')]);

    // Act
    const client = await Pop3Client.connect(pop3s({ port: dovecot.pop3Port, tls: 'none' }));
    const stlsOffered = client.capabilities.stls;
    await client.login(user, PASSWORD);
    const stat = await client.stat();
    await client.quit();

    // Assess
    expect(client.secure).toBe(false);
    expect(stlsOffered).toBe(true);
    expect(stat.count).toBe(1);
  });

  it('logs in with APOP when the greeting offers a timestamp', async () => {
    // Prepare
    const { user } = await userWith([mail('apop', 'hello\r\n')]);
    const client = await Pop3Client.connect(pop3s());

    // Act
    await client.apop(user, PASSWORD);
    const stat = await client.stat();
    await client.quit();

    // Assess
    expect(client.greeting).toMatch(/<[^>]+>/);
    expect(stat.count).toBe(1);
  });

  it('answers STAT, LIST and UIDL, for all messages and for one', async () => {
    // Prepare
    const messages = [mail('one', 'first\r\n'), mail('two', 'second message\r\n'), mail('three', 'x\r\n')];
    const { user, uidls } = await userWith(messages);
    const client = await loggedIn(user);

    // Act
    const stat = await client.stat();
    const list = await client.list();
    const listTwo = await client.list(2);
    const uidl = await client.uidl();
    const uidlThree = await client.uidl(3);
    await client.quit();

    // Assess
    const totalSize = messages.reduce((sum, message) => sum + message.length, 0);
    expect(stat).toEqual({ count: 3, size: totalSize });
    expect(list.map((entry) => entry.id)).toEqual([1, 2, 3]);
    expect(list.map((entry) => entry.size).sort()).toEqual(messages.map((m) => m.length).sort());
    expect(listTwo).toEqual(list[1]);
    expect(uidl.map((entry) => entry.uid).sort()).toEqual([...uidls].sort());
    expect(uidlThree).toEqual(uidl[2]);
  });

  it('returns the headers and the first lines with TOP', async () => {
    // Prepare
    const { user } = await userWith([mail('top', 'line 1\r\n.dot line 2\r\nline 3\r\n')]);
    const client = await loggedIn(user);

    // Act
    const headersOnly = await client.top(1, 0);
    const twoLines = await client.top(1, 2);
    await client.quit();

    // Assess
    expect(headersOnly.toString('latin1')).toBe(
      'From: a@example.com\r\nTo: b@example.com\r\nSubject: top\r\n\r\n',
    );
    expect(twoLines.toString('latin1')).toMatch(/\r\n\r\nline 1\r\n\.dot line 2\r\n$/);
  });

  it('returns lines that begin with a dot exactly as delivered', async () => {
    // Prepare
    const messages = [
      mail('dot first', '.\r\nafter the dot\r\n'),
      mail('dots', 'a\r\n..\r\n...\r\n.x\r\n. \r\nlast\r\n.\r\n'),
      Buffer.from('Subject: ends in dot-dot\r\n\r\n..\r\n'),
      // Not here: a message whose very first line starts with "." — Dovecot 2.3.19 does not stuff that
      // line; the client refuses such a response (see the fake-server test in errors.test.ts).
    ];
    const { user, uidls } = await userWith(messages);
    const client = await loggedIn(user);

    // Act
    const retrieved = await retrieveByUidl(client);
    const single = await client.retr(1);
    await client.quit();

    // Assess
    uidls.forEach((uidl, index) => {
      expect(retrieved.get(uidl)?.equals(messages[index]!), `message ${index}`).toBe(true);
    });
    expect(messages.some((message) => message.equals(single))).toBe(true);
  });

  it('keeps 8-bit bytes: ISO-8859-1 and ISO-2022-JP come back byte for byte', async () => {
    // Prepare
    const latin1 = Buffer.concat([
      Buffer.from('Subject: =?ISO-8859-1?Q?caf=E9?=\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n'),
      Buffer.from('Content-Transfer-Encoding: 8bit\r\n\r\nCaf'),
      Buffer.from([0xe9, 0x20, 0xe0, 0x20, 0xff, 0xfe, 0x80, 0x0d, 0x0a]),
    ]);
    const jis = Buffer.concat([
      Buffer.from('Subject: jis\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n'),
      // ESC $ B (JIS X 0208) "日本" ESC ( B (ASCII)
      Buffer.from([0x1b, 0x24, 0x42, 0x46, 0x7c, 0x4b, 0x5c, 0x1b, 0x28, 0x42, 0x0d, 0x0a]),
    ]);
    const { user, uidls } = await userWith([latin1, jis]);
    const client = await loggedIn(user);

    // Act
    const retrieved = await retrieveByUidl(client);
    await client.quit();

    // Assess
    expect(retrieved.get(uidls[0]!)?.equals(latin1)).toBe(true);
    expect(retrieved.get(uidls[1]!)?.equals(jis)).toBe(true);
  });

  it('does not delete anything when the connection is closed without QUIT after DELE', async () => {
    // Prepare
    const { user } = await userWith([mail('keep me', 'body\r\n'), mail('keep me too', 'body\r\n')]);
    const client = await loggedIn(user);

    // Act
    await client.dele(1);
    await client.dele(2);
    client.close();
    const again = await loggedIn(user);
    const stat = await again.stat();
    await again.quit();

    // Assess
    expect(stat.count).toBe(2);
    expect(await dovecot.messageCount(user)).toBe(2);
  });

  it('deletes the messages marked with DELE when the session ends with QUIT', async () => {
    // Prepare
    const { user } = await userWith([mail('delete me', 'body\r\n'), mail('keep me', 'body\r\n')]);
    const client = await loggedIn(user);

    // Act
    await client.dele(1);
    await client.quit();
    const again = await loggedIn(user);
    const stat = await again.stat();
    await again.quit();

    // Assess
    expect(stat.count).toBe(1);
    expect(await dovecot.messageCount(user)).toBe(1);
  });

  it('forgets the DELE marks on RSET', async () => {
    // Prepare
    const { user } = await userWith([mail('reset', 'body\r\n')]);
    const client = await loggedIn(user);

    // Act
    await client.dele(1);
    await client.rset();
    await client.noop();
    await client.quit();

    // Assess
    expect(await dovecot.messageCount(user)).toBe(1);
  });

  it('reports -ERR for a missing message as a server error and keeps the session usable', async () => {
    // Prepare
    const { user } = await userWith([mail('only', 'body\r\n')]);
    const client = await loggedIn(user);

    // Act
    const error = await client.retr(9).catch((caught: unknown) => caught);
    const stat = await client.stat();
    await client.quit();

    // Assess
    expect(error).toBeInstanceOf(Pop3Error);
    expect(error).toMatchObject({ kind: 'server', command: 'RETR', commandLine: 'RETR 9' });
    expect((error as Pop3Error).serverText).toMatch(/no message 9/i);
    expect(stat.count).toBe(1);
  });

  it('reads several headers with topMany and marks several messages with deleMany, pipelined', async () => {
    // Prepare
    const messages = [mail('h1', 'one\r\n'), mail('h2', 'two\r\n'), mail('h3', 'three\r\n')];
    const { user } = await userWith(messages);
    const client = await loggedIn(user);

    // Act
    const heads: string[] = [];
    for await (const { id, data } of client.topMany([3, 1, 2], 0))
      heads.push(`${id}:${data.toString('latin1')}`);
    await client.deleMany([1, 3]);
    await client.quit();

    // Assess
    const order = heads.map((h) => h.split(':')[0]);
    expect(order).toEqual(['3', '1', '2']);
    for (const head of heads) expect(head).toMatch(/Subject: h\d\r\n\r\n$/);
    expect(await dovecot.messageCount(user)).toBe(1);
  });

  it('keeps the session in step when the caller stops reading a pipelined batch early', async () => {
    // Prepare
    const messages = Array.from({ length: 12 }, (_, i) =>
      mail(`m${i}`, `${'y'.repeat(5000)}\r\n`.repeat(20)),
    );
    const { user } = await userWith(messages);
    const client = await loggedIn(user);

    // Act
    const seen: number[] = [];
    for await (const { id } of client.retrMany([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], { window: 8 })) {
      seen.push(id);
      if (id === 3) break;
    }
    const stat = await client.stat();
    const uidl = await client.uidl(12);
    await client.quit();

    // Assess
    expect(seen).toEqual([1, 2, 3]);
    expect(stat.count).toBe(12);
    expect(uidl.id).toBe(12);
  });

  it('streams a message whose reader gives up half way, then answers the next command', async () => {
    // Prepare
    const big = mail('big', `${'z'.repeat(998)}\r\n`.repeat(2000));
    const { user } = await userWith([big, mail('small', 'tiny\r\n')]);
    const client = await loggedIn(user);

    // Act
    const stream = await client.retrStream(1);
    let read = 0;
    for await (const chunk of stream) {
      read += (chunk as Buffer).length;
      if (read > 100_000) break; // destroys the stream
    }
    const small = await client.retr(2);
    await client.quit();

    // Assess
    expect(small.toString('latin1')).toMatch(/tiny\r\n$/);
  });
});
