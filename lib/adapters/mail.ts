/**
 * Mail transports through nodemailer: SES (v2 SendEmail with raw content) and SMTP (SSL on
 * connect, STARTTLS or none, with AUTH). Both send MIME we rendered ourselves, so the bytes we
 * store on the client record are the bytes that left.
 */
import { type SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import nodemailer, { type SendMailOptions, type TransportOptions } from 'nodemailer';
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
        ses: configurationSet ? { ConfigurationSetName: configurationSet } : undefined,
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
  /** Tests use self-signed certificates; production always verifies. */
  rejectUnauthorized?: boolean;
  /** CAs (PEM) to trust instead of Node's bundled list; add tls.rootCertificates to keep those. */
  ca?: string | string[];
  connectionTimeoutMs?: number;
  /** Keep connections open for several messages (bulk sends). */
  pool?: boolean;
}

export function smtpTransport(options: SmtpOptions): MailTransport {
  const transporter = nodemailer.createTransport({
    host: options.host,
    port: options.port,
    secure: options.security === 'ssl',
    requireTLS: options.security === 'starttls',
    ignoreTLS: options.security === 'none',
    auth: options.user ? { user: options.user, pass: options.password ?? '' } : undefined,
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
  return {
    kind: 'smtp',
    async send(mail: RawMail): Promise<SendResult> {
      const info = await transporter.sendMail({ envelope: mail.envelope, raw: mail.raw });
      return {
        messageId: mail.messageId,
        accepted: (info.accepted ?? []).map(String),
        rejected: (info.rejected ?? []).map(String),
        response: info.response,
      };
    },
    async verify() {
      await transporter.verify();
    },
    close() {
      transporter.close();
    },
  };
}
