/**
 * Second looks at an SMTP port after a failed connection, to tell a studio owner which security
 * setting the server really wants: does it start TLS at once (SSL on connect), or greet in plain
 * text, and does it then offer STARTTLS? No credentials and no mail are sent.
 */
import { isIP, type LookupFunction, connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { guardedLookup, type MailHostPolicy, refuseBlockedLiteral } from '#lib/net/guard';

export interface PortProbe {
  /** The server completed a TLS handshake at once: SSL on connect. */
  implicitTls: boolean;
  /** The server greeted in plain text (a `220` line). */
  plainGreeting: boolean;
  /** After a plain greeting, EHLO listed STARTTLS. */
  offersStartTls: boolean;
}

export type Prober = (host: string, port: number) => Promise<PortProbe>;

function tlsHandshakes(
  host: string,
  port: number,
  timeoutMs: number,
  lookup: LookupFunction | undefined,
): Promise<boolean> {
  return new Promise((resolve) => {
    // Only the protocol is checked here; the certificate is judged by the real connection.
    const socket = tlsConnect({
      host,
      port,
      ...(lookup ? { lookup } : {}),
      servername: isIP(host) ? undefined : host,
      rejectUnauthorized: false,
    });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function plainSession(
  host: string,
  port: number,
  timeoutMs: number,
  lookup: LookupFunction | undefined,
): Promise<{ greeting: boolean; starttls: boolean }> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port, ...(lookup ? { lookup } : {}) });
    let buffer = '';
    let greeted = false;
    const done = (greeting: boolean, starttls: boolean) => {
      socket.destroy();
      resolve({ greeting, starttls });
    };
    socket.setTimeout(timeoutMs, () => done(greeted, false));
    socket.once('error', () => done(greeted, false));
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      if (!greeted) {
        const line = /^(\d{3})[ -].*\r?\n/m.exec(buffer);
        if (!line) return;
        if (line[1] !== '220') return done(false, false);
        // A multi-line greeting ends with "220 "; wait for it before EHLO.
        if (!/^220 .*\r?\n/m.test(buffer)) return;
        greeted = true;
        buffer = '';
        socket.write('EHLO probe.studio-mail\r\n');
        return;
      }
      const last = /^(\d{3}) .*\r?\n/m.exec(buffer);
      if (!last) return;
      socket.write('QUIT\r\n');
      done(true, last[1] === '250' && /^250[ -]STARTTLS\b/im.test(buffer));
    });
  });
}

/**
 * Probes with a short timeout per look. TLS first: a server that handshakes is an SSL port and
 * would never greet in plain text, so the slower plain look is skipped.
 */
export function portProber(timeoutMs = 3_000, mailHosts?: MailHostPolicy): Prober {
  const lookup = mailHosts ? guardedLookup(mailHosts) : undefined;
  return async (host, port) => {
    const nothing = { implicitTls: false, plainGreeting: false, offersStartTls: false };
    if (mailHosts) {
      try {
        refuseBlockedLiteral(host, mailHosts);
      } catch {
        return nothing; // the send itself reports the refusal
      }
    }
    if (await tlsHandshakes(host, port, timeoutMs, lookup)) {
      return { implicitTls: true, plainGreeting: false, offersStartTls: false };
    }
    const plain = await plainSession(host, port, timeoutMs, lookup);
    return { implicitTls: false, plainGreeting: plain.greeting, offersStartTls: plain.starttls };
  };
}
