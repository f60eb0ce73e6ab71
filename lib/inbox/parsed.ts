/**
 * What a parse of a stored message yields, its limits and the record fields made from it: the
 * light half of the parser, loaded with the poller. The parse itself (mailparser and its charset
 * tables, ./mime.ts) is loaded on first use, so an invocation that imports nothing never loads it.
 */
import type { Headers } from '#lib/domain/inbound';
import type { Address } from '#lib/domain/model';
import { isHeaderSafeContentType } from '#lib/ports/index';

export interface ParsedMessage {
  headers: Headers;
  messageId?: string;
  inReplyTo?: string;
  references: string[];
  from?: Address;
  replyTo: Address[];
  to: Address[];
  cc: Address[];
  subject: string;
  date?: Date;
  textKey?: string;
  htmlKey?: string;
  snippet: string;
  /** See Message.contentHash. */
  contentHash: string;
  attachments: { filename?: string; contentType: string; size: number; blobKey: string }[];
}

export class UnparseableMessageError extends Error {
  override readonly name = 'UnparseableMessageError';
}

/** Limits a message must keep to be filed; over one, it is quarantined with the cap named. */
export const PARSE_CAPS = {
  /** MIME parts (mailsplit's nodes) in one message. */
  parts: 1_000,
  /** Header bytes of one MIME part. */
  headerBytes: 1024 * 1024,
  /** Levels of multipart (and message/rfc822) nesting above a part. */
  depth: 50,
};

/**
 * A text or HTML body up to this many bytes is held and combined as mailparser combines bodies;
 * past it, that body (all its parts) streams into the blob store and is never held whole.
 */
export const BODY_STREAM_BYTES = 1024 * 1024;

/** `type/subtype` when it is a header value S3 takes; anything else is stored as octet-stream. */
export function safeContentType(value: unknown): string {
  // mailparser gives `false` for a part with an empty Content-Type.
  const v = (typeof value === 'string' ? value : '').trim().toLowerCase();
  return isHeaderSafeContentType(v) && /^[a-z0-9][\w!#$&^.+-]*\/[a-z0-9][\w!#$&^.+-]*$/.test(v)
    ? v
    : 'application/octet-stream';
}

/** Bounds that keep a message item at a few KB however the message is written (raw copy keeps all). */
export const RECORD_LIMITS = { addresses: 100, references: 30, subject: 1_000 };

/** The message-record fields a parse yields; `fallbackDate` stands in for a missing Date. */
export function parsedFields(parsed: ParsedMessage, fallbackDate: string) {
  const refs = parsed.references;
  const keep = RECORD_LIMITS.references;
  return {
    messageId: parsed.messageId,
    inReplyTo: parsed.inReplyTo,
    // Trimmed as RFC 5322 §3.6.4 allows: the thread's first message and the nearest ones.
    references: refs.length > keep ? [refs[0]!, ...refs.slice(-(keep - 1))] : refs,
    from: parsed.from,
    to: parsed.to.slice(0, RECORD_LIMITS.addresses),
    cc: parsed.cc.slice(0, RECORD_LIMITS.addresses),
    subject: parsed.subject.slice(0, RECORD_LIMITS.subject),
    date: (parsed.date ?? new Date(fallbackDate)).toISOString(),
    snippet: parsed.snippet,
    textKey: parsed.textKey,
    htmlKey: parsed.htmlKey,
    attachments: parsed.attachments,
    contentHash: parsed.contentHash,
  };
}
