/**
 * The email-box connection test: log in to the POP3 server and out again (connect, implicit TLS
 * when `ssl` is on or plain when off, USER/PASS, STAT, QUIT), and when it fails say which field to
 * fix in words a studio owner can act on. The mail server's own reply is passed on; the password
 * never is (Pop3Error never carries it).
 */
import { readFileSync } from 'node:fs';
import { type Pop3ClientOptions, Pop3Error } from '#lib/pop3/client';

export interface Pop3Target {
  server: string;
  port: number;
  ssl: boolean;
  userName: string;
  password: string;
}

/**
 * TLS trust and time limits for the test. Set only from the environment (never from a request):
 * `POP3_CA_FILE` adds trusted CA certificates (PEM) for servers with a private CA, such as a test
 * Dovecot; `POP3_TLS_INSECURE=true` skips certificate checks, for local development only.
 */
export interface ConnectionTestConfig {
  ca?: string;
  rejectUnauthorized: boolean;
  /** DNS + TCP + TLS + greeting. API Gateway gives a request 29 s in all, so keep well below. */
  connectTimeoutMs: number;
  /** Longest wait for any one answer after connecting. */
  timeoutMs: number;
}

export function connectionTestConfig(
  env: Record<string, string | undefined> = process.env,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): ConnectionTestConfig {
  const ms = (name: string, fallback: number) => {
    const value = Number(env[name]);
    return Number.isInteger(value) && value > 0 ? value : fallback;
  };
  return {
    ca: env.POP3_CA_FILE ? readFile(env.POP3_CA_FILE) : undefined,
    rejectUnauthorized: env.POP3_TLS_INSECURE !== 'true',
    connectTimeoutMs: ms('POP3_CONNECT_TIMEOUT_MS', 10_000),
    timeoutMs: ms('POP3_TIMEOUT_MS', 10_000),
  };
}

/** The part of Pop3Client the test uses; taken as an argument so the test can be pointed anywhere. */
export interface Pop3Session {
  readonly greeting: string;
  login(user: string, password: string): Promise<void>;
  stat(): Promise<{ count: number }>;
  quit(): Promise<void>;
  close(): void;
}
export type Pop3Connect = (options: Pop3ClientOptions) => Promise<Pop3Session>;

export type ProbeResult =
  | { ok: true; message: string; greeting: string; messageCount: number; ms: number }
  | { ok: false; field: string; message: string; kind: string; serverReply?: string; ms: number };

export type Pop3Probe = (target: Pop3Target) => Promise<ProbeResult>;

/** A probe bound to its configuration and connector. */
export function pop3Probe(config: ConnectionTestConfig, connect: Pop3Connect): Pop3Probe {
  return (target) => probePop3(target, config, connect);
}

export async function probePop3(
  target: Pop3Target,
  config: ConnectionTestConfig,
  connect: Pop3Connect,
): Promise<ProbeResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let session: Pop3Session | undefined;
  try {
    session = await connect({
      host: target.server,
      port: target.port,
      tls: target.ssl ? 'implicit' : 'none',
      rejectUnauthorized: config.rejectUnauthorized,
      ...(config.ca ? { ca: config.ca } : {}),
      connectTimeoutMs: config.connectTimeoutMs,
      timeoutMs: config.timeoutMs,
    });
    await session.login(target.userName, target.password);
    const { count } = await session.stat();
    await session.quit();
    return {
      ok: true,
      message: `Logged in to ${target.server}:${target.port} as ${target.userName}; ${count} message(s) waiting.`,
      greeting: session.greeting,
      messageCount: count,
      ms: ms(),
    };
  } catch (error) {
    session?.close();
    if (!(error instanceof Pop3Error)) throw error;
    return { ok: false, ...diagnose(error, target, config), ms: ms() };
  }
}

export interface Diagnosis {
  field: string;
  message: string;
  kind: string;
  serverReply?: string;
}

const PORT_HINT = 'POP3 uses port 995 with SSL and 110 without';

