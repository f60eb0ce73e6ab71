/** Request and response headers of the API beyond the standard ones; CORS lists are built from these. */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const IDEMPOTENT_REPLAYED_HEADER = 'idempotent-replayed';

/** Headers a browser client may send (CORS allow list). */
export const CORS_ALLOW_HEADERS = [
  'authorization',
  'content-type',
  'if-match',
  IDEMPOTENCY_KEY_HEADER,
] as const;
/** Response headers a browser client may read (CORS expose list). */
/** `etag`: a browser client sends it back as If-Match on PATCH. */
export const CORS_EXPOSE_HEADERS = ['etag', IDEMPOTENT_REPLAYED_HEADER] as const;
