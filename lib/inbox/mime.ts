/**
 * The MIME parse itself, loaded on first use by ./parse.ts: mailparser's streaming MailParser (simpleParser would buffer
 * attachments whole): headers and text become metadata, bodies and each attachment are streamed
 * into the blob store. The raw bytes are read from the blob store, so parsing never touches the
 * mail server and can be replayed (reprocess).
 */
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import { htmlToText } from 'html-to-text';
import { type AddressObject, type AttachmentStream, MailParser, type MessageText } from 'mailparser';
import { withUnicodeDomain } from '#lib/domain/addresses';
import { extractIds, headersFrom } from '#lib/domain/inbound';
import type { Address } from '#lib/domain/model';
import type { BlobStore } from '#lib/ports/index';
import { StorageError } from './failures.ts';
import {
  BODY_STREAM_BYTES,
  PARSE_CAPS,
  type ParsedMessage,
  safeContentType,
  UnparseableMessageError,
} from './parsed.ts';

class ParseCapError extends Error {
  override readonly name = 'ParseCapError';
}

/** Our reason for a parse that stopped at one of PARSE_CAPS, else undefined. */
function capReason(error: unknown): string | undefined {
  if (error instanceof ParseCapError) return error.message;
  if ((error as { code?: string } | undefined)?.code !== 'EMAXLEN') return undefined;
  const text = (error as Error).message;
  if (/child nodes/i.test(text))
    return `The message has more than ${PARSE_CAPS.parts} MIME parts (cap: parts per message); its raw copy is kept.`;
  if (/header size/i.test(text))
    return `A part of the message has more than ${PARSE_CAPS.headerBytes} bytes of headers (cap: header bytes); its raw copy is kept.`;
  return `The message exceeds a parser limit (${text}); its raw copy is kept.`;
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

/** Addresses as written, internationalised ones too (RFC 6531); domains in Unicode, one spelling. */
function addresses(value: unknown): Address[] {
  const list = (Array.isArray(value) ? value : value ? [value] : []) as AddressObject[];
  return list
    .flatMap((o) =>
      (o.value ?? []).flatMap((a) =>
        a.group
          ? a.group.map((g) => ({ address: withUnicodeDomain(g.address ?? ''), name: g.name || undefined }))
          : [{ address: withUnicodeDomain(a.address ?? ''), name: a.name || undefined }],
      ),
    )
    .filter((a) => a.address !== '');
}

/** A text or HTML body part, as the parser hands it to us instead of buffering it. */
interface BodyPart {
  kind: 'text' | 'html';
  /** Position among the message's body parts. */
  order: number;
  /** Under a multipart/alternative (mailparser's rules for combining bodies depend on it). */
  alternative: boolean;
  root: boolean;
  charset: string;
  flowed: boolean;
  delSp: boolean;
}

/** The parts of mailparser's tree node that the subclass below reads and sets. */
interface TreeNode {
  node: { filename?: string | false; flowed?: boolean; delSp?: boolean };
  headers: object;
  contentType?: string;
  disposition?: string;
  isAttachment?: boolean;
  charset?: string;
  root?: boolean;
  parent?: TreeNode;
}

type Internals = {
  createNode(this: MailParser, node: unknown): TreeNode;
};
const baseCreateNode = (MailParser.prototype as unknown as Internals).createNode;

/**
 * MailParser that hands every body part to us as a stream (as it does attachments) instead of
 * buffering it, lists a text part with a filename as an attachment, and stops at PARSE_CAPS.depth.
 * createNode is mailparser's (internal) hook where a part's kind is decided.
 */
class StreamingMailParser extends MailParser {
  /** Body parts by their headers object, which the attachment stream carries as `headers`. */
  readonly bodies = new WeakMap<object, BodyPart>();
  private bodyCount = 0;

  createNode(node: unknown): TreeNode {
    const n = baseCreateNode.call(this, node);
    let depth = 0;
    let alternative = n.contentType === 'multipart/alternative';
    for (let p = n.parent; p; p = p.parent) {
      depth++;
      if (p.contentType === 'multipart/alternative') alternative = true;
    }
    if (depth > PARSE_CAPS.depth) {
      // Thrown in here, the error would escape mailparser's stream: stop it instead.
      (this as unknown as { hasFailed: boolean }).hasFailed = true;
      this.destroy(
        new ParseCapError(
          `The message nests MIME parts more than ${PARSE_CAPS.depth} levels deep (cap: nesting depth); its raw copy is kept.`,
        ),
      );
    }
    // mailparser buffers an inline text part (isAttachment false) whole; everything else streams.
    if (n.isAttachment === false) {
      n.isAttachment = true;
      if (n.node.filename) n.disposition = 'attachment';
      else
        this.bodies.set(n.headers, {
          order: this.bodyCount++,
          kind: n.contentType === 'text/html' ? 'html' : 'text',
          alternative,
          root: n.root === true,
          charset: n.charset || 'utf-8',
          flowed: n.node.flowed === true,
          delSp: n.node.delSp === true,
        });
    }
    return n;
  }

  /** The charset decoder mailparser would use (libmime's, UTF-8 out), or none for UTF-8. */
  charsetDecoder(charset: string): Transform | undefined {
    if (['ascii', 'usascii', 'utf8'].includes(charset.toLowerCase().replace(/[^a-z0-9]+/g, ''))) return;
    try {
      return (this as unknown as { decoder: { decodeStream(c: string): Transform } }).decoder.decodeStream(
        charset,
      );
    } catch {
      return undefined; // as mailparser: the bytes are taken as they are
    }
  }

  decodeFlowed(text: string, delSp: boolean): string {
    return (
      this as unknown as { libmime: { decodeFlowed(s: string, d: boolean): string } }
    ).libmime.decodeFlowed(text, delSp);
  }
}

/**
 * Where the last hard line break of `text` begins (just after the line's last character), or
 * undefined. Scans back from the end, so a long body costs one pass, not one per line.
 */
function lastHardBreak(text: string): number | undefined {
  for (let nl = text.lastIndexOf('\n'); nl > 0; nl = text.lastIndexOf('\n', nl - 1)) {
    const last = text[nl - 1] === '\r' ? nl - 2 : nl - 1;
    if (last >= 0 && !' >\r\n'.includes(text[last] ?? ' ')) return last + 1;
  }
  return undefined;
}

/**
 * Unfolds format=flowed text (RFC 3676) piece by piece: cut only after a hard line break (a line
 * ending in neither a space nor a quote mark), so each piece unfolds as it would in the whole.
 */
function flowedDecoder(parser: StreamingMailParser, delSp: boolean): Transform {
  let pending = '';
  // The line break at a cut joins two pieces; a cut at the very end has none after it.
  let joined = false;
  const decode = (piece: string) =>
    Buffer.from((joined ? '\n' : '') + parser.decodeFlowed(piece, delSp), 'binary');
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      pending += chunk.toString('binary');
      if (pending.length < 64 * 1024) return done();
      const end = lastHardBreak(pending);
      if (end === undefined) return done();
      const piece = decode(pending.slice(0, end));
      joined = true;
      pending = pending.slice(pending.indexOf('\n', end) + 1);
      done(null, piece);
    },
    flush(done) {
      done(null, pending ? decode(pending) : undefined);
    },
  });
}

