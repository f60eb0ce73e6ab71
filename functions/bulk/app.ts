/**
 * The bulk-email function: its HTTP API (./routes.ts), the queue worker and the SES events
 * handler, over one set of bulk parts built from the shared Deps. The local composition uses the
 * in-process queue and timer; handler.ts passes the SQS queue and Scheduler timer in AWS.
 */
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { Deps } from '#lib/app/deps';
import { InProcessQueue } from '#lib/bulk/adapters/local-queue';
import { InProcessTimer } from '#lib/bulk/adapters/local-timer';
import { attachmentBlobKey, MAX_ATTACHMENT_BYTES, type UploadUrls } from '#lib/bulk/attachments';
import { BlockList } from '#lib/bulk/blocks';
import { handleSesEvent, type SesEvent } from '#lib/bulk/events';
import { SendLedger } from '#lib/bulk/ledger';
import { LinkSigner } from '#lib/bulk/links';
import { BulkMailer } from '#lib/bulk/mailer';
import { bulkSettings, parseBulkMessage } from '#lib/bulk/model';
import type { BulkQueue, JobTimer, ProviderQuota } from '#lib/bulk/ports';
import { BulkService } from '#lib/bulk/service';
import { readSettings } from '#lib/bulk/settings';
import { BulkStore } from '#lib/bulk/store';
import { confirmPage, donePage, invalidPage, unsubscribe } from '#lib/bulk/unsubscribe';
import { BulkWorker, type WorkerOptions } from '#lib/bulk/worker';
import { NotFoundError, ValidationError } from '#lib/domain/errors';
import { type ApiEvent, httpApi, lambdaHandler } from '#lib/http/api';
import { errorBody } from '#lib/http/errors';
import { IDEMPOTENT_REPLAYED_HEADER } from '#lib/http/headers';
import type { Handlers } from '#lib/http/routes';
import { MAX_PATH_ID_LENGTH, PATH_ID } from '#lib/http/routes';
import { mailHostPolicy } from '#lib/net/guard';
import { defaultIdempotency, fingerprint, IdempotencyStore, idempotencyKey } from '#lib/send/idempotency';
import { defaultRetry, type RetryPolicy } from '#lib/send/retry';
import {
  CredentialCache,
  defaultPolicy,
  SharedSmtpTransports,
  type TransportPolicy,
} from '#lib/send/transport';
import { bulkRoutes } from './routes.ts';

export interface BulkOptions {
  queue?: BulkQueue;
  timer?: JobTimer;
  quota?: ProviderQuota;
  /** The key links are signed with; locally one is made and kept in the table. */
  linkKey?: () => Promise<string>;
  /** Base URL of the public API (unsubscribe and tracking links). */
  publicUrl?: string;
  policy?: TransportPolicy;
  retry?: Partial<RetryPolicy>;
  worker?: Partial<WorkerOptions>;
  /** Presigned upload URLs (S3 in AWS); locally the bulk function's own upload route. */
  uploads?: UploadUrls;
  /** Local queue only: start consuming at once (npm start); tests start it themselves. */
  consume?: boolean;
}

/** A random key kept in the table, for the local composition (AWS passes a secret). */
function localLinkKey(d: Deps) {
  return async () => {
    const key = { PK: 'SYSTEM', SK: 'BULKLINKKEY' };
    const found = await d.repos.table.get<{ value: string }>(key);
    if (found) return found.value;
    const value = crypto.randomUUID() + crypto.randomUUID();
    await d.repos.table.put({ ...key, value }, { expression: 'attribute_not_exists(PK)' }).catch(() => {});
    return ((await d.repos.table.get<{ value: string }>(key)) ?? { value }).value;
  };
}

