/**
 * Parses a stored raw message (./mime.ts: mailparser's streaming MailParser; simpleParser would
 * buffer attachments whole): headers and text become metadata, bodies and each attachment are
 * streamed into the blob store. The raw bytes are read from the blob store, so parsing never
 * touches the mail server and can be replayed (reprocess).
 */
import type { BlobStore } from '#lib/ports/index';
import type { ParsedMessage } from './parsed.ts';

export * from './parsed.ts';

/**
 * Parses the stored message `rawKey`. `copy` is the same bytes when the caller still holds them
 * (small messages), which saves reading them back from the blob store. The MIME parser (about
 * 1 MB of mailparser, iconv-lite and libmime) is imported here, on the first message: a poll of
 * an empty box, and every other function, never load it.
 */
export async function parseStored(
  blobs: BlobStore,
  rawKey: string,
  partsPrefix: string,
  copy?: Buffer,
): Promise<ParsedMessage> {
  const { parseMime } = await import('./mime.ts');
  return parseMime(blobs, rawKey, partsPrefix, copy);
}
