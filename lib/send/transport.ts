/**
 * Picks and opens the way out for one message from the sender's effective settings: the shared
 * SES transport, or an SMTP connection (Gmail is SMTP with fixed settings) logging on with the
 * password from the secret store. Passwords are cached in memory for a few minutes, keyed by
 * their secret reference, and never logged or returned.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { SmtpOptions } from '#lib/adapters/mail';
import type { SendingTransport } from '#lib/domain/settings';
import type { GraphSendOptions } from '#lib/graph/send';
import type { AccessTokens } from '#lib/graph/tokens';
import type { MailHostPolicy } from '#lib/net/guard';
import type { MailTransport, SecretStore } from '#lib/ports/index';

export interface TransportPolicy {
  /** False only where the environment says so (SMTP_TLS_INSECURE=true); never from a request. */
  rejectUnauthorized: boolean;
  /** Trusted CAs when the environment adds one (SMTP_TLS_CA_FILE); Node's bundled list otherwise. */
  ca?: string[];
  /** Connect and greeting timeout of one SMTP attempt. */
  connectionTimeoutMs: number;
  /** Where SMTP server names may point (lib/net/guard.ts); set from Config by the functions. */
  mailHosts?: MailHostPolicy;
  /** Microsoft Graph's API root for method graph (GRAPH_API_BASE); default graph.microsoft.com/v1.0. */
  graphApiBase?: string;
}

export const defaultPolicy: TransportPolicy = { rejectUnauthorized: true, connectionTimeoutMs: 10_000 };

/**
 * The TLS trust and timeouts from the function's environment. A CA file is added to Node's bundled
 * list, so public servers still verify; tests point it at their throw-away certificate.
 */
export function transportPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): TransportPolicy {
  const caFile = env.SMTP_TLS_CA_FILE;
  const timeout = Number(env.SMTP_CONNECTION_TIMEOUT_MS);
  return {
    rejectUnauthorized: env.SMTP_TLS_INSECURE !== 'true',
    ca: caFile ? [...rootCertificates, readFileSync(caFile, 'utf8')] : undefined,
    connectionTimeoutMs:
      Number.isFinite(timeout) && timeout > 0 ? timeout : defaultPolicy.connectionTimeoutMs,
  };
}

/**
 * Secrets read through the store at most once per `ttlMs` per reference. The settings API writes a
 * new password as a new version under the same reference, so callers that must see a change at
 * once (Send Test Email, a retry after a refused logon) ask for a fresh read.
 */
export class CredentialCache {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();

  constructor(
    private readonly secrets: SecretStore,
    private readonly ttlMs = 5 * 60_000,
    private readonly clock: () => number = Date.now,
  ) {}

  async get(ref: string, options: { fresh?: boolean } = {}): Promise<{ value: string; cached: boolean }> {
    const hit = this.entries.get(ref);
    if (!options.fresh && hit && hit.expiresAt > this.clock()) return { value: hit.value, cached: true };
    const value = await this.secrets.get(ref);
    this.entries.set(ref, { value, expiresAt: this.clock() + this.ttlMs });
    return { value, cached: false };
  }

  forget(ref: string): void {
    this.entries.delete(ref);
  }
}

export interface TransportFactories {
  ses: () => MailTransport;
  smtp: (options: SmtpOptions) => MailTransport;
  /** Microsoft Graph sendMail (lib/graph/send.ts); needed only for method graph. */
  graph?: (options: GraphSendOptions) => MailTransport;
}

export interface OpenTransport {
  transport: MailTransport;
  /** Closes an SMTP transport; the SES one is shared by the process and stays open. */
  release(): void;
}

/**
 * SMTP transports shared by the sends in flight with the same settings and credentials: the
 * first opens a pooled nodemailer transport (`pool: true`, up to 5 connections reused message
 * after message), the others join it, and the last one out closes it. A lone send therefore still
 * opens and closes its own connection, and nothing stays connected while a Lambda is frozen.
 * The key holds a hash of the password, never the password.
 */
