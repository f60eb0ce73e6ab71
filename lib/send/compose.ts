/**
 * MIME composition with nodemailer's MailComposer. We build the bytes ourselves, with a
 * Message-ID we chose, so that the copy kept in the blob store is exactly what the transport sent
 * and replies can be threaded by that Message-ID. Non-ASCII headers are RFC 2047 encoded.
 */
import { randomUUID } from 'node:crypto';
import type MailComposerClass from 'nodemailer/lib/mail-composer';
import type { Address } from '#lib/domain/model';
import type { RawMail } from '#lib/ports/index';

export interface OutgoingMessage {
  from: Address;
  replyTo?: string;
  to: Address[];
  cc: Address[];
  bcc: Address[];
  subject: string;
  text: string;
  html?: string;
  messageId: string;
  date: Date;
  inReplyTo?: string;
  references: string[];
  /** Extra headers, e.g. `Auto-Submitted: auto-replied` on auto-replies (RFC 3834). */
  headers?: Record<string, string>;
  /** Files attached as they are (bytes, not paths: file and URL access stay off). */
  attachments?: OutgoingAttachment[];
}

export interface OutgoingAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
}

/** `<uuid@domain-of-sender>`: unique, and in the sender's domain as RFC 5322 recommends. */
export function newMessageId(fromAddress: string): string {
  const domain = fromAddress.split('@').pop()?.toLowerCase() || 'studio-mail.invalid';
  return `<${randomUUID()}@${domain}>`;
}

const mimeAddress = (a: Address) => (a.name ? { name: a.name, address: a.address } : a.address);

/**
 * nodemailer's composer, imported on first use: a request that only reads or previews never
 * loads or compiles it (its own chunk in the Lambda bundle, see docs/performance.md).
 */
let composerModule: Promise<typeof MailComposerClass> | undefined;
export function loadMailComposer(): Promise<typeof MailComposerClass> {
  composerModule ??= import('nodemailer/lib/mail-composer').then((m) => m.default);
  return composerModule;
}

export async function composeMime(m: OutgoingMessage): Promise<RawMail> {
  const MailComposer = await loadMailComposer();
  const composer = new MailComposer({
    from: mimeAddress(m.from),
    replyTo: m.replyTo,
    to: m.to.map(mimeAddress),
    cc: m.cc.length ? m.cc.map(mimeAddress) : undefined,
    // Bcc goes into the envelope only; MailComposer leaves the header out.
    bcc: m.bcc.length ? m.bcc.map(mimeAddress) : undefined,
    subject: m.subject,
    text: m.text,
    html: m.html,
    messageId: m.messageId,
    date: m.date,
    inReplyTo: m.inReplyTo,
    references: m.references.length ? m.references : undefined,
    headers: m.headers,
    attachments: m.attachments?.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: a.content,
    })),
    // CRLF throughout, as SMTP and SES carry it, so stored and sent bytes are the same.
    newline: 'win',
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  const node = composer.compile();
  const envelope = node.getEnvelope();
  const raw = await node.build();
  return {
    envelope: { from: envelope.from || m.from.address, to: envelope.to },
    raw,
    messageId: m.messageId,
  };
}
