// @vitest-environment node
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Pop3Client, Pop3Error, SaslCode } from '#lib/pop3/client';
import { diagnosePop3 } from '#lib/pop3/diagnose';

/** A scripted POP3 server: answers each client line with the next reply of `script`. */
async function scripted(script: (line: string) => string | undefined) {
  const lines: string[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.write('+OK ready\r\n');
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (let at = buffer.indexOf('\r\n'); at >= 0; at = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        lines.push(line);
        const reply = line === 'CAPA' ? '+OK\r\nSASL NTLM XOAUTH2\r\n.' : script(line);
        if (reply !== undefined) socket.write(`${reply}\r\n`);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  opened.push(server);
  const { port } = server.address() as net.AddressInfo;
  return { port, lines };
}

const opened: net.Server[] = [];
afterEach(async () => {
  for (const server of opened.splice(0)) await new Promise((resolve) => server.close(resolve));
});

const connect = (port: number) =>
  Pop3Client.connect({ host: '127.0.0.1', port, tls: 'none', connectTimeoutMs: 2_000, timeoutMs: 2_000 });

describe('SASL exchanges over POP3 (RFC 5034)', () => {
  it('cancels with "*" when the server answers NTLM with something that is not a challenge, naming SPA', async () => {
    // Prepare
    const server = await scripted((line) =>
      line === 'AUTH NTLM' ? '+ ' : line === '*' ? '-ERR Authentication cancelled' : '+ Zm9vYmFy',
    );
    const client = await connect(server.port);
    // Act
    const error = await client
      .ntlm({ domain: 'CORP', userName: 'ana', password: 'pw' })
      .catch((e: unknown) => e);
    client.close();
    // Assess
    expect(server.lines.slice(-1)).toEqual(['*']);
    expect(error).toMatchObject({ kind: 'protocol', code: SaslCode.NTLM_PROTOCOL });
    const field = diagnosePop3(
      error as Pop3Error,
      { server: '127.0.0.1', port: server.port, ssl: false },
      {
        connectTimeoutMs: 1,
        timeoutMs: 1,
      },
    ).field;
    expect(field).toBe('connection.spa');
  });

  it('answers an XOAUTH2 failure challenge with an empty line and reports the status the server gave', async () => {
    // Prepare
    const failure = Buffer.from('{"status":"401","schemes":"bearer","scope":"mail"}').toString('base64');
    const server = await scripted((line) =>
      line === 'AUTH XOAUTH2' ? '+ ' : line === '' ? '-ERR [AUTH] Invalid token' : `+ ${failure}`,
    );
    const client = await connect(server.port);
    // Act
    const error = await client.xoauth2('sales@lumen.test', 'expired-token').catch((e: unknown) => e);
    client.close();
    // Assess
    expect(server.lines.slice(-2)[1]).toBe('');
    expect(error).toBeInstanceOf(Pop3Error);
    expect(error).toMatchObject({ kind: 'auth', code: SaslCode.OAUTH_REJECTED });
    expect((error as Error).message).toMatch(/status 401/);
    expect((error as Error).message).not.toContain('expired-token');
  });

  it('treats "+OK" as the end of the exchange, not as a continuation', async () => {
    // Prepare
    const server = await scripted((line) => (line === 'AUTH XOAUTH2' ? '+ ' : '+OK Logged in'));
    const client = await connect(server.port);
    // Act
    await client.xoauth2('sales@lumen.test', 'good-token');
    // Assess
    expect(server.lines.filter((line) => line.startsWith('AUTH'))).toEqual(['AUTH XOAUTH2']);
    expect(server.lines.at(-1)).toBe('CAPA'); // capabilities read again after the log-in
    client.close();
  });
});
