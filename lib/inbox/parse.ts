/**
 * Parses a stored raw message with mailparser's streaming MailParser (simpleParser would buffer
 * attachments whole): headers and text become metadata, bodies and each attachment are streamed
 * into the blob store. The raw bytes are read from the blob store, so parsing never touches the
 * mail server and can be replayed (reprocess).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
// A static import on purpose: with `await import('mailparser')` here, the 25 MB import test saw
// 19–26 MB retained at once (under 16 MB with this import); see docs/performance.md.
import { type AddressObject, type AttachmentStream, MailParser, type MessageText } from 'mailparser';
import { extractIds, type Headers, headersFrom } from '#lib/domain/inbound';
import type { Address } from '#lib/domain/model';
import { type BlobStore, isHeaderSafeContentType } from '#lib/ports/index';
import { StorageError } from './failures.ts';

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
};

/** Our reason for a parse that stopped at one of PARSE_CAPS, else undefined. */
function capReason(error: unknown): string | undefined {
  if ((error as { code?: string } | undefined)?.code !== 'EMAXLEN') return undefined;
  const text = (error as Error).message;
  if (/child nodes/i.test(text))
    return `The message has more than ${PARSE_CAPS.parts} MIME parts (cap: parts per message); its raw copy is kept.`;
  if (/header size/i.test(text))
    return `A part of the message has more than ${PARSE_CAPS.headerBytes} bytes of headers (cap: header bytes); its raw copy is kept.`;
  return `The message exceeds a parser limit (${text}); its raw copy is kept.`;
}

/** `type/subtype` when it is a header value S3 takes; anything else is stored as octet-stream. */
export function safeContentType(value: unknown): string {
  // mailparser gives `false` for a part with an empty Content-Type.
  const v = (typeof value === 'string' ? value : '').trim().toLowerCase();
  return isHeaderSafeContentType(v) && /^[a-z0-9][\w!#$&^.+-]*\/[a-z0-9][\w!#$&^.+-]*$/.test(v)
    ? v
    : 'application/octet-stream';
}

/** A filename fit to list: no control characters, at most 255 characters; empty → none. */
function safeFilename(value: unknown): string | undefined {
  const v = [...(typeof value === 'string' ? value : '')]
    .filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)
    .join('')
    .trim()
    .slice(0, 255);
  return v === '' ? undefined : v;
}

function addresses(value: unknown): Address[] {
  const list = (Array.isArray(value) ? value : value ? [value] : []) as AddressObject[];
  return list
    .flatMap((o) =>
      (o.value ?? []).flatMap((a) =>
        a.group
          ? a.group.map((g) => ({ address: g.address ?? '', name: g.name || undefined }))
          : [{ address: a.address ?? '', name: a.name || undefined }],
      ),
    )
    .filter((a) => a.address !== '');
}

/** Headers a real message has at least one of; without any, the bytes are not a message. */
const MESSAGE_HEADERS = ['from', 'to', 'subject', 'date', 'message-id', 'received', 'return-path', 'sender'];

/**
 * Parses the stored message `rawKey`. `copy` is the same bytes when the caller still holds them
 * (small messages), which saves reading them back from the blob store.
 */
