/** The bulk-email function's routes: declarations only (see lib/http/routes.ts); ./app.ts binds them. */
import * as z from 'zod';
import { bulkSettings, clientFilter } from '#lib/bulk/model';
import * as s from '#lib/bulk/schemas';
import { emptyBody } from '#lib/http/registry';
import { defineRoutes } from '#lib/http/routes';

const tag = 'Bulk email';
const blocks = 'Block list';

/** A signed link token (payload and HMAC, base64url), longer than an id; checked by lib/bulk/links.ts. */
const linkTokenParams = z.object({
  token: z
    .string()
    .min(1)
    .max(2048, { error: 'is not a link of this service.' })
    .regex(/^[A-Za-z0-9_.-]+$/, { error: 'is not a link of this service.' }),
});

export const bulkRoutes = defineRoutes({
  'POST /bulk-emails/preview': {
    tag,
    access: 'user',
    summary: 'Who a selection reaches, and each client it skips with the reason.',
    description:
      'Reasons: `no-address`, `no-marketing-consent`, `blocked` (with `blockReason`), `duplicate-address` (an earlier recipient has it), `not-found` (an id that names no client). Sends nothing.',
    body: s.previewInput,
    response: s.previewView,
  },
  'POST /bulk-emails': {
    tag,
    access: 'user',
    status: 202,
    summary: 'Create a bulk email: answers at once with its id; it starts now or at `startAt`.',
    description:
      'Give the confirmed client ids (`recipients`) or a `selection`. Recipients are checked again (address, consent, block list, duplicates): the ones skipped are listed with their reason. Follow it with GET /bulk-emails/{id}. Send an `Idempotency-Key` header to make a retry safe: the same key and request answer the first job (header `idempotent-replayed: true`) instead of starting a second campaign.',
    body: s.createInput,
    response: s.createdView,
    errors: [409],
  },
  'GET /bulk-emails': {
    tag,
    access: 'user',
    summary: "The studio's bulk emails, newest first.",
    query: s.pageQuery,
    response: s.jobList,
  },
  'GET /bulk-emails/{id}': {
    tag,
    access: 'user',
    summary:
      'Progress: counts per state, delivered, waiting for the next cap period, rate and expected finish.',
    response: s.progressView,
  },
  'GET /bulk-emails/{id}/recipients': {
    tag,
    access: 'user',
    summary: 'Per-recipient results, a page at a time (optionally in one state).',
    description:
      "States: `queued` (waiting), `sending`, `sent`, `failed` (with the server's words in `error`), `skipped` (with `skipReason`), `cancelled`, `unknown` (a worker stopped mid-send; not re-sent).",
    query: s.recipientQuery,
    response: s.recipientPage,
  },
  'GET /bulk-emails/{id}/report': {
    tag,
    access: 'user',
    summary: 'Campaign results: delivered, bounced, complained, opened, clicked and unsubscribed.',
    response: s.reportView,
  },
  'POST /bulk-emails/{id}/pause': {
    tag,
    access: 'user',
    summary: 'Pause: nothing more is sent until resumed (emails being sent finish).',
    body: emptyBody,
    response: s.progressView,
  },
  'POST /bulk-emails/{id}/resume': {
    tag,
    access: 'user',
    summary: 'Resume a paused bulk email (also one that paused itself after failures).',
    body: emptyBody,
    response: s.progressView,
  },
  'POST /bulk-emails/{id}/cancel': {
    tag,
    access: 'user',
    summary: 'Cancel: every recipient not yet sent becomes `cancelled`.',
    body: emptyBody,
    response: s.progressView,
  },
  'GET /settings/bulk-email': {
    tag,
    access: 'admin',
    summary:
      'Bulk-email settings: caps per period, SMTP rate, pause threshold, unsubscribe, tracking, bypass.',
    response: bulkSettings,
  },
  'PUT /settings/bulk-email': {
    tag,
    access: 'admin',
    summary: 'Replace the bulk-email settings.',
    description:
      'Caps (e.g. `{ count: 500, periodMinutes: 1440 }`) are sliding windows shared by every bulk email of the studio and counted with single emails.',
    body: s.settingsInput,
    response: bulkSettings,
  },
  'GET /client-filters': {
    tag,
    access: 'user',
    summary: 'Saved client filters (field conditions) for selections.',
    response: s.filterList,
  },
  'PUT /client-filters/{id}': {
    tag,
    access: 'user',
    summary: 'Save a client filter under this id.',
    body: s.filterInput,
    response: clientFilter,
  },
  'DELETE /client-filters/{id}': {
    tag,
    access: 'user',
    summary: 'Delete a saved client filter.',
  },
  'GET /block-list': {
    tag: blocks,
    access: 'admin',
    summary: 'Blocked addresses (unsubscribed, bounced, complained, manual) with their history.',
    query: s.blockQuery,
    response: s.blockPage,
  },
  'POST /block-list': {
    tag: blocks,
    access: 'admin',
    summary: 'Block an address by hand.',
    body: s.blockInput,
    response: s.blockView,
  },
  'POST /block-list/{address}/reinstate': {
    tag: blocks,
    access: 'admin',
    summary: 'Take an address off the block list; who did it and why are kept.',
    params: z.object({ address: z.email() }),
    body: s.reinstateInput,
    response: s.blockView,
  },
  'POST /attachments': {
    tag,
    access: 'user',
    summary: 'Start an attachment upload: answers an id and a URL to PUT the file to (15 minutes).',
    description:
      'Use the id in `attachments` of POST /emails, POST /bulk-emails or a form letter (automatic attachments). At most 30 MB a file; the whole message must fit the provider (SES 40 MB, Gmail 25 MB).',
    body: s.uploadInput,
    response: s.uploadView,
  },
  'PUT /attachments/{id}/content': {
    tag,
    access: 'public',
    summary: "The local upload URL (npm start): the file's bytes; in AWS the upload URL is S3's.",
    description: 'The signed `token` from POST /attachments authorises the upload.',
    query: z.object({ token: z.string().min(1).describe('From the upload URL.') }),
    bodyTypes: ['application/octet-stream'],
    body: emptyBody,
    status: 204,
    errors: [404, 413],
  },
  'GET /t/o/{token}': {
    tag,
    access: 'public',
    params: linkTokenParams,
    summary:
      'Open pixel of a bulk email sent over SMTP with tracking on: records the open, answers a 1×1 GIF.',
    description: 'Signed token; anything else answers the same GIF and records nothing.',
  },
  'GET /t/c/{token}': {
    tag,
    access: 'public',
    params: linkTokenParams,
    summary:
      'Click redirect of a bulk email sent over SMTP with tracking on: records the click, redirects (302).',
    description: 'Only to the address signed into the token; a token not signed here answers 404.',
    errors: [404],
  },
  'GET /unsubscribe/{token}': {
    tag: blocks,
    access: 'public',
    params: linkTokenParams,
    summary: 'The unsubscribe link of a bulk email: a small page with a button that confirms.',
    description: 'HTML. The token is signed; a token not signed here answers 404.',
  },
  'POST /unsubscribe/{token}': {
    tag: blocks,
    access: 'public',
    params: linkTokenParams,
    summary: "Unsubscribe (the one-click POST of RFC 8058, or the page's button).",
    description: 'Any body (`List-Unsubscribe=One-Click`) is accepted and ignored. HTML.',
    body: emptyBody,
  },
});
