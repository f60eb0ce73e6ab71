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
import type { BlobStore } from '#lib/ports/index';
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

describe('parseStored', () => {
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
