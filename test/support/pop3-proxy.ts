/**
 * A small TCP proxy for plain POP3 in front of the test Dovecot, to play servers Dovecot cannot:
 * one without some capabilities (TOP, PIPELINING: left out of the CAPA answer), one that refuses
 * some commands (sent on renamed, so Dovecot answers -ERR), and a slow link (each command held back
 * `latencyMs`, answers paced to `bytesPerSecond`). It logs every command with the time it reached
 * the server, which a test can line up against other events (a DELE and its QUIT after a store).
 *
 * The CAPA filter drops any line that is exactly a hidden capability name, wherever it is in the
 * stream: fine for test mail, which never has a line reading just `TOP`.
 */
import net from 'node:net';

export interface Pop3ProxyOptions {
  target: { host: string; port: number };
  /** Capabilities left out of CAPA answers. */
  hide?: string[];
  /** Commands the server refuses (-ERR), whatever CAPA says. */
  refuse?: string[];
  /** Delay before each command reaches the server (a round trip on a slow link). */
  latencyMs?: number;
  /** Pace of the server's answers toward the client; unlimited when unset. */
  bytesPerSecond?: number;
  /** Hears each command as it is passed to the server (to line it up with other events). */
  onCommand?: (command: ProxiedCommand) => void;
}

export interface ProxiedCommand {
  /** Date.now() when the command was passed to the server. */
  at: number;
  /** Which client connection (from 1) sent it. */
  session: number;
  /** The command line without CRLF (PASS arguments blanked). */
  line: string;
}

export interface Pop3Proxy {
  port: number;
  commands: ProxiedCommand[];
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startPop3Proxy(options: Pop3ProxyOptions): Promise<Pop3Proxy> {
  const hide = new Set((options.hide ?? []).map((c) => c.toUpperCase()));
  const refuse = new Set((options.refuse ?? []).map((c) => c.toUpperCase()));
  const commands: ProxiedCommand[] = [];
  const sockets = new Set<net.Socket>();
  let sessions = 0;

  const server = net.createServer((client) => {
    const session = ++sessions;
    const upstream = net.connect(options.target.port, options.target.host);
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

    // Client → server, line by line, each held back by the latency, in order.
    let pending = '';
    let toServer = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        const line = pending.slice(0, nl + 1);
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
        toServer = toServer.then(async () => {
          if (options.latencyMs) await sleep(options.latencyMs);
          const text = line.replace(/\r?\n$/, '');
          const verb = text.split(' ')[0]?.toUpperCase() ?? '';
          const command = { at: Date.now(), session, line: verb === 'PASS' ? 'PASS ***' : text };
          commands.push(command);
          options.onCommand?.(command);
          const sent = refuse.has(verb) ? `X${line}` : line;
          if (!upstream.destroyed) upstream.write(Buffer.from(sent, 'latin1'));
        });
      }
    });

    // Server → client: hidden capabilities dropped, paced when asked.
    let carry = '';
    let toClient = Promise.resolve();
    upstream.on('data', (chunk: Buffer) => {
      let text = carry + chunk.toString('latin1');
      const cut = text.lastIndexOf('\n') + 1;
      carry = text.slice(cut);
      text = text.slice(0, cut);
      if (hide.size > 0)
        text = text
          .split(/(?<=\n)/)
          .filter((l) => !hide.has(l.trim().toUpperCase()))
          .join('');
      const out = Buffer.from(text, 'latin1');
      toClient = toClient.then(async () => {
        const step = options.bytesPerSecond
          ? Math.max(1, Math.floor(options.bytesPerSecond / 20))
          : out.length;
        for (let i = 0; i < out.length; i += step) {
          if (client.destroyed) return;
          client.write(out.subarray(i, i + step));
          if (options.bytesPerSecond) await sleep(50);
        }
      });
    });
    upstream.on('end', () => {
      void toClient.then(() => client.end(Buffer.from(carry, 'latin1')));
    });
    client.on('end', () => {
      void toServer.then(() => upstream.end());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    commands,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