export function bulkParts(d: Deps, options: BulkOptions = {}) {
  const table = d.repos.table;
  const store = new BulkStore(table);
  const ledger = new SendLedger(table);
  const blocks = new BlockList(table);
  const links = new LinkSigner(
    options.linkKey ?? localLinkKey(d),
    options.publicUrl ?? 'http://127.0.0.1:3000',
  );
  // Named by the deployment, or else the address each request came in at (see POST /bulk-emails).
  const publicUrl = options.publicUrl;
  let queue: BulkQueue;
  const local = options.queue
    ? undefined
    : new InProcessQueue({}, (error) =>
        d.logger.error('bulk worker failed', { errorMessage: String(error) }),
      );
  queue = options.queue ?? (local as InProcessQueue);
  const timer = options.timer ?? new InProcessTimer(() => queue, d.now);
  const policy = options.policy ?? defaultPolicy;
  const mailer = new BulkMailer(
    { ...d, links },
    {
      policy: policy.mailHosts ? policy : { ...policy, mailHosts: mailHostPolicy(d.config) },
      credentials: new CredentialCache(d.secrets),
      retry: { ...defaultRetry, ...options.retry },
    },
    new SharedSmtpTransports((o) => d.smtp(o)),
  );
  const worker = new BulkWorker(
    {
      store,
      ledger,
      blocks,
      mailer,
      repos: d.repos,
      blobs: d.blobs,
      queue,
      timer,
      ...(options.quota ? { quota: options.quota } : {}),
      settings: (sid) => readSettings(table, sid),
      logger: d.logger,
      now: d.now,
    },
    options.worker,
  );
  const service = new BulkService({
    repos: d.repos,
    store,
    blocks,
    queue,
    timer,
    blobs: d.blobs,
    now: d.now,
  });
  if (local && options.consume) local.consume((m) => worker.handle(m));
  if (options.consume && timer instanceof InProcessTimer) timer.start();
  const uploads: UploadUrls = options.uploads ?? {
    // The local twin of a presigned PUT: the bulk function's own route with a signed, expiring token.
    uploadUrl: async (key, _contentType, expiresIn, baseUrl = links.baseUrl) => {
      const [, sid = '', id = ''] = key.split('/');
      const token = await links.sign({
        s: sid,
        a: id,
        p: 'f',
        e: Math.floor(d.now().getTime() / 1000) + expiresIn,
      });
      return `${baseUrl}/attachments/${encodeURIComponent(id)}/content?token=${token}`;
    },
  };
  return {
    store,
    ledger,
    blocks,
    links,
    queue,
    timer,
    worker,
    service,
    localQueue: local,
    publicUrl,
    uploads,
  };
}

export type BulkParts = ReturnType<typeof bulkParts>;

