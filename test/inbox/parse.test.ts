import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LocalBlobStore } from '#lib/adapters/local/blobs';
import {
  type ParsedMessage,
  parsedFields,
  parseStored,
  RECORD_LIMITS,
  UnparseableMessageError,
} from '#lib/inbox/parse';
import { type BlobStore, InvalidBlobError } from '#lib/ports/index';
import { bigAttachmentMail } from '#test/support/mail';

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