/** Decoded UTF-8 bytes to text with `\n` line ends, as mailparser gives a body. */
function textDecoder(): Transform {
  const utf8 = new StringDecoder('utf8');
  let carry = '';
  const lines = (s: string, last: boolean) => {
    let t = carry + s;
    carry = '';
    if (!last && t.endsWith('\r')) {
      carry = '\r';
      t = t.slice(0, -1);
    }
    return t.replace(/\r?\n/g, '\n');
  };
  return new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer | string, _enc, done) {
      const t = lines(typeof chunk === 'string' ? chunk : utf8.write(chunk), false);
      done(null, t === '' ? undefined : t);
    },
    flush(done) {
      const t = lines(utf8.end(), true);
      done(null, t === '' ? undefined : t);
    },
  });
}

/**
 * One kind of body (text or HTML): held while small, so the parts combine as mailparser combines
 * them; past BODY_STREAM_BYTES it streams into the blob store (parts joined as mailparser joins
 * them, without its conversions between text and HTML) and is never held whole.
 */
class BodyCollector {
  readonly parts: { part: BodyPart; chunks: string[] }[] = [];
  private held = 0;
  private spill?: { stream: PassThrough; upload: Promise<unknown>; hash: Hash; wroteAny: boolean };
  private separatorDue = false;
  /** The start of the body, for the snippet. */
  head = '';

  constructor(
    private readonly blobs: BlobStore,
    readonly key: string,
    private readonly contentType: string,
    readonly separator: string,
    private readonly written: string[],
  ) {}

  get spilled(): boolean {
    return this.spill !== undefined;
  }

