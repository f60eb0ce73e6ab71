import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LocalBlobStore } from '#lib/adapters/local/blobs';
import {
  BODY_STREAM_BYTES,
  PARSE_CAPS,
  type ParsedMessage,
  parsedFields,
  parseStored,
  RECORD_LIMITS,
  UnparseableMessageError,
} from '#lib/inbox/parse';
import { type BlobStore, InvalidBlobError } from '#lib/ports/index';
import { bigAttachmentMail, bigTextMail, rawMail } from '#test/support/mail';

const store = (): BlobStore => new LocalBlobStore(mkdtempSync(join(tmpdir(), 'studio-mail-parse-')));

/** A blob store whose writes under `parts/` fail, as S3 might. */
function failingParts(blobs: BlobStore): BlobStore {
  return {
    put: async (key, body, type) => {
      if (key.startsWith('parts/')) {
        if (body instanceof Readable) body.resume();
        throw new Error('S3 is unavailable');
      }
      return blobs.put(key, body, type);
    },
    get: (k) => blobs.get(k),
    getBuffer: (k) => blobs.getBuffer(k),
    exists: (k) => blobs.exists(k),
    delete: (k) => blobs.delete(k),
    downloadUrl: (k, o) => blobs.downloadUrl(k, o),
  };
}

describe('the local blob store', () => {
  it('reports, and does not crash on, a stream destroyed while it waits for its directory', async () => {
    // Prepare
    const blobs = store();
    const body = new Readable({ read() {} });
    // Act
    const put = blobs.put('parts/a/b/c/att-0', body).catch((e: unknown) => e);
    body.destroy(new Error('the parser gave up'));
    const error = await put;
    // Assess
    expect((error as Error).message).toBe('the parser gave up');
    expect(await blobs.exists('parts/a/b/c/att-0')).toBe(false);
  });

  it('refuses a Content-Type that S3 would refuse as a header', async () => {
    // Prepare
    const blobs = store();
    // Act
    const error = await blobs.put('parts/x', 'data', 'image/jpeg山').catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(InvalidBlobError);
    expect(await blobs.exists('parts/x')).toBe(false);
  });
});