/** Which field to fix, and why, for a failed POP3 login. */
export function diagnose(error: Pop3Error, target: Pop3Target, config: ConnectionTestConfig): Diagnosis {
  const where = `${target.server}:${target.port}`;
  const seconds = Math.round(config.connectTimeoutMs / 100) / 10;
  const serverReply = error.serverText
    ? `-ERR ${error.responseCode ? `[${error.responseCode}] ` : ''}${error.serverText}`
    : undefined;
  const d = (field: string, message: string): Diagnosis => ({
    field,
    message,
    kind: error.kind,
    ...(serverReply ? { serverReply } : {}),
  });
  switch (error.kind) {
    case 'dns':
      return d(
        'connection.server',
        `The mail server "${target.server}" was not found (no such host name). Check the spelling, e.g. pop.gmail.com.`,
      );
    case 'unreachable':
      return d(
        'connection.server',
        `The mail server ${target.server} cannot be reached from here. Check the server name.`,
      );
    case 'refused':
      return d(
        'connection.port',
        `${where} refused the connection: nothing accepts mail connections on port ${target.port}. Check the port and the SSL setting (${PORT_HINT}).`,
      );
    case 'timeout':
      // Servers slow down log-ins after failed attempts (Dovecot: up to 15 s), often past our wait.
      if (error.command === 'USER' || error.command === 'PASS')
        return d(
          'connection.password',
          `The mail server did not answer the log-in within ${Math.round(config.timeoutMs / 100) / 10} s. Servers slow down log-ins after failed attempts: check the user name and password, wait a minute, and test again.`,
        );
      // Connected, but no greeting: a POP3S port waits silently for a TLS hello we never sent.
      if (error.phase === 'greeting' && !target.ssl)
        return d(
          'connection.ssl',
          `${where} accepted the connection but sent no POP3 greeting within ${seconds} s: this port probably expects SSL. Turn SSL on, or use the plain POP3 port (${PORT_HINT}).`,
        );
      return d(
        'connection.port',
        `${where} did not answer within ${seconds} s. Check the port and the SSL setting (${PORT_HINT}), and that the server accepts connections from outside.`,
      );
    case 'tls':
      if (error.code === 'ERR_TLS_CERT_ALTNAME_INVALID')
        return d(
          'connection.server',
          `The certificate of ${target.server} is for another name. Use the server name your provider gives (the one on its certificate).`,
        );
      if (error.code && /CERT|ISSUER|SIGNATURE/.test(error.code))
        return d(
          'connection.ssl',
          `The SSL certificate of ${where} is not trusted (${error.code}). Check the server name and port with your provider.`,
        );
      if (error.command === 'STLS')
        return d(
          'connection.ssl',
          `${where} refused to start SSL. Check the SSL setting and the port (${PORT_HINT}).`,
        );
      return d(
        'connection.ssl',
        `The SSL (TLS) handshake with ${where} failed: this port does not seem to speak SSL. Turn SSL off, or use the SSL port (${PORT_HINT}).`,
      );
    case 'auth':
      return d(
        error.command === 'USER' ? 'connection.userName' : 'connection.password',
        `The mail server rejected the user name or password. Check both (the user name is often the full email address; Gmail needs an app password).`,
      );
    case 'protocol':
      return d(
        'connection.port',
        `The server at ${where} does not speak POP3. Check the port and the SSL setting (${PORT_HINT}).`,
      );
    case 'closed':
      return d(
        error.phase === 'tls' ? 'connection.ssl' : 'connection.port',
        `${where} closed the connection before the login finished. Check the port and the SSL setting (${PORT_HINT}).`,
      );
    case 'server':
      return d(
        'connection.server',
        `The mail server refused the session for now${serverReply ? '' : ' without saying why'} (for example the mailbox is in use by another program). Try again in a minute.`,
      );
    default:
      return d('connection.server', `The connection test to ${where} stopped: ${error.message}`);
  }
}
