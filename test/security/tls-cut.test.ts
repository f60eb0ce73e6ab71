// @vitest-environment node
/**
 * Issue 12, item 6: a TLS handshake cut by the network is not a plain-text server. The box test
 * used to answer both with "this port does not seem to speak SSL, turn SSL off".
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SettingsHarness, settingsHarness } from '#test/settings/harness';

let h: SettingsHarness;
const servers: net.Server[] = [];
const sockets: net.Socket[] = [];

/** A local server doing `onConnection` to every connection; its port. */
async function server(onConnection: (socket: net.Socket) => void): Promise<number> {
  const s = net.createServer((socket) => {
    socket.on('error', () => {});
    sockets.push(socket);
    onConnection(socket);
  });
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return (s.address() as net.AddressInfo).port;
}

beforeAll(async () => {
  h = await settingsHarness({ env: { POP3_CONNECT_TIMEOUT_MS: '1500', POP3_TIMEOUT_MS: '2000' } });
});
afterAll(async () => {
  h?.output.restore();
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

const box = (id: string, port: number) => ({
  id,
  description: id,
  connection: {
    type: 'pop3',
    server: '127.0.0.1',
    emailAddress: 'sales@lumen.test',
    userName: 'sales',
    password: 'pw',
    ssl: true,
    port,
  },
});

describe('a failed SSL handshake', () => {
  it('says the connection was cut, not "turn SSL off", when the line is reset mid-handshake', async () => {
    // Prepare: the ClientHello arrives and the connection is reset, as a dropping firewall does.
    const port = await server((socket) => socket.once('data', () => socket.resetAndDestroy()));
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box('cut', port) });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.error.message).toMatch(/was cut off/);
    expect(res.body.error.message).not.toMatch(/Turn SSL off|does not speak SSL/);
    expect(res.body.error.field).toBe('connection.server');
  });

  it('says the connection was cut when it closes without a word', async () => {
    // Prepare
    const port = await server((socket) => socket.once('data', () => socket.end()));
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box('closed', port) });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.error.message).toMatch(/was cut off/);
  });

  it('says the port speaks plain text, and to turn SSL off, when it greets in plain text', async () => {
    // Prepare
    const port = await server((socket) => socket.write('+OK POP3 server ready\r\n'));
    // Act
    const res = await h.call('POST', '/email-boxes', { body: box('plain', port) });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.error.message).toMatch(/answered in plain text/);
    expect(res.body.error.message).toMatch(/Turn SSL off/);
    expect(res.body.error.field).toBe('connection.ssl');
  });
});
