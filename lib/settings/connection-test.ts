/**
 * The email-box connection test: log in to the POP3 server and out again (connect, implicit TLS
 * when `ssl` is on or plain when off, USER/PASS or SPA or XOAUTH2 as the box says, STAT, QUIT), and when it fails say which field to
 * fix in words a studio owner can act on. The mail server's own reply is passed on; the password
 * never is (Pop3Error never carries it).
 */
import { readFileSync } from 'node:fs';
import { AppError } from '#lib/domain/errors';
import type { AfterImport } from '#lib/domain/model';
import { diagnoseImap } from '#lib/imap/diagnose';
import { ImapError } from '#lib/imap/errors';
import { imapLogin } from '#lib/inbox/connect';
import { guardedLookup, type MailHostPolicy, refuseBlockedLiteral } from '#lib/net/guard';
import { type Pop3ClientOptions, Pop3Error } from '#lib/pop3/client';
import { diagnosePop3 } from '#lib/pop3/diagnose';
import { fromSocketError } from '#lib/pop3/errors';
import { logIn, type Pop3Credentials, type Pop3LoginSession } from '#lib/pop3/login';

export interface Pop3Target extends Pop3Credentials {
  server: string;
  port: number;
  ssl: boolean;
  /** Default pop3. An IMAP target is tested by probeImap (log in, open the folder, LOGOUT). */
  protocol?: 'pop3' | 'imap' | undefined;
  /** IMAP: the folder to open (default INBOX), and where `move` puts imported mail (checked too). */
  folder?: string | undefined;
  afterImport?: AfterImport | undefined;
  moveToFolder?: string | undefined;
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
  /** Which addresses the server name may resolve to (lib/net/guard.ts); absent = no check. */
  mailHosts?: MailHostPolicy;
}

export function connectionTestConfig(
  env: Record<string, string | undefined> = process.env,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
  mailHosts?: MailHostPolicy,
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
    ...(mailHosts ? { mailHosts } : {}),
  };
}

/** The part of Pop3Client the test uses; taken as an argument so the test can be pointed anywhere. */
export interface Pop3Session extends Pop3LoginSession {
  readonly greeting: string;
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

/** The box test for every polled protocol: IMAP targets by probeImap, the others by POP3. */
export function mailProbe(config: ConnectionTestConfig, connect: Pop3Connect): Pop3Probe {
  return (target) =>
    target.protocol === 'imap' ? probeImap(target, config) : probePop3(target, config, connect);
}

/**
 * Logs in to an IMAP server as the box says (password, SPA = NTLM, XOAUTH2), opens its folder
 * (read-only), checks the folder imported mail is moved to, and logs out.
 */
export async function probeImap(target: Pop3Target, config: ConnectionTestConfig): Promise<ProbeResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    if (config.mailHosts) {
      try {
        refuseBlockedLiteral(target.server, config.mailHosts);
      } catch (error) {
        const p = fromSocketError(error, 'connect', target.server, target.port);
        throw new ImapError(p.kind, p.message, { code: p.code, phase: 'connect', cause: error });
      }
    }
    // Loaded by the first IMAP test, so the settings function starts without imapflow.
    const { ImapSession } = await import('#lib/imap/client');
    const session = await ImapSession.connect({
      host: target.server,
      port: target.port,
      secure: target.ssl,
      rejectUnauthorized: config.rejectUnauthorized,
      ...(config.ca ? { ca: config.ca } : {}),
      ...(config.mailHosts ? { lookup: guardedLookup(config.mailHosts) } : {}),
      folder: target.folder,
      // Opened read-only whatever the box does after import; only the move folder is looked up.
      afterImport: target.afterImport === 'move' ? 'move' : 'keep',
      moveToFolder: target.moveToFolder,
      connectTimeoutMs: config.connectTimeoutMs,
      timeoutMs: config.timeoutMs,
      probeOnly: true,
      login: await imapLogin(
        { authentication: target.authentication, domain: target.domain, userName: target.userName },
        target.password,
        target.accessToken,
      ),
    });
    const count = session.exists;
    await session.quit();
    return {
      ok: true,
      message: `Logged in to ${target.server}:${target.port} as ${target.userName}; ${count} message(s) in ${session.folder}.`,
      greeting: `IMAP ${session.folder} UIDVALIDITY ${session.uidValidity}`,
      messageCount: count,
      ms: ms(),
    };
  } catch (error) {
    if (error instanceof AppError && error.field)
      return { ok: false, field: error.field, message: error.message, kind: error.code, ms: ms() };
    if (!(error instanceof ImapError)) throw error;
    const { field, kind, problem, advice, serverReply } = diagnoseImap(error, target, config);
    return {
      ok: false,
      field,
      message: `${problem} ${advice}`,
      kind,
      ...(serverReply ? { serverReply } : {}),
      ms: ms(),
    };
  }
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
    if (config.mailHosts) {
      try {
        refuseBlockedLiteral(target.server, config.mailHosts);
      } catch (error) {
        throw fromSocketError(error, 'connect', target.server, target.port);
      }
    }
    session = await connect({
      ...(config.mailHosts ? { lookup: guardedLookup(config.mailHosts) } : {}),
      host: target.server,
      port: target.port,
      tls: target.ssl ? 'implicit' : 'none',
      rejectUnauthorized: config.rejectUnauthorized,
      ...(config.ca ? { ca: config.ca } : {}),
      connectTimeoutMs: config.connectTimeoutMs,
      timeoutMs: config.timeoutMs,
    });
    await logIn(session, target);
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
    // No token to log in with (never signed in, or the provider refused a refresh): the sign-in is what to fix.
    if (error instanceof AppError && error.field)
      return { ok: false, field: error.field, message: error.message, kind: error.code, ms: ms() };
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

/** Which field to fix, and why, for a failed POP3 login (lib/pop3/diagnose.ts), as one message. */
export function diagnose(error: Pop3Error, target: Pop3Target, config: ConnectionTestConfig): Diagnosis {
  const { field, kind, problem, advice, serverReply } = diagnosePop3(error, target, config);
  return { field, message: `${problem} ${advice}`, kind, ...(serverReply ? { serverReply } : {}) };
}