export function bulkHandlers(d: Deps, p: BulkParts): Handlers<typeof bulkRoutes> {
  const { service, blocks } = p;
  // Creating a job can take seconds for a large one, so a claim is "in progress" for 5 minutes.
  const keys = new IdempotencyStore(d.repos.table, { ...defaultIdempotency, staleAfterMs: 5 * 60_000 });
  const html = (status: number, body: string) => ({
    status,
    body,
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
  });
  return {
    'POST /bulk-emails/preview': async ({ caller, body }) => ({
      status: 200,
      body: await service.preview(caller.studioId, body.selection),
    }),
    'POST /bulk-emails': async (req) => {
      const { caller, body, headers } = req;
      // Links point where this request came in, unless the deployment names its public URL.
      const scheme = d.config.adapters === 'local' ? 'http' : 'https';
      const publicUrl = p.publicUrl ?? (headers.host ? `${scheme}://${headers.host}` : undefined);
      const create = async () => {
        const { job, skipped } = await service.create(caller.studioId, caller, body, publicUrl);
        return {
          status: 202,
          body: { id: job.id, status: job.status, total: job.total, skipped, startAt: job.startAt },
        };
      };
      // With an Idempotency-Key a retried request answers the first job instead of starting a second campaign.
      const key = idempotencyKey(headers);
      if (!key) return create();
      const sid = caller.studioId;
      const print = fingerprint({ route: req.routeKey, user: caller.userId, body });
      const claim = await keys.claim(sid, 'bulk', key, print, d.now());
      if (claim.state === 'done')
        return { ...claim.outcome, headers: { [IDEMPOTENT_REPLAYED_HEADER]: 'true' } };
      let result: { status: number; body: unknown };
      try {
        result = await create();
      } catch (error) {
        await keys.release(sid, 'bulk', key).catch(() => {});
        throw error;
      }
      await keys
        .complete(sid, 'bulk', key, result, d.now())
        .catch((error: unknown) =>
          d.logger.error('idempotency outcome not stored', { errorMessage: String(error) }),
        );
      return result;
    },
    'GET /bulk-emails': async ({ caller, query }) => ({
      status: 200,
      body: await p.store.listJobs(caller.studioId, query.limit, query.cursor),
    }),
    'GET /bulk-emails/{id}': async ({ caller, params }) => ({
      status: 200,
      body: await service.progress(caller.studioId, params.id ?? ''),
    }),
    'GET /bulk-emails/{id}/recipients': async ({ caller, params, query }) => {
      await p.store.requireJob(caller.studioId, params.id ?? '');
      const page = await p.store.recipients(
        caller.studioId,
        params.id ?? '',
        query.limit,
        query.cursor,
        query.state,
      );
      return {
        status: 200,
        body: { ...page, items: page.items.map(({ claim: _c, claimedAt: _t, ...r }) => r) },
      };
    },
    'GET /bulk-emails/{id}/report': async ({ caller, params }) => ({
      status: 200,
      body: await service.report(caller.studioId, params.id ?? ''),
    }),
    'POST /bulk-emails/{id}/pause': async ({ caller, params }) => ({
      status: 200,
      body: await service.pause(caller.studioId, params.id ?? '', caller.userId),
    }),
    'POST /bulk-emails/{id}/resume': async ({ caller, params }) => ({
      status: 200,
      body: await service.resume(caller.studioId, params.id ?? ''),
    }),
    'POST /bulk-emails/{id}/cancel': async ({ caller, params }) => ({
      status: 200,
      body: await service.cancel(caller.studioId, params.id ?? ''),
    }),
    'GET /settings/bulk-email': async ({ caller }) => ({
      status: 200,
      body: await readSettings(d.repos.table, caller.studioId),
    }),
    'PUT /settings/bulk-email': async ({ caller, body }) => {
      const value = bulkSettings.parse(body);
      await service.settingsRepo.upsert(caller.studioId, 'bulk', value);
      return { status: 200, body: value };
    },
    'GET /client-filters': async ({ caller }) => ({
      status: 200,
      body: {
        items: (await service.filters.list(caller.studioId)).map(({ id, name, conditions }) => ({
          id,
          name,
          conditions,
        })),
      },
    }),
    'PUT /client-filters/{id}': async ({ caller, params, body }) => {
      const value = { id: params.id ?? '', ...body };
      await service.filters.upsert(caller.studioId, value.id, value);
      return { status: 200, body: value };
    },
    'DELETE /client-filters/{id}': async ({ caller, params }) => {
      await service.filters.delete(caller.studioId, params.id ?? '');
      return { status: 204 };
    },
    'GET /block-list': async ({ caller, query }) => ({
      status: 200,
      body: await blocks.list(caller.studioId, query.limit, query.cursor, query.all === 'true'),
    }),
    'POST /block-list': async ({ caller, body }) => {
      await blocks.block(caller.studioId, {
        address: body.address,
        reason: 'manual',
        at: d.now().toISOString(),
        detail: body.detail ?? `Blocked by ${caller.userId}.`,
      });
      return { status: 200, body: await blocks.get(caller.studioId, body.address) };
    },
    'POST /block-list/{address}/reinstate': async ({ caller, params, body }) => ({
      status: 200,
      body: await blocks.reinstate(
        caller.studioId,
        params.address ?? '',
        caller.userId,
        body.reason,
        d.now().toISOString(),
      ),
    }),
    'POST /attachments': async ({ caller, body, headers }) => {
      if (body.size > MAX_ATTACHMENT_BYTES)
        throw ValidationError.field(
          'size',
          `is more than ${MAX_ATTACHMENT_BYTES / 1024 / 1024} MB; share a file this large as a link.`,
        );
      const id = crypto.randomUUID();
      const expiresIn = 15 * 60;
      const base = p.publicUrl ?? (headers.host ? `http://${headers.host}` : undefined);
      const uploadUrl = await p.uploads.uploadUrl(
        attachmentBlobKey(caller.studioId, id),
        body.contentType,
        expiresIn,
        base,
      );
      return {
        status: 200,
        body: {
          id,
          filename: body.filename,
          contentType: body.contentType,
          uploadUrl,
          expiresAt: new Date(d.now().getTime() + expiresIn * 1000).toISOString(),
        },
      };
    },
    // Handled before the JSON edge (bulkFunction): the body is a file.
    'PUT /attachments/{id}/content': async () => ({ status: 415 }),
    // Handled before the JSON edge (bulkFunction): the answer is an image.
    'GET /t/o/{token}': async () => ({ status: 415 }),
    'GET /t/c/{token}': async ({ params }) => {
      const link = await p.links.verify(params.token ?? '');
      if (link?.p !== 'c' || !link.u || !/^https?:\/\//.test(link.u)) return html(404, invalidPage());
      if (link.j && link.r)
        await p.store.addEvent(link.s, link.j, link.r, 'clicked', d.now().toISOString(), link.u);
      return {
        status: 302,
        body: '',
        headers: { location: link.u, 'content-type': 'text/plain', 'cache-control': 'no-store' },
      };
    },
    'GET /unsubscribe/{token}': async ({ params }) => {
      const link = await p.links.verify(params.token ?? '');
      if (link?.p !== 'u') return html(404, invalidPage());
      return html(200, confirmPage(link.a));
    },
    'POST /unsubscribe/{token}': async ({ params }) => {
      const done = await unsubscribe(
        { links: p.links, blocks, store: p.store, now: d.now },
        params.token ?? '',
      );
      if (!done) return html(404, invalidPage());
      return html(200, donePage(done.address));
    },
  };
}

/** A transparent 1×1 GIF (base64). */
const PIXEL = 'R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7';
const PIXEL_ROUTE = 'GET /t/o/{token}';

/** The open pixel: records the open of a signed token; always the same GIF, so nothing is revealed. */
async function pixel(d: Deps, p: BulkParts, event: ApiEvent) {
  const link = await p.links.verify(event.pathParameters?.token ?? '');
  if (link?.p === 'o' && link.j && link.r)
    await p.store
      .addEvent(link.s, link.j, link.r, 'opened', d.now().toISOString())
      .catch((error: unknown) => d.logger.warn('open not recorded', { errorMessage: String(error) }));
  return {
    statusCode: 200,
    headers: { 'content-type': 'image/gif', 'cache-control': 'no-store' },
    body: PIXEL,
    isBase64Encoded: true,
  };
}

/** The unsubscribe POST carries a form body (RFC 8058), not JSON: it is dropped before the JSON edge. */
const FORM_ROUTES = new Set(['POST /unsubscribe/{token}']);

const UPLOAD_ROUTE = 'PUT /attachments/{id}/content';

/** The local upload route: a signed, unexpired token for this id, then the bytes into the blob store. */
async function upload(d: Deps, p: BulkParts, event: ApiEvent) {
  const token = event.queryStringParameters?.token ?? '';
  const link = await p.links.verify(token);
  const id = event.pathParameters?.id ?? '';
  const answer = (statusCode: number, message?: string) => ({
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: message
      ? JSON.stringify({ error: { code: statusCode === 413 ? 'too_large' : 'not_found', message } })
      : '',
  });
  // The edge is bypassed (the body is a file), so the path id gets the edge's check here.
  if (id.length > MAX_PATH_ID_LENGTH || !PATH_ID.test(id)) {
    const { status, body } = errorBody(
      ValidationError.field(
        'id',
        `is not an id this API gives out (at most ${MAX_PATH_ID_LENGTH} characters).`,
      ),
    );
    return {
      statusCode: status,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(body),
    };
  }
  if (link?.p !== 'f' || link.a !== id || (link.e ?? 0) < d.now().getTime() / 1000)
    return answer(
      404,
      'This upload URL is not valid (or has expired); ask for a new one with POST /attachments.',
    );
  const bytes = event.body
    ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8')
    : Buffer.alloc(0);
  if (bytes.length > MAX_ATTACHMENT_BYTES) return answer(413, 'The file is larger than 30 MB.');
  await d.blobs.put(attachmentBlobKey(link.s, id), bytes, 'application/octet-stream');
  return answer(204);
}

/** The bulk function's HTTP handler over `d` (the composition root calls this). */
export function bulkFunction(d: Deps, p: BulkParts) {
  const api = httpApi(bulkRoutes, bulkHandlers(d, p), {
    logger: d.logger,
    studioClaim: d.config.studioClaim,
    cursorKey: d.config.cursorKey,
  });
  return (event: ApiEvent, context: Context) => {
    // The upload's body is a file, the one-click POST's a form: neither goes through the JSON edge.
    if (event.routeKey === UPLOAD_ROUTE) return upload(d, p, event);
    if (event.routeKey === PIXEL_ROUTE) return pixel(d, p, event);
    return api(
      FORM_ROUTES.has(event.routeKey) ? { ...event, body: undefined, isBase64Encoded: false } : event,
      context,
    );
  };
}

/** The SQS-triggered worker: a failed message is reported alone, so SQS retries only that one. */
export function bulkWorkerFunction(d: Deps, p: BulkParts) {
  return lambdaHandler(d.logger, async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const failures: { itemIdentifier: string }[] = [];
    for (const record of event.Records) {
      try {
        await p.worker.handle(parseBulkMessage(JSON.parse(record.body)));
      } catch (error) {
        d.logger.error('bulk message failed', { messageId: record.messageId, errorMessage: String(error) });
        failures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures: failures };
  });
}

/** SES events (configuration set → EventBridge → this function). */
export function bulkEventsFunction(d: Deps, p: BulkParts) {
  return lambdaHandler(d.logger, async (event: { detail?: SesEvent }) => {
    if (!event.detail) throw new NotFoundError('SES event detail', 'detail');
    await handleSesEvent(
      { store: p.store, blocks: p.blocks, messages: d.repos.messages, now: d.now, logger: d.logger },
      event.detail,
    );
  });
}
