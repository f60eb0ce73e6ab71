/**
 * A real SMTP server (nodemailer's smtp-server) on 127.0.0.1 for the send tests and the bench:
 * SSL on connect, STARTTLS or plain; AUTH PLAIN/LOGIN against a fixed user list; failures that
 * can be switched on per test (rejected logon, rejected sender, temporary 4xx, 5xx on DATA); and
 * every accepted message kept raw, with its envelope.
 *
 * The TLS certificate is made with openssl when first needed (CN=localhost, SAN localhost and
 * 127.0.0.1), so no private key is committed; tests trust it by passing `ca` to the transport.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

export type SmtpMode = 'ssl' | 'starttls' | 'plain';

export interface TestCertificate {
  key: string;
  cert: string;
}

let certificate: TestCertificate | undefined;

/** A throw-away self-signed certificate for localhost / 127.0.0.1, made once per process. */
export function testCertificate(): TestCertificate {
  if (certificate) return certificate;
  const dir = mkdtempSync(join(tmpdir(), 'studio-mail-cert-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    certificate = {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
    return certificate;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A reply the server gives instead of accepting: an SMTP code and its text. */
export interface Reply {
  code: number;
  message: string;
}

export interface SmtpFailures {
  /** Every AUTH is refused with this reply (535 by default). */
  rejectAuth?: Reply | true;
  /** MAIL FROM is refused (5xx) for every sender, or for the listed addresses only. */
  rejectSender?: Reply & { addresses?: string[] };
  /** The next `times` transactions get a temporary reply at MAIL FROM, then mail is accepted. */
  temporary?: Reply & { times: number };
  /** DATA is refused after the message was transmitted. */
  rejectData?: Reply;
}

export interface ReceivedMessage {
  envelope: { from: string; to: string[] };
  /** The bytes as transmitted (after dot-unstuffing), CRLF line ends. */
  raw: Buffer;
  /** The logon name the client authenticated with, if any. */
  user?: string;
  /** Whether the session was encrypted (SSL on connect or after STARTTLS). */
  secure: boolean;
  /** When the server accepted it (epoch ms). */
  receivedAt: number;
}

export interface SmtpHarness {
  host: string;
  port: number;
  mode: SmtpMode;
  /** The certificate the server presents (PEM), for the client's `ca`. */
  ca: string;
  messages: ReceivedMessage[];
  /** Each AUTH attempt: mechanism and logon name (never the password). */
  authAttempts: { method: string; username: string }[];
  /** Number of MAIL FROM commands seen, accepted or not. */
  mailFromCount: () => number;
  /** Replaces the failures in force. */
  fail(failures: SmtpFailures): void;
  /** Clears messages, counters and failures. */
  reset(): void;
  stop(): Promise<void>;
}

export interface SmtpHarnessOptions {
  mode: SmtpMode;
  /** Logon name → password. With users AUTH is required; without, anyone may send. */
  users?: Record<string, string>;
  /** Offers AUTH XOAUTH2 too: whether this bearer token is good for this user (e.g. introspection). */
  xoauth2?: (user: string, accessToken: string) => Promise<boolean>;
  failures?: SmtpFailures;
  port?: number;
  /**
   * Greet at once instead of after smtp-server's fixed 100 ms early-talker pause. For the bench,
   * where that pause would hide the costs being measured; tests keep the realistic pause.
   */
  immediateGreeting?: boolean;
}

/** smtp-server's own connect(), minus the 100 ms pause that init() inserts before the greeting. */
function greetImmediately(server: SMTPServer): void {
  const internals = server as unknown as {
    _onError(err: Error): void;
    _onClientConnect(data: unknown): void;
  };
  server.connect = (socket, socketOptions) => {
    const connection = new SMTPConnection(server, socket, socketOptions);
    server.connections.add(connection);
    connection.on('error', (err: Error) => internals._onError(err));
    connection.on('connect', (data: unknown) => internals._onClientConnect(data));
    connection._setListeners(() => connection.connectionReady());
  };
}

function replyError({ code, message }: Reply): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

export async function startSmtpServer(options: SmtpHarnessOptions): Promise<SmtpHarness> {
  const { key, cert } = testCertificate();
  const users = options.users;
  let failures: SmtpFailures = options.failures ?? {};
  const messages: ReceivedMessage[] = [];
  const authAttempts: { method: string; username: string }[] = [];
  let mailFrom = 0;

  const serverOptions: SMTPServerOptions = {
    secure: options.mode === 'ssl',
    key,
    cert,
    name: 'smtp.test.local',
    banner: 'studio-mail test server',
    logger: false,
    authMethods: options.xoauth2 ? ['PLAIN', 'LOGIN', 'XOAUTH2'] : ['PLAIN', 'LOGIN'],
    authOptional: !users && !options.xoauth2,
    // Plain mode offers no STARTTLS and lets AUTH run unencrypted, like an old in-house server.
    disabledCommands: options.mode === 'plain' ? ['STARTTLS'] : [],
    allowInsecureAuth: options.mode === 'plain',
    disableReverseLookup: true,
    size: 30 * 1024 * 1024,
    onAuth(auth, _session, callback) {
      authAttempts.push({ method: auth.method, username: auth.username ?? '' });
      const reject = failures.rejectAuth;
      if (reject) {
        const reply =
          reject === true ? { code: 535, message: '5.7.8 Authentication credentials invalid' } : reject;
        return callback(replyError(reply));
      }
      if (auth.method === 'XOAUTH2' && options.xoauth2) {
        const { username = '', accessToken = '' } = auth;
        options.xoauth2(username, accessToken).then(
          (good) =>
            good
              ? callback(null, { user: username })
              : callback(replyError({ code: 535, message: '5.7.8 Username and Password not accepted' })),
          (error: unknown) => callback(error as Error),
        );
        return;
      }
      if (users && auth.username && users[auth.username] === auth.password) {
        return callback(null, { user: auth.username });
      }
      callback(replyError({ code: 535, message: '5.7.8 Authentication credentials invalid' }));
    },
    onMailFrom(address, _session, callback) {
      mailFrom += 1;
      const temporary = failures.temporary;
      if (temporary && temporary.times > 0) {
        temporary.times -= 1;
        return callback(replyError(temporary));
      }
      const sender = failures.rejectSender;
      if (sender && (!sender.addresses || sender.addresses.includes(address.address.toLowerCase()))) {
        return callback(replyError(sender));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (failures.rejectData) return callback(replyError(failures.rejectData));
        messages.push({
          envelope: {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
          },
          raw: Buffer.concat(chunks),
          user: typeof session.user === 'string' ? session.user : undefined,
          secure: Boolean(session.secure),
          receivedAt: Date.now(),
        });
        callback(null, `Ok: queued as test-${messages.length}`);
      });
    },
  };
  const server = new SMTPServer(serverOptions);
  if (options.immediateGreeting) greetImmediately(server);
  // Client-side failures (handshake aborted by a mismatched client) are the point of some tests.
  server.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    host: '127.0.0.1',
    port,
    mode: options.mode,
    ca: cert,
    messages,
    authAttempts,
    mailFromCount: () => mailFrom,
    fail(next) {
      failures = { ...next, temporary: next.temporary ? { ...next.temporary } : undefined };
    },
    reset() {
      messages.length = 0;
      authAttempts.length = 0;
      mailFrom = 0;
      failures = {};
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const connection of server.connections) connection.close();
        server.close(() => resolve());
      }),
  };
}
