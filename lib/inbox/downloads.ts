/**
 * Download links for what a message keeps in the blob store: its raw copy (the exact bytes
 * received) and each attachment. A short-lived URL (presigned S3 GET in AWS), so large files never
 * pass through the API (whose answers are capped at 6 MB by Lambda).
 */
import type { Repositories } from '#lib/data/repositories';
import { NotFoundError } from '#lib/domain/errors';
import type { BlobStore } from '#lib/ports/index';

/** How long a download link works. */
export const DOWNLOAD_LINK_SECONDS = 300;

export interface DownloadLink {
  url: string;
  expiresAt: string;
  filename: string;
  contentType: string;
  size?: number;
}

/** A type S3 and browsers take as a header value; anything else is served as bytes. */
function safeContentType(type: string | undefined): string {
  return type && /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+$/.test(type.split(';')[0]?.trim() ?? '')
    ? type.split(';')[0]!.trim().toLowerCase()
    : 'application/octet-stream';
}

/** A message's decoded bodies as stored (`body.txt`, `body.html`), however large. */
export const BODY_PARTS = {
  text: { field: 'textKey', extension: 'txt', contentType: 'text/plain; charset=utf-8' },
  html: { field: 'htmlKey', extension: 'html', contentType: 'text/html; charset=utf-8' },
} as const;

/**
 * `part`: `raw` for the message as received, `text` or `html` for its decoded body, else the
 * attachment's index in `attachments`.
 */
export async function downloadLink(
  deps: { repos: Repositories; blobs: BlobStore; now?: () => Date },
  sid: string,
  messageId: string,
  part: 'raw' | keyof typeof BODY_PARTS | number,
): Promise<DownloadLink> {
  const message = await deps.repos.messages.require(sid, messageId);
  let file: { key: string; filename: string; contentType: string; size?: number };
  if (part === 'raw') {
    file = { key: message.rawKey, filename: `${messageId}.eml`, contentType: 'message/rfc822' };
  } else if (typeof part === 'string') {
    const body = BODY_PARTS[part];
    const key = message[body.field];
    if (!key) throw new NotFoundError(`${part} body of message ${messageId}`, part);
    file = { key, filename: `${messageId}.${body.extension}`, contentType: body.contentType };
  } else {
    const attachment = message.attachments[part];
    if (!attachment) throw new NotFoundError(`attachment of message ${messageId}`, String(part));
    file = {
      key: attachment.blobKey,
      filename: attachment.filename || `attachment-${part}`,
      contentType: safeContentType(attachment.contentType),
      size: attachment.size,
    };
  }
  const now = deps.now?.() ?? new Date();
  const url = await deps.blobs.downloadUrl(file.key, {
    expiresInSeconds: DOWNLOAD_LINK_SECONDS,
    filename: file.filename,
    contentType: file.contentType,
  });
  return {
    url,
    expiresAt: new Date(now.getTime() + DOWNLOAD_LINK_SECONDS * 1000).toISOString(),
    filename: file.filename,
    contentType: file.contentType,
    size: file.size,
  };
}