  /** Stands for a streamed body in the content hash. */
  digest(): string {
    return this.spill ? `sha256:${this.spill.hash.digest('hex')}` : '';
  }

  begin(part: BodyPart) {
    this.parts.push({ part, chunks: [] });
    this.separatorDue = true;
  }

  async append(text: string): Promise<void> {
    if (this.head.length < 1_000) this.head += text.slice(0, 1_000);
    if (this.spill) {
      if (this.separatorDue && this.spill.wroteAny) await this.write(this.separator);
      this.separatorDue = false;
      return this.write(text);
    }
    this.parts.at(-1)?.chunks.push(text);
    this.held += Buffer.byteLength(text);
    if (this.held <= BODY_STREAM_BYTES) return;
    // Too large to hold: from here on this body streams, starting with what was held.
    const stream = new PassThrough();
    stream.on('error', () => {}); // a failed upload reports through its promise
    this.written.push(this.key);
    const upload = this.blobs.put(this.key, stream, this.contentType);
    upload.catch(() => stream.resume());
    this.spill = { stream, upload, hash: createHash('sha256'), wroteAny: false };
    const held = this.parts.map((p) => p.chunks.join('')).filter((t) => t !== '');
    for (const p of this.parts) p.chunks = [];
    this.separatorDue = false;
    for (const [i, t] of held.entries()) {
      if (i > 0) await this.write(this.separator);
      await this.write(t);
    }
  }

  private async write(text: string): Promise<void> {
    const spill = this.spill!;
    spill.wroteAny = true;
    spill.hash.update(text);
    if (!spill.stream.write(text)) {
      await new Promise<void>((resolve, reject) => {
        spill.upload.then(() => resolve(), reject);
        spill.stream.once('drain', resolve);
      });
    }
  }

  /** Ends a streamed body; resolves when it is stored. */
  async finish(): Promise<void> {
    if (!this.spill) return;
    this.spill.stream.end();
    await this.spill.upload;
  }

  async abort(error: Error): Promise<void> {
    this.spill?.stream.destroy(error);
    await this.spill?.upload.catch(() => {});
  }
}

/** A held body's parts joined as mailparser joins them, or undefined when it has none. */
function joinHeld(c: BodyCollector): string | undefined {
  const parts = c.parts.map((p) => p.chunks.join('')).filter((t) => t !== '');
  return parts.length ? parts.join(c.separator) : undefined;
}

/** What mailparser (getTextContent) makes of bodies that were held: text and HTML, each or none. */
function combineHeld(parser: StreamingMailParser, collectors: BodyCollector[]) {
  const parts = collectors
    .flatMap((c) => c.parts)
    .map(({ part, chunks }) => ({ ...part, content: chunks.join('') }))
    .filter((p) => p.content !== '')
    .sort((a, b) => a.order - b.order);
  const hasText = parts.some((p) => p.kind === 'text');
  const hasHtml = parts.some((p) => p.kind === 'html');
  const text: string[] = [];
  const html: string[] = [];
  for (const p of parts) {
    if (p.kind === 'text') {
      text.push(p.content);
      if (!p.alternative && hasHtml) html.push(parser.textToHtml(p.content));
      continue;
    }
    if ((!p.alternative && hasText) || (p.root && !hasText)) {
      try {
        text.push(htmlToText(p.content, { limits: { maxDepth: 1000 } }));
      } catch {
        text.push(''); // HTML that cannot be converted leaves the text empty, as in mailparser
      }
    }
    html.push(p.content);
  }
  return {
    text: text.length ? text.join('\n') : undefined,
    html: html.length ? html.join('<br/>\n') : undefined,
  };
}

/** Headers a real message has at least one of; without any, the bytes are not a message. */
const MESSAGE_HEADERS = ['from', 'to', 'subject', 'date', 'message-id', 'received', 'return-path', 'sender'];

/**
 * Parses the stored message `rawKey`. `copy` is the same bytes when the caller still holds them
 * (small messages), which saves reading them back from the blob store.
 */