export class SharedSmtpTransports {
  private readonly open = new Map<string, { transport: MailTransport; users: number }>();

  constructor(private readonly smtp: (options: SmtpOptions) => MailTransport) {}

  acquire(options: SmtpOptions): OpenTransport {
    const key = JSON.stringify([
      options.host,
      options.port,
      options.security,
      options.user ?? '',
      options.password === undefined ? '' : createHash('sha256').update(options.password).digest('base64'),
      options.accessToken === undefined
        ? ''
        : createHash('sha256').update(options.accessToken).digest('base64'),
      options.rejectUnauthorized ?? true,
      options.ca ? createHash('sha256').update([options.ca].flat().join('\n')).digest('base64') : '',
      options.connectionTimeoutMs ?? 0,
    ]);
    let entry = this.open.get(key);
    if (!entry) {
      entry = { transport: this.smtp({ ...options, pool: true }), users: 0 };
      this.open.set(key, entry);
    }
    const shared = entry;
    shared.users += 1;
    let released = false;
    return {
      transport: shared.transport,
      release: () => {
        if (released) return;
        released = true;
        shared.users -= 1;
        if (shared.users === 0) {
          this.open.delete(key);
          shared.transport.close();
        }
      },
    };
  }

  /** Transports currently open (for tests). */
  get size(): number {
    return this.open.size;
  }
}

export function openTransport(
  factories: TransportFactories,
  t: SendingTransport,
  password: string | undefined,
  policy: TransportPolicy,
  shared?: SharedSmtpTransports,
  /** An OAuth2 access token: the logon is XOAUTH2 as `logonName` instead of the password. */
  accessToken?: string,
  /** Method graph: the tokens its requests carry (app credentials or a sign-in). */
  graphTokens?: AccessTokens,
): OpenTransport {
  if (t.method === 'ses') return { transport: factories.ses(), release: () => {} };
  if (t.method === 'graph') {
    if (!factories.graph || !graphTokens) throw new Error('Method graph needs the Graph factory and tokens.');
    const transport = factories.graph({
      baseUrl: policy.graphApiBase ?? 'https://graph.microsoft.com/v1.0',
      mailbox: t.mailbox,
      tokens: graphTokens,
    });
    return { transport, release: () => transport.close() };
  }
  // Without a saved password there is nothing to log on with; the server's answer then says
  // whether it needs a logon, which diagnose() turns into advice.
  const logon =
    accessToken !== undefined && t.logonName
      ? { user: t.logonName, accessToken }
      : password !== undefined && t.logonName
        ? { user: t.logonName, password }
        : {};
  const options: SmtpOptions = {
    host: t.server,
    port: t.port,
    security: t.security,
    ...logon,
    rejectUnauthorized: policy.rejectUnauthorized,
    ca: policy.ca,
    connectionTimeoutMs: policy.connectionTimeoutMs,
    ...(policy.mailHosts ? { mailHosts: policy.mailHosts } : {}),
  };
  if (shared) return shared.acquire(options);
  const transport = factories.smtp(options);
  return { transport, release: () => transport.close() };
}

/** A description of the transport for responses and logs: no secret, no reference to one. */
export function describeTransport(t: SendingTransport): Record<string, string | number> {
  if (t.method === 'ses') return { method: 'ses' };
  if (t.method === 'graph')
    return {
      method: 'graph',
      mailbox: t.mailbox,
      authentication: t.authentication,
      ...(t.tenantId ? { tenantId: t.tenantId } : {}),
    };
  return {
    method: t.method,
    server: t.server,
    port: t.port,
    security: t.security,
    ...(t.logonName ? { logonName: t.logonName } : {}),
    ...(t.signIn ? { authentication: 'oauth2', provider: t.signIn.provider } : {}),
  };
}
