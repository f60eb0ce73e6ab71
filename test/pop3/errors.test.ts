// @vitest-environment node
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pop3Client, type Pop3ClientOptions, Pop3Error } from '#lib/pop3/client';
import { diagnosePop3 } from '#lib/pop3/diagnose';
import { type Dovecot, startDovecot, uniqueUser } from '#test/support/dovecot';

const PASSWORD = 'Sup3r-Secret-Pw';

let dovecot: Dovecot;

beforeAll(async () => {
  dovecot = await startDovecot();
}, 30_000);

afterAll(async () => {
  await dovecot?.stop();
});

function options(extra: Partial<Pop3ClientOptions>): Pop3ClientOptions {
  return {
    host: dovecot.host,
    port: dovecot.pop3sPort,
    tls: 'implicit',
    ca: dovecot.caCertPem,
    connectTimeoutMs: 1_000,
    timeoutMs: 1_000,
    ...extra,
  };
}

/** Runs `action` and returns what it threw (fails the test if it did not throw). */
async function failure(action: () => Promise<unknown>): Promise<Pop3Error> {
  try {
    await action();
  } catch (error) {
    expect(error).toBeInstanceOf(Pop3Error);
    return error as Pop3Error;
  }
  throw new Error('expected a Pop3Error');
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A scripted POP3 server: answers each command line with `reply(line)` (undefined = stay silent). */
async function fakeServer(
  reply: (line: string) => string | undefined,
  greeting: string | null = '+OK fake ready\r\n',
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (greeting) socket.write(greeting);
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n'); end >= 0; end = pending.indexOf('\r\n')) {
        const answer = reply(pending.slice(0, end));
        pending = pending.slice(end + 2);
        if (answer === 'CLOSE') socket.destroy();
        else if (answer !== undefined) socket.write(answer);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Fake that accepts any login and answers CAPA with -ERR; `extra` handles the rest. */
function loginThen(extra: (line: string) => string | undefined) {
  return (line: string) => {
    if (/^(USER|PASS) /.test(line)) return '+OK\r\n';
    if (line === 'CAPA') return '-ERR no CAPA here\r\n';
    return extra(line);
  };
}

describe('POP3 connection errors against Dovecot', () => {
  it('reports a wrong password as an auth error that never contains the password', async () => {
    // Prepare
    const user = uniqueUser('auth');
    await dovecot.addUser(user, 'the-right-one');
    const client = await Pop3Client.connect(options({}));

    // Act
    const error = await failure(() => client.login(user, PASSWORD));
    client.close();

    // Assess
    expect(error).toMatchObject({
      kind: 'auth',
      command: 'PASS',
      commandLine: 'PASS ****',
      responseCode: 'AUTH',
    });
    expect(`${error.message} ${error.serverText} ${JSON.stringify(error)}`).not.toContain(PASSWORD);
  });

  it('reports a port where nothing listens as refused', async () => {
    // Prepare
    const port = await freePort();

    // Act
    const error = await failure(() => Pop3Client.connect(options({ port, tls: 'none' })));

    // Assess
    expect(error).toMatchObject({ kind: 'refused', code: 'ECONNREFUSED', phase: 'connect' });
  });

  it('reports a host name that does not resolve as a DNS error', async () => {
    // Act
    const error = await failure(() =>
      Pop3Client.connect(options({ host: 'nonexistent.invalid', connectTimeoutMs: 10_000 })),
    );

    // Assess
    expect(error.kind).toBe('dns');
    expect(['ENOTFOUND', 'EAI_AGAIN']).toContain(error.code);
  });

  it('reports TLS spoken to the plain POP3 port as a TLS error, quickly', async () => {
    // Prepare
    const started = performance.now();

    // Act
    const error = await failure(() =>
      Pop3Client.connect(options({ port: dovecot.pop3Port, tls: 'implicit' })),
    );

    // Assess
    expect(error).toMatchObject({ kind: 'tls', phase: 'tls' });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('reports plain POP3 spoken to the POP3S port as a timeout waiting for the greeting', async () => {
    // Prepare
    const started = performance.now();

    // Act
    const plain = await failure(() => Pop3Client.connect(options({ tls: 'none' })));
    const starttls = await failure(() => Pop3Client.connect(options({ tls: 'starttls' })));

    // Assess
    expect(plain).toMatchObject({ kind: 'timeout', phase: 'greeting' });
    expect(starttls).toMatchObject({ kind: 'timeout', phase: 'greeting' });
    expect(performance.now() - started).toBeLessThan(3_500);
  });

  it('reports a self-signed certificate that is not trusted as a TLS error', async () => {
    // Act
    const error = await failure(() => Pop3Client.connect(options({ ca: undefined })));

    // Assess
    expect(error).toMatchObject({ kind: 'tls', code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });

  it('reports a certificate for another name as a TLS error', async () => {
    // Act
    const error = await failure(() => Pop3Client.connect(options({ servername: 'mail.example.com' })));

    // Assess
    expect(error).toMatchObject({ kind: 'tls', code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('accepts the untrusted certificate when verification is switched off', async () => {
    // Act
    const client = await Pop3Client.connect(options({ ca: undefined, rejectUnauthorized: false }));
    await client.quit();

    // Assess
    expect(client.secure).toBe(true);
  });

  it('reports an IMAP server on the port as a protocol error', async () => {
    // Act
    const error = await failure(() => Pop3Client.connect(options({ port: dovecot.imapPort, tls: 'none' })));

    // Assess
    expect(error).toMatchObject({ kind: 'protocol', phase: 'greeting' });
    expect(error.message).toContain('* OK');
  });
});

describe('POP3 errors from scripted servers', () => {
  it('reports a locked mailbox at login as a server error, not as a wrong password', async () => {
    // Prepare
    const server = await fakeServer((line) => {
      if (line.startsWith('USER ')) return '+OK\r\n';
      if (line.startsWith('PASS '))
        return `-ERR [IN-USE] Mailbox locked, password ${line.slice(5)} was fine\r\n`;
      return '-ERR\r\n';
    });
    const client = await Pop3Client.connect({ host: '127.0.0.1', port: server.port, tls: 'none' });

    // Act
    const error = await failure(() => client.login('someone', PASSWORD));
    client.close();
    await server.close();

    // Assess
    expect(error).toMatchObject({ kind: 'server', responseCode: 'IN-USE', commandLine: 'PASS ****' });
    expect(`${error.message} ${error.serverText}`).not.toContain(PASSWORD);
  });

  it('times out a command the server never answers', async () => {
    // Prepare
    const server = await fakeServer(loginThen(() => undefined));
    const client = await Pop3Client.connect({
      host: '127.0.0.1',
      port: server.port,
      tls: 'none',
      timeoutMs: 300,
    });

    // Act
    const error = await failure(() => client.stat());
    await server.close();

    // Assess
    expect(error).toMatchObject({ kind: 'timeout', command: 'STAT', phase: 'command' });
    expect(client.closed).toBe(true);
    // Explained as the server falling silent mid-session, not as a wrong port.
    const explained = diagnosePop3(
      error,
      { server: '127.0.0.1', port: server.port, ssl: false },
      { connectTimeoutMs: 15_000, timeoutMs: 300 },
    );
    expect(explained.field).toBe('connection.server');
    expect(explained.problem).toMatch(/middle of the session \(STAT: nothing for 0\.3 s\)/);
  });

  it('times out a server that accepts the connection but never greets', async () => {
    // Prepare
    const server = await fakeServer(() => undefined, null);

    // Act
    const error = await failure(() =>
      Pop3Client.connect({ host: '127.0.0.1', port: server.port, tls: 'none', connectTimeoutMs: 300 }),
    );
    await server.close();

    // Assess
    expect(error).toMatchObject({ kind: 'timeout', phase: 'greeting' });
  });

  it('reports a connection dropped in the middle of a message as closed', async () => {
    // Prepare
    const server = await fakeServer(
      loginThen((line) => (line === 'RETR 1' ? '+OK 100 octets\r\nSubject: half\r\n\r\nhalf a bo' : 'CLOSE')),
    );
    const client = await Pop3Client.connect({ host: '127.0.0.1', port: server.port, tls: 'none' });
    const stream = await client.retrStream(1);

    // Act
    const received: Buffer[] = [];
    const error = await failure(async () => {
      setTimeout(() => server.close(), 50);
      for await (const chunk of stream) received.push(chunk as Buffer);
    });

    // Assess
    expect(error).toMatchObject({ kind: 'closed' });
    expect(Buffer.concat(received).toString()).toBe('Subject: half\r\n\r\nhalf a bo');
  });

  it('refuses an empty message that the server announced as non-empty (unstuffed first dot line)', async () => {
    // Prepare
    const server = await fakeServer(
      loginThen((line) => (line === 'RETR 1' ? '+OK 9 octets\r\n.\r\n..\r\nabc\r\n.\r\n' : '-ERR\r\n')),
    );
    const client = await Pop3Client.connect({ host: '127.0.0.1', port: server.port, tls: 'none' });

    // Act
    const error = await failure(() => client.retr(1));
    await server.close();

    // Assess
    expect(error).toMatchObject({ kind: 'protocol', command: 'RETR' });
  });

  it('rejects a command waiting for its answer when the signal aborts', async () => {
    // Prepare
    const server = await fakeServer(loginThen(() => undefined));
    const controller = new AbortController();
    const client = await Pop3Client.connect({
      host: '127.0.0.1',
      port: server.port,
      tls: 'none',
      signal: controller.signal,
    });

    // Act
    const pending = failure(() => client.noop());
    controller.abort();
    const error = await pending;
    await server.close();

    // Assess
    expect(error.kind).toBe('aborted');
    expect(client.closed).toBe(true);
  });

  it('rejects a command waiting for its answer when the client is closed', async () => {
    // Prepare
    const server = await fakeServer(loginThen(() => undefined));
    const client = await Pop3Client.connect({ host: '127.0.0.1', port: server.port, tls: 'none' });

    // Act
    const pending = failure(() => client.noop());
    client.close();
    const error = await pending;
    const afterwards = await failure(() => client.stat());
    await server.close();

    // Assess
    expect(error.kind).toBe('aborted');
    expect(afterwards.kind).toBe('aborted');
  });

  it('refuses arguments that would smuggle a second command into the session', async () => {
    // Prepare
    const commands: string[] = [];
    const server = await fakeServer(
      loginThen((line) => {
        commands.push(line);
        return '+OK\r\n';
      }),
    );
    const client = await Pop3Client.connect({ host: '127.0.0.1', port: server.port, tls: 'none' });

    // Act
    const error = await failure(() => client.login('me\r\nDELE 1', PASSWORD));
    client.close();
    await server.close();

    // Assess
    expect(error.kind).toBe('protocol');
    expect(commands).not.toContain('DELE 1');
  });
});