export async function parseMime(
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
  const parser = new StreamingMailParser({
    skipImageLinks: true,
    skipTextToHtml: true,
    maxHtmlLengthToParse: 5_000_000,
    // Our caps, so that a message over them fails with a reason we name (see capReason).
    maxChildNodes: PARSE_CAPS.parts,
    maxHeadSize: PARSE_CAPS.headerBytes,
  } as ConstructorParameters<typeof MailParser>[0]);
  let headerMap = new Map<string, unknown>();
  const attachments: ParsedMessage['attachments'] = [];
  const uploads: Promise<void>[] = [];
  /** Every blob this parse wrote or began: removed again when the parse fails. */
  const written: string[] = [];
  const bodies = {
    text: new BodyCollector(blobs, `${partsPrefix}/body.txt`, 'text/plain; charset=utf-8', '\n', written),
    html: new BodyCollector(
      blobs,
      `${partsPrefix}/body.html`,
      'text/html; charset=utf-8',
      '<br/>\n',
      written,
    ),
  };
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
    // Every body part comes as a stream (StreamingMailParser), so the final text event is empty.
    if (data.type === 'text') return;
    const content = data.content as Readable;
    // Heard from the first moment: a failing parse destroys it, maybe before the store reads it.
    content.on('error', () => {});
    contents.push(content);
    const body = parser.bodies.get(data.headers);
    if (body) {
      uploads.push(readBody(body, content).finally(() => data.release?.()));
      return;
    }
    const n = index++;
    const key = `${partsPrefix}/att-${n}`;
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
  /** Decodes a body part as mailparser would (format=flowed, charset, line ends) into its collector. */
  const readBody = async (part: BodyPart, content: Readable) => {
    const collector = bodies[part.kind];
    collector.begin(part);
    const charset = parser.charsetDecoder(part.charset);
    const steps: Transform[] = [
      ...(part.flowed ? [flowedDecoder(parser, part.delSp)] : []),
      ...(charset ? [charset] : []),
      textDecoder(),
    ];
    const sink = new Writable({
      objectMode: true,
      write(text: string, _enc, done) {
        collector.append(text).then(
          () => done(),
          (error: Error) => {
            if (!parseFailed) storeError ??= new StorageError(error);
            done(error);
          },
        );
      },
    });
    // A decoding error is the message's (the parse fails with it); a store error is noted above.
    await pipeline([content, ...steps, sink]).catch((error: Error) => {
      content.resume();
      if (!storeError) parser.destroy(error);
    });
  };

  const cleanUp = async () => {
    await Promise.allSettled(written.map((key) => blobs.delete(key)));
  };
  const abortBodies = (error: Error) => Promise.all([bodies.text.abort(error), bodies.html.abort(error)]);
  try {
    await pipeline(source, parser);
  } catch (error) {
    parseFailed = true;
    // A part cut short by the failure may never end: end its upload so none waits forever.
    for (const content of contents) if (!content.readableEnded) content.destroy(error as Error);
    await Promise.allSettled(uploads);
    await abortBodies(error as Error);
    await cleanUp();
    if (storeError) throw storeError;
    throw new UnparseableMessageError(
      capReason(error) ?? `The message could not be parsed: ${(error as Error).message}`,
    );
  }
  await Promise.allSettled(uploads);
  if (!storeError) {
    try {
      await Promise.all([bodies.text.finish(), bodies.html.finish()]);
    } catch (error) {
      storeError = new StorageError(error);
    }
  }
  if (storeError) {
    await abortBodies(storeError);
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
  // Held bodies combine as mailparser combines them; a streamed one is already stored whole.
  const streamed = bodies.text.spilled || bodies.html.spilled;
  const held = streamed
    ? {
        text: bodies.text.spilled ? undefined : joinHeld(bodies.text),
        html: bodies.html.spilled ? undefined : joinHeld(bodies.html),
      }
    : combineHeld(parser, [bodies.text, bodies.html]);
  const text = held.text;
  const html = held.html;
  let textKey: string | undefined = bodies.text.spilled ? bodies.text.key : undefined;
  let htmlKey: string | undefined = bodies.html.spilled ? bodies.html.key : undefined;
  try {
    if (text !== undefined) {
      textKey = bodies.text.key;
      written.push(textKey);
      await blobs.put(textKey, text, 'text/plain; charset=utf-8');
    }
    if (html !== undefined) {
      htmlKey = bodies.html.key;
      written.push(htmlKey);
      await blobs.put(htmlKey, html, 'text/html; charset=utf-8');
    }
  } catch (error) {
    await cleanUp();
    throw new StorageError(error);
  }
  const snippetSource = text ?? (bodies.text.spilled ? bodies.text.head : '');
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
        // A streamed body counts by its digest: holding it to hash it is what streaming avoids.
        text ?? bodies.text.digest(),
        html ?? bodies.html.digest(),
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
    snippet: snippetSource.slice(0, 2_000).replace(/\s+/g, ' ').trim().slice(0, 200),
    attachments: attachments.filter(Boolean),
  };
}
