/**
 * Attachments of outgoing email (single and bulk): uploaded first (a presigned S3 PUT in AWS, a
 * local upload route under `npm start`), stored under the studio, then named by id in a send or
 * on a form letter. The whole message must fit the provider's limit, checked before sending.
 */
import type { Diagnosis } from '#lib/send/diagnose';

export const attachmentBlobKey = (sid: string, id: string) => `attachments/${sid}/${id}`;

/** The largest message a provider takes: SES 40 MB, Gmail 25 MB; other SMTP servers: 25 MB too. */
export const PROVIDER_LIMITS = {
  ses: 40 * 1024 * 1024,
  gmail: 25 * 1024 * 1024,
  smtp: 25 * 1024 * 1024,
} as const;

/** One uploaded file at most (before base64, which adds a third). */
export const MAX_ATTACHMENT_BYTES = 30 * 1024 * 1024;

export function providerLimitBytes(method: 'ses' | 'smtp' | 'gmail', server?: string): number {
  if (method === 'smtp' && server && /(^|\.)gmail\.com$|(^|\.)googlemail\.com$/i.test(server))
    return PROVIDER_LIMITS.gmail;
  return PROVIDER_LIMITS[method];
}

/** A diagnosis when the MIME message (attachments encoded) is larger than the provider takes. */
export function checkSize(
  bytes: number,
  limit: number,
  method: 'ses' | 'smtp' | 'gmail',
): Omit<Diagnosis, 'settings'> | undefined {
  if (bytes <= limit) return undefined;
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
  return {
    field: 'attachments',
    kind: 'message',
    problem: `The email is ${mb(bytes)} with its attachments encoded; ${method === 'ses' ? 'Amazon SES' : method === 'gmail' ? 'Gmail' : 'the mail server'} takes at most ${mb(limit)}.`,
    advice: 'Attach fewer or smaller files, or share large ones as a download link instead.',
    retryable: false,
  };
}

/** A short-lived URL the caller PUTs a file's bytes to (a presigned S3 PUT in AWS). */
export interface UploadUrls {
  /** `baseUrl`: where the request came in (the local route); S3 ignores it. */
  uploadUrl(key: string, contentType: string, expiresInSeconds: number, baseUrl?: string): Promise<string>;
}

export interface AttachmentRef {
  id: string;
  filename: string;
  contentType: string;
}

/** What an uploaded attachment is stored as; the id is what sends and form letters name. */
export async function readAttachments(
  blobs: { getBuffer(key: string): Promise<Buffer>; exists(key: string): Promise<boolean> },
  sid: string,
  refs: AttachmentRef[],
  field: string,
): Promise<{ filename: string; contentType: string; content: Buffer; blobKey: string }[]> {
  return Promise.all(
    refs.map(async (a, i) => {
      const blobKey = attachmentBlobKey(sid, a.id);
      if (!(await blobs.exists(blobKey)))
        throw new AttachmentMissingError(
          `${field}[${i}]`,
          `names no uploaded file ("${a.id}"); upload it first (POST /attachments).`,
        );
      return {
        filename: a.filename,
        contentType: a.contentType,
        content: await blobs.getBuffer(blobKey),
        blobKey,
      };
    }),
  );
}

export class AttachmentMissingError extends Error {
  override readonly name = 'AttachmentMissingError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}
