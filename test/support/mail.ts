import { createHash } from 'node:crypto';

/** Builds raw RFC 5322 messages (CRLF line ends) for tests, byte for byte as given. */
export interface MailSpec {
  from?: string;
  to?: string;
  cc?: string;
  subject?: string;
  date?: string;
  messageId?: string | null;
  inReplyTo?: string;
  references?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  contentType?: string;
}

let n = 0;

export function rawMail(spec: MailSpec = {}): Buffer {
  n += 1;
  const lines: string[] = [];
  lines.push(`From: ${spec.from ?? 'Ana Ruiz <ana@client.test>'}`);
  lines.push(`To: ${spec.to ?? 'Sales <sales@studio.test>'}`);
  if (spec.cc) lines.push(`Cc: ${spec.cc}`);
  lines.push(`Subject: ${spec.subject ?? `Hello ${n}`}`);
  lines.push(`Date: ${spec.date ?? 'Mon, 01 Jun 2026 10:00:00 +0000'}`);
  if (spec.messageId !== null)
    lines.push(`Message-ID: ${spec.messageId ?? `<m${n}-${process.pid}-${Date.now()}@client.test>`}`);
  if (spec.inReplyTo) lines.push(`In-Reply-To: ${spec.inReplyTo}`);
  if (spec.references) lines.push(`References: ${spec.references}`);
  for (const [k, v] of Object.entries(spec.headers ?? {})) lines.push(`${k}: ${v}`);
  lines.push('MIME-Version: 1.0');
  lines.push(`Content-Type: ${spec.contentType ?? 'text/plain; charset=utf-8'}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
  const body = Buffer.isBuffer(spec.body)
    ? spec.body
    : Buffer.from(`${spec.body ?? 'Hi, can we book a session?'}\r\n`, 'utf8');
  return Buffer.concat([head, body]);
}

/**
 * A message whose text body is `mb` MB of distinct lines (7bit, so its decoded body is the lines
 * with `\n` ends), with the body's sha256 and size as the parser stores it.
 */
export function bigTextMail(mb = 25): { raw: Buffer; sha256: string; size: number } {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < mb * 1024 * 1024; i++) {
    const line = `line ${i} of a long letter about the wedding album, page ${i % 997}, photo ${(i * 7919) % 10_007}`;
    lines.push(line);
    size += line.length + 1;
  }
  const text = `${lines.join('\n')}\n`;
  return {
    // rawMail ends the body with CRLF.
    raw: rawMail({ subject: 'long letter', body: lines.join('\r\n') }),
    sha256: createHash('sha256').update(text).digest('hex'),
    size: Buffer.byteLength(text),
  };
}

/** A message carrying a `mb` MB attachment of non-repeating bytes, and the attachment's sha256. */
export function bigAttachmentMail(mb = 25): { raw: Buffer; sha256: string; size: number } {
  const payload = Buffer.alloc(mb * 1024 * 1024);
  for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
  const body = [
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Photos attached.',
    '--b1',
    'Content-Type: application/octet-stream; name="shoot.raw"',
    'Content-Disposition: attachment; filename="shoot.raw"',
    'Content-Transfer-Encoding: base64',
    '',
    payload.toString('base64').replace(/.{76}/g, '$&\r\n'),
    '--b1--',
    '',
  ].join('\r\n');
  return {
    raw: rawMail({ subject: 'big', contentType: 'multipart/mixed; boundary="b1"', body }),
    sha256: createHash('sha256').update(payload).digest('hex'),
    size: payload.length,
  };
}