describe('parseStored', () => {
  it('calls a stored message over 1 MB whose parse fails early unparseable, not a storage failure', async () => {
    // Prepare
    const blobs = store();
    const raw = Buffer.concat([
      Buffer.from('From: a@client.test\r\nSubject: huge\r\nX-Big: '),
      Buffer.alloc(1_500_000, 'h'),
      Buffer.from('\r\n\r\nbody\r\n'),
    ]);
    await blobs.put('raw/big.eml', raw);
    // Act
    const error = await parseStored(blobs, 'raw/big.eml', 'parts/s/big').catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(UnparseableMessageError);
    expect((error as Error).message).toMatch(/cap: header bytes/);
  });

  it('stores a Content-Type S3 refuses as application/octet-stream', async () => {
    // Prepare
    const blobs = store();
    const raw = Buffer.from(
      [
        'From: a@client.test',
        'Subject: odd types',
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: image/jpeg山',
        'Content-Disposition: attachment; filename="a.jpg"',
        '',
        'jpeg',
        '--b--',
        '',
      ].join('\r\n'),
    );
    // Act
    const parsed = await parseStored(blobs, 'raw/odd.eml', 'parts/s/odd', raw);
    // Assess
    expect(parsed.attachments).toMatchObject([
      { contentType: 'application/octet-stream', filename: 'a.jpg' },
    ]);
  });

  it('fails with the blob store error, not as unparseable, when an attachment cannot be stored', async () => {
    // Prepare
    const { raw } = bigAttachmentMail(1);
    const blobs = failingParts(store());
    // Act
    const error = await parseStored(blobs, 'raw/x.eml', 'parts/s/m1', raw).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(UnparseableMessageError);
    expect((error as Error).message).toBe('S3 is unavailable');
  });

  it('fails with the blob store error when the stored raw copy cannot be read to the end', async () => {
    // Prepare
    const blobs = store();
    const { raw } = bigAttachmentMail(1);
    const broken: BlobStore = {
      ...failingParts(blobs),
      put: (k, b, t) => blobs.put(k, b, t),
      get: async () =>
        Readable.from(
          (async function* () {
            yield raw.subarray(0, 200_000);
            throw new Error('connection reset reading the raw copy');
          })(),
        ),
    };
    // Act
    const error = await parseStored(broken, 'raw/x.eml', 'parts/s/m2').catch((e: unknown) => e);
    // Assess
    expect(error).not.toBeInstanceOf(UnparseableMessageError);
    expect((error as Error).message).toBe('connection reset reading the raw copy');
  });

  it('lists a text part with a filename as an attachment, not as part of the body', async () => {
    // Prepare
    const blobs = store();
    const raw = rawMail({
      contentType: 'multipart/mixed; boundary="b"',
      body: [
        '--b',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'The body.',
        '--b',
        'Content-Type: text/plain; name="notes.txt"',
        '',
        'Notes by name.',
        '--b',
        'Content-Type: text/html',
        'Content-Disposition: inline; filename="page.html"',
        '',
        '<p>A page by filename.</p>',
        '--b--',
        '',
      ].join('\r\n'),
    });
    // Act
    const parsed = await parseStored(blobs, 'raw/named.eml', 'parts/s/named', raw);
    // Assess
    expect(parsed.attachments).toMatchObject([
      { filename: 'notes.txt', contentType: 'text/plain' },
      { filename: 'page.html', contentType: 'text/html' },
    ]);
    expect((await blobs.getBuffer(parsed.textKey ?? '')).toString()).toBe('The body.');
    expect(parsed.htmlKey).toBeUndefined();
    expect((await blobs.getBuffer(parsed.attachments[0]?.blobKey ?? '')).toString()).toBe('Notes by name.');
  });

  it('streams a text body over the threshold into the blob store and keeps it whole', async () => {
    // Prepare
    const blobs = store();
    const { raw, sha256, size } = bigTextMail(3);
    // Act
    const parsed = await parseStored(blobs, 'raw/long.eml', 'parts/s/long', raw);
    // Assess
    expect(size).toBeGreaterThan(BODY_STREAM_BYTES);
    const body = await blobs.getBuffer(parsed.textKey ?? '');
    expect(body.length).toBe(size);
    expect(createHash('sha256').update(body).digest('hex')).toBe(sha256);
    expect(parsed.snippet).toMatch(/^line 0 of a long letter/);
    expect(parsed.contentHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('removes a streamed body already written when its storage fails, and names the storage failure', async () => {
    // Prepare
    const blobs = store();
    const { raw } = bigTextMail(3);
    const failing: BlobStore = {
      ...failingParts(blobs),
      put: async (key, body, type) => {
        if (key.endsWith('body.txt') && body instanceof Readable) {
          // Takes part of the body, then fails as S3 might mid-upload.
          await blobs.put(key, Readable.from([Buffer.from('partial')]), type);
          body.resume();
          throw new Error('S3 is unavailable');
        }
        return blobs.put(key, body, type);
      },
    };
    // Act
    const error = await parseStored(failing, 'raw/long.eml', 'parts/s/long2', raw).catch((e: unknown) => e);
    // Assess
    expect(error).not.toBeInstanceOf(UnparseableMessageError);
    expect((error as Error).message).toBe('S3 is unavailable');
    expect(await blobs.exists('parts/s/long2/body.txt')).toBe(false);
  });

  it('parses nesting up to the depth cap and quarantines one level more with the cap named', async () => {
    // Prepare
    const nested = (levels: number) => {
      let body = 'Content-Type: text/plain\r\n\r\ninnermost';
      for (let d = 0; d < levels; d++)
        body = `Content-Type: multipart/mixed; boundary="n${d}"\r\n\r\n--n${d}\r\n${body}\r\n--n${d}--`;
      return Buffer.from(`From: a@client.test\r\nSubject: deep\r\n${body}\r\n`);
    };
    const blobs = store();
    // Act
    const atCap = await parseStored(blobs, 'raw/d1.eml', 'parts/s/d1', nested(PARSE_CAPS.depth));
    const over = await parseStored(blobs, 'raw/d2.eml', 'parts/s/d2', nested(PARSE_CAPS.depth + 1)).catch(
      (e: unknown) => e,
    );
    // Assess
    expect((await blobs.getBuffer(atCap.textKey ?? '')).toString()).toBe('innermost');
    expect(over).toBeInstanceOf(UnparseableMessageError);
    expect((over as Error).message).toContain('(cap: nesting depth)');
    expect(await blobs.exists('parts/s/d2/body.txt')).toBe(false);
  });

  it('calls bytes without any message header unparseable', async () => {
    const error = await parseStored(
      store(),
      'raw/x.eml',
      'parts/s/m3',
      Buffer.from('\x00\x01 junk\r\n'),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnparseableMessageError);
  });
});

describe('parsedFields', () => {
  it('keeps the record small however long the headers are; the raw copy keeps everything', () => {
    // Prepare
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ address: `p${i}@client.test` }));
    const refs = Array.from({ length: 40 }, (_, i) => `<r${i}@x>`);
    const parsed: ParsedMessage = {
      contentHash: 'h',
      headers: () => undefined,
      references: refs,
      replyTo: [],
      to: many(150),
      cc: many(120),
      subject: 's'.repeat(5_000),
      snippet: '',
      attachments: [],
    };
    // Act
    const fields = parsedFields(parsed, '2026-06-01T00:00:00.000Z');
    // Assess
    expect(fields.to).toHaveLength(RECORD_LIMITS.addresses);
    expect(fields.cc).toHaveLength(RECORD_LIMITS.addresses);
    expect(fields.subject).toHaveLength(RECORD_LIMITS.subject);
    expect(fields.references).toEqual([refs[0], ...refs.slice(-(RECORD_LIMITS.references - 1))]);
  });
});
