/**
 * Parses a stored raw message with mailparser's streaming MailParser (simpleParser would buffer
 * attachments whole): headers and text become metadata, bodies and each attachment are streamed
 * into the blob store. The raw bytes are read from the blob store, so parsing never touches the
 * mail server and can be replayed (reprocess).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AddressObject, AttachmentStream, MessageText } from 'mailparser';
import { extractIds, type Headers, headersFrom } from '#lib/domain/inbound';
import type { Address } from '#lib/domain/model';
import type { BlobStore } from '#lib/ports/index';

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
  attachments: { filename?: string; contentType: string; size: number; blobKey: string }[];
}

export class UnparseableMessageError extends Error {
  override readonly name = 'UnparseableMessageError';
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
  const source: Readable = copy ? Readable.from([copy]) : await blobs.get(rawKey);
  // Imported on first use: a poll of an empty box never loads mailparser and its charsets.
  const { MailParser } = await import('mailparser');
  const parser = new MailParser({
    skipImageLinks: true,
    skipTextToHtml: true,
    maxHtmlLengthToParse: 5_000_000,
  });
  let headerMap = new Map<string, unknown>();
  let text: string | undefined;
  let html: string | undefined;
  const attachments: ParsedMessage['attachments'] = [];
  const uploads: Promise<void>[] = [];
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
  let storeError: unknown;
  let parseFailed = false;
  source.once('error', (error) => {
    storeError ??= error;
  });
  const contents: Readable[] = [];
  parser.on('data', (data: AttachmentStream | MessageText) => {
    if (data.type === 'text') {
      text = data.text;
      html = typeof data.html === 'string' ? data.html : undefined;
      return;
    }
    const n = index++;
    const key = `${partsPrefix}/att-${n}`;
    const content = data.content as Readable;
    contents.push(content);
    // The parser waits for release(), so one attachment at a time flows through, never all in memory.
    uploads.push(
      blobs
        .put(key, content, data.contentType)
        .then(({ size }) => {
          attachments[n] = { filename: data.filename, contentType: data.contentType, size, blobKey: key };
        })
        .catch((error: unknown) => {
          if (!parseFailed) storeError ??= error;
          content.resume(); // drain it, so the parser is not left waiting for a reader
        })
        .finally(() => data.release?.()),
    );
  });

  try {
    await pipeline(source, parser);
  } catch (error) {
    parseFailed = true;
    // An attachment cut short by the failure may never end: end its upload so none waits forever.
    for (const content of contents) if (!content.readableEnded) content.destroy(error as Error);
    await Promise.allSettled(uploads);
    if (storeError) throw storeError;
    throw new UnparseableMessageError(`The message could not be parsed: ${(error as Error).message}`);
  }
  await Promise.all(uploads);
  if (storeError) throw storeError;
  if (!MESSAGE_HEADERS.some((h) => headerMap.has(h))) {
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
  if (text !== undefined) {
    textKey = `${partsPrefix}/body.txt`;
    await blobs.put(textKey, text, 'text/plain; charset=utf-8');
  }
  if (html !== undefined) {
    htmlKey = `${partsPrefix}/body.html`;
    await blobs.put(htmlKey, html, 'text/html; charset=utf-8');
  }
  const date = headerMap.get('date');
  const refs = headerMap.get('references');
  return {
    headers,
    messageId: extractIds(String(headerMap.get('message-id') ?? ''))[0],
    inReplyTo: extractIds(String(headerMap.get('in-reply-to') ?? ''))[0],
    references: (Array.isArray(refs) ? refs : refs ? [refs] : []).flatMap((r) => extractIds(String(r))),
    from: addresses(headerMap.get('from'))[0],
    replyTo: addresses(headerMap.get('reply-to')),
    to: addresses(headerMap.get('to')),
    cc: addresses(headerMap.get('cc')),
    subject: String(headerMap.get('subject') ?? ''),
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
  };
}
