/**
 * Mail transports through nodemailer: SES (v2 SendEmail with raw content) and SMTP (SSL on
 * connect, STARTTLS or none, with AUTH). Both send MIME we rendered ourselves, so the bytes we
 * store on the client record are the bytes that left.
 */

import { isIP } from 'node:net';
import { type SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import nodemailer, { type SendMailOptions, type Transporter, type TransportOptions } from 'nodemailer';
import { type MailHostPolicy, resolveMailHost } from '#lib/net/guard';
import type { MailTransport, RawMail, SendResult } from '#lib/ports/index';

export function sesTransport(client: SESv2Client, configurationSet?: string): MailTransport {
  const transporter = nodemailer.createTransport({
    SES: { sesClient: client, SendEmailCommand },
  });
  return {
    kind: 'ses',
    async send(mail: RawMail): Promise<SendResult> {
      const info = await transporter.sendMail({
        envelope: mail.envelope,
        raw: mail.raw,
        // Merged into SendEmail's input by nodemailer's SES transport.
        ses: {
          ...(configurationSet ? { ConfigurationSetName: configurationSet } : {}),
          ...(mail.identityArn ? { FromEmailAddressIdentityArn: mail.identityArn } : {}),
          ...(mail.tags
            ? { EmailTags: Object.entries(mail.tags).map(([Name, Value]) => ({ Name, Value })) }
            : {}),
        },
      } as SendMailOptions);
      return {
        // SES replaces the Message-ID header with its own; replies will quote that one.
        messageId: info.messageId,
        providerId: (info as { response?: string }).response,
        accepted: mail.envelope.to,
        rejected: [],
        response: (info as { response?: string }).response,
      };
    },
    async verify() {},
    close() {
      transporter.close();
    },
  };
}

export interface SmtpOptions {
  host: string;
  port: number;
  security: 'ssl' | 'starttls' | 'none';
  user?: string;
  password?: string;
  /**
   * An OAuth2 access token: with `user`, the logon is SASL XOAUTH2 (Gmail, Microsoft 365) instead
   * of a password. The caller refreshes it (lib/oauth); nodemailer only presents it.
   */
  accessToken?: string;
  /** Tests use self-signed certificates; production always verifies. */
  rejectUnauthorized?: boolean;
  /** CAs (PEM) to trust instead of Node's bundled list; add tls.rootCertificates to keep those. */
  ca?: string | string[];
  connectionTimeoutMs?: number;
  /** Keep connections open for several messages (bulk sends). */
  pool?: boolean;
  /**
   * Where the server name may point (lib/net/guard.ts). With a policy the name is resolved and
   * checked here and nodemailer connects to that address (no second lookup), presenting the name
   * for SNI and the certificate check.
   */
  mailHosts?: MailHostPolicy;
}

/** The address to connect to and the TLS server name, after the policy's check. */
async function pinnedHost(options: SmtpOptions): Promise<{ host: string; servername?: string }> {
  if (!options.mailHosts) return { host: options.host };
  const addresses = await resolveMailHost(options.host, options.mailHosts);
  // Lambda has IPv4 egress; an IPv6-only name still gets its address.
  const chosen = addresses.find((a) => a.family === 4) ?? addresses[0];
  const host = chosen?.address ?? options.host;
  return isIP(options.host) ? { host } : { host, servername: options.host };
}

export function smtpTransport(options: SmtpOptions): MailTransport {
  let transporter: Promise<Transporter> | undefined;
  let created: Transporter | undefined;
  const get = () => {
    transporter ??= pinnedHost(options).then(
      (target) => (created = createSmtp(options, target)),
      (error: unknown) => {
        transporter = undefined; // refused or not resolved: the next attempt looks again
        throw error;
      },
    );
    return transporter;
  };
  return {
    kind: 'smtp',
    async send(mail: RawMail): Promise<SendResult> {
      const info = await (await get()).sendMail({ envelope: mail.envelope, raw: mail.raw });
      return {
        messageId: mail.messageId,
        accepted: (info.accepted ?? []).map(String),
        rejected: (info.rejected ?? []).map(String),
        response: info.response,
      };
    },
    async verify() {
      await (await get()).verify();
    },
    close() {
      created?.close();
    },
  };
}

function createSmtp(options: SmtpOptions, target: { host: string; servername?: string }): Transporter {
  return nodemailer.createTransport({
    host: target.host,
    ...(target.servername ? { servername: target.servername } : {}),
    port: options.port,
    secure: options.security === 'ssl',
    requireTLS: options.security === 'starttls',
    ignoreTLS: options.security === 'none',
    auth: !options.user
      ? undefined
      : options.accessToken
        ? { type: 'OAuth2', user: options.user, accessToken: options.accessToken }
        : { user: options.user, pass: options.password ?? '' },
    tls: {
      rejectUnauthorized: options.rejectUnauthorized ?? true,
      ...(options.ca ? { ca: options.ca } : {}),
    },
    connectionTimeout: options.connectionTimeoutMs ?? 15_000,
    greetingTimeout: options.connectionTimeoutMs ?? 15_000,
    socketTimeout: 60_000,
    pool: options.pool ?? false,
    logger: false,
  } as TransportOptions);
}
