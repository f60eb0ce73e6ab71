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