export async function parseStored(
  blobs: BlobStore,
  rawKey: string,
  partsPrefix: string,
  copy?: Buffer,
): Promise<ParsedMessage> {
  let source: Readable;
  try {
    source = copy ? Readable.from([copy]) : await blobs.get(rawKey);
  } catch (error) {
    throw new StorageError(error);
  }
  const parser = new MailParser({
    skipImageLinks: true,
    skipTextToHtml: true,
    maxHtmlLengthToParse: 5_000_000,
    // Our caps, so that a message over them fails with a reason we name (see capReason).
    maxChildNodes: PARSE_CAPS.parts,
    maxHeadSize: PARSE_CAPS.headerBytes,
  } as ConstructorParameters<typeof MailParser>[0]);
  let headerMap = new Map<string, unknown>();
  let text: string | undefined;
  let html: string | undefined;
  const attachments: ParsedMessage['attachments'] = [];
  const uploads: Promise<void>[] = [];
  /** Every blob this parse wrote or began: removed again when the parse fails. */
  const written: string[] = [];
  let index = 0;

  let headerLines: { key: string; line: string }[] = [];
  parser.on('headers', (h: Map<string, unknown>) => {
    headerMap = h;
  });
  // The loop-guard rules read headers as written: mailparser folds List-* into one structure.
  parser.on('headerLines', (lines: { key: string; line: string }[]) => {
    headerLines = lines;
  });
  // A failure of the blob store (reading the raw copy, writing a part) is not the message's
  // fault: it fails the import as it is, to be retried, instead of quarantining the message.
  // pipeline() destroys the source with the parser's own error when the parse fails: that one
  // is the message's, so a source error counts only while the parser has not failed.
  let storeError: StorageError | undefined;
  let parserError: unknown;
  let parseFailed = false;
  parser.once('error', (error) => {
    parserError ??= error;
  });
  source.on('error', (error) => {
    if (parserError === undefined && error !== parserError) storeError ??= new StorageError(error);
  });
  const contents: Readable[] = [];
  parser.on('data', (data: AttachmentStream | MessageText) => {
    try {
      onData(data);
    } catch (error) {
      // A throw in here would leave the parser waiting for release() for ever: fail the parse.
      parser.destroy(error as Error);
      if (data.type !== 'text') {
        (data.content as Readable).resume();
        data.release?.();
      }
    }
  });
  const onData = (data: AttachmentStream | MessageText) => {
    if (data.type === 'text') {
      text = data.text;
      html = typeof data.html === 'string' ? data.html : undefined;
      return;
    }
    const n = index++;
    const key = `${partsPrefix}/att-${n}`;
    const content = data.content as Readable;
    // Heard from the first moment: a failing parse destroys it, maybe before the store reads it.
    content.on('error', () => {});
    contents.push(content);
    written.push(key);
    const contentType = safeContentType(data.contentType);
    // The parser waits for release(), so one attachment at a time flows through, never all in memory.
    uploads.push(
      blobs
        .put(key, content, contentType)
        .then(({ size }) => {
          attachments[n] = { filename: safeFilename(data.filename), contentType, size, blobKey: key };
        })
        .catch((error: unknown) => {
          if (!parseFailed) storeError ??= new StorageError(error);
          content.resume(); // drain it, so the parser is not left waiting for a reader
        })
        .finally(() => data.release?.()),
    );
  };

  const cleanUp = async () => {
    await Promise.allSettled(written.map((key) => blobs.delete(key)));
  };
  try {
    await pipeline(source, parser);
  } catch (error) {
    parseFailed = true;
    // An attachment cut short by the failure may never end: end its upload so none waits forever.
    for (const content of contents) if (!content.readableEnded) content.destroy(error as Error);
    await Promise.allSettled(uploads);
    await cleanUp();
    if (storeError) throw storeError;
    throw new UnparseableMessageError(
      capReason(error) ?? `The message could not be parsed: ${(error as Error).message}`,
    );
  }
  await Promise.allSettled(uploads);
  if (storeError) {
    await cleanUp();
    throw storeError;
  }
  if (!MESSAGE_HEADERS.some((h) => headerMap.has(h))) {
    await cleanUp();
    throw new UnparseableMessageError(
      'The data has none of the headers an email message has (From, To, Subject, Date, …).',
    );
  }
  const raw = new Map<string, string[]>();
  for (const { key, line } of headerLines) {
    const value = line
      .slice(line.indexOf(':') + 1)
      .replace(/\r?\n[ \t]+/g, ' ')
      .trim();
    raw.set(key.toLowerCase(), [...(raw.get(key.toLowerCase()) ?? []), value]);
  }
  const headers = headersFrom(raw);
  let textKey: string | undefined;
  let htmlKey: string | undefined;
  try {
    if (text !== undefined) {
      textKey = `${partsPrefix}/body.txt`;
      written.push(textKey);
      await blobs.put(textKey, text, 'text/plain; charset=utf-8');
    }
    if (html !== undefined) {
      htmlKey = `${partsPrefix}/body.html`;
      written.push(htmlKey);
      await blobs.put(htmlKey, html, 'text/html; charset=utf-8');
    }
  } catch (error) {
    await cleanUp();
    throw new StorageError(error);
  }
  const date = headerMap.get('date');
  const refs = headerMap.get('references');
  const from = addresses(headerMap.get('from'))[0];
  const subject = String(headerMap.get('subject') ?? '');
  const contentHash = createHash('sha256')
    .update(
      JSON.stringify([
        from?.address.toLowerCase() ?? '',
        subject,
        date instanceof Date ? date.getTime() : '',
        text ?? '',
        html ?? '',
        attachments.filter(Boolean).map((a) => a.size),
      ]),
    )
    .digest('hex');
  return {
    contentHash,
    headers,
    messageId: extractIds(String(headerMap.get('message-id') ?? ''))[0],
    inReplyTo: extractIds(String(headerMap.get('in-reply-to') ?? ''))[0],
    references: (Array.isArray(refs) ? refs : refs ? [refs] : []).flatMap((r) => extractIds(String(r))),
    from,
    replyTo: addresses(headerMap.get('reply-to')),
    to: addresses(headerMap.get('to')),
    cc: addresses(headerMap.get('cc')),
    subject,
    date: date instanceof Date && !Number.isNaN(date.getTime()) ? date : undefined,
    textKey,
    htmlKey,
    snippet: (text ?? '').replace(/\s+/g, ' ').trim().slice(0, 200),
    attachments: attachments.filter(Boolean),
  };
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
