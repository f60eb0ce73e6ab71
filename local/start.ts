/**
 * `npm start`: the whole of studio-mail on this machine, on loopback only and embedded defaults.
 * DynamoDB Local (data under .local/), the local SES with its viewer, an HTTP server that turns
 * requests into API Gateway events for the same Lambda handlers, and the in-process scheduler
 * and event bus that drive inbox polls and notifications.
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { composeFunctions } from '#functions/compose';
import { apiTables } from '#functions/routes';
import { LOCAL_DOWNLOAD_PATH, LocalBlobStore, serveLocalDownload } from '#lib/adapters/local/blobs';
import { InProcessEventBus } from '#lib/adapters/local/events';
import { InProcessInvoker } from '#lib/adapters/local/invoker';
import { InProcessScheduler } from '#lib/adapters/local/scheduler';
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import { AppError, NoRouteError, ValidationError } from '#lib/domain/errors';
import { ensureTable, startDynamoLocal } from './dynamodb.ts';
import {
  compileRoutes,
  errorResponse,
  isLoopbackHost,
  type LambdaHandler,
  lambdaContext,
  match,
  send,
  toEvent,
} from './http.ts';
import { startInboundSmtp } from './inbound-smtp.ts';
import { portOr } from './ports.ts';
import { type Invoke, pollTarget, restoreSchedules, subscribeNotify } from './schedules.ts';
import { startSesLocal } from './ses.ts';

const home = resolve(process.env.STUDIO_MAIL_HOME ?? '.local');
mkdirSync(`${home}/dynamodb`, { recursive: true });

const log = (line: string) => console.log(`[studio-mail] ${line}`);

log(`data in ${home} (set STUDIO_MAIL_HOME to keep it elsewhere)`);
log(`starting DynamoDB Local (data in ${home}/dynamodb) …`);
const dynamo = await startDynamoLocal({ port: await portOr(8100), dbPath: `${home}/dynamodb` });
const ses = await startSesLocal(await portOr(8105));

Object.assign(process.env, {
  STUDIO_MAIL_ADAPTERS: 'local',
  TABLE_NAME: process.env.TABLE_NAME ?? 'studio-mail',
  DYNAMODB_ENDPOINT: dynamo.endpoint,
  SES_ENDPOINT: ses.endpoint,
  BLOB_DIR: `${home}/blobs`,
  SECRET_DIR: `${home}/secrets`,
  POWERTOOLS_SERVICE_NAME: 'studio-mail-local',
  POWERTOOLS_DEV: 'true',
});
const config = loadConfig();

const scheduler = new InProcessScheduler((error, def) =>
  log(`schedule ${def.name} failed: ${error instanceof Error ? error.message : String(error)}`),
);
const bus = new InProcessEventBus((error, event) =>
  log(`${event.detailType} delivery failed: ${error instanceof Error ? error.message : String(error)}`),
);
const invoker = new InProcessInvoker((error, payload) =>
  log(`poll run ${String(payload.runId)} failed: ${error instanceof Error ? error.message : String(error)}`),
);
const apiPort = await portOr(Number(process.env.PORT ?? 3000));
const api = `http://127.0.0.1:${apiPort}`;
// Download links (the twin of presigned S3 URLs) point at this server.
const blobs = new LocalBlobStore(config.blobDir, { baseUrl: api });
const d = buildDeps(config, {
  scheduler,
  events: bus,
  invoker,
  blobs,
  healthChecks: {
    ses: async () => {
      const res = await fetch(`${ses.endpoint}/health-check`);
      if (!res.ok) throw new Error(`local SES answered ${res.status}`);
    },
    scheduler: async () => {},
    eventBus: async () => {},
  },
});
await ensureTable(d.repos.table.doc as never, config.tableName);

// Every function over the same local dependencies, through the one composition root.
const composed = composeFunctions(d);
const functions: Record<string, { handler: LambdaHandler }> = {
  settings: { handler: composed.settings },
  send: { handler: composed.send },
  bulk: { handler: composed.bulk as unknown as LambdaHandler },
  // Also takes scheduled events, so its type is wider than an API handler's.
  'inbox-poll': { handler: composed['inbox-poll'] as unknown as LambdaHandler },
};
const notify = { handler: composed.notify as unknown as Invoke };
const routes = compileRoutes(apiTables);

// As in AWS: each schedule's input (scheduled time substituted) invokes inbox-poll as a ScheduledPoll,
// and the rule hands every poll outcome to notify as an EventBridge event.
const restored = await restoreSchedules(d, scheduler);
scheduler.start(pollTarget(functions['inbox-poll']?.handler as unknown as Invoke));
subscribeNotify(bus, notify.handler, config.region);
// As the Lambda invokes itself in AWS: a poll started by the API, a run carried on.
const poller = functions['inbox-poll']?.handler as unknown as Invoke;
invoker.register((payload) => poller(payload, lambdaContext('inbox-poll', 300_000)));

class MethodNotAllowedError extends AppError {
  override readonly name = 'MethodNotAllowedError';
  override readonly status = 405;
  override readonly code = 'method_not_allowed';
}

class LocalRunnerError extends AppError {
  override readonly name = 'LocalRunnerError';
  override readonly code = 'local_runner';
  constructor(
    override readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const server = createServer(async (req, res) => {
  if (!isLoopbackHost(req.headers.host)) {
    return send(res, {
      statusCode: 421,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        error: { code: 'misdirected', message: 'The local API answers only on 127.0.0.1 or localhost.' },
      }),
    });
  }
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'GET' && url.pathname === LOCAL_DOWNLOAD_PATH)
    return serveLocalDownload(blobs, req, res);
  const found = match(routes, req.method ?? 'GET', url.pathname);
  if (!('route' in found) || !found.route) {
    const error =
      'badPath' in found
        ? ValidationError.field('(path)', `${url.pathname} has a malformed %-escape.`)
        : found.pathMatched
          ? new MethodNotAllowedError(`${req.method} is not allowed on ${url.pathname}.`)
          : new NoRouteError(`No route ${url.pathname}.`);
    return send(res, errorResponse(error));
  }
  try {
    const event = await toEvent(req, found.route, found.params, config.studioClaim);
    const fn = functions[found.route.fn];
    if (!fn) throw new Error(`function ${found.route.fn} is not loaded`);
    send(res, await fn.handler(event, lambdaContext(found.route.fn, 29_000)));
  } catch (error) {
    // Only the runner's own failures reach here (e.g. a body over 10 MB); handlers answer their own errors.
    const status = (error as { status?: number }).status;
    send(res, errorResponse(status ? new LocalRunnerError(status, (error as Error).message) : error));
  }
});
await new Promise<void>((r) => server.listen(apiPort, '127.0.0.1', r));

// Push intake: mail for @<receiving domain> is stored and handed to the inbox-poll function as
// SES receiving would through its queue.
const receivingDomain = config.receivingDomain ?? 'inbound.studio-mail.localhost';
const inbound = await startInboundSmtp({
  domain: receivingDomain,
  blobs,
  port: await portOr(Number(process.env.INBOUND_SMTP_PORT ?? 2525)),
  handler: (event) =>
    poller(event, lambdaContext('inbox-poll', 300_000)) as Promise<{
      batchItemFailures: { itemIdentifier: string }[];
    }>,
  onDeadLetter: (_record, error) =>
    log(`a pushed message failed every delivery and is kept as a dead letter: ${error}`),
});

log(`API            ${api}   (GET ${api}/health)`);
log(`OpenAPI        ${api}/openapi.json   (reference page: ${api}/docs)`);
log(`Inbound SMTP ${inbound.url}   (mail for <box receivingAddress>@${receivingDomain} is imported at once)`);
log(`Data           ${home}`);
log(`DynamoDB Local ${dynamo.endpoint}   (table ${config.tableName})`);
log(`Local SES      ${ses.endpoint}   (viewer: open it in a browser; sent mail as JSON: ${ses.storeUrl})`);
log(
  `Scheduler and event bus run in this process (${restored} box schedule(s) restored; notifications go to the local SES); Ctrl-C stops everything.`,
);
log('Sample (a dev token stands in for the JWT: dev:STUDIO:USER:GROUPS):');
console.log(`  curl -s ${api}/health`);
console.log(`  curl -s -H 'Authorization: Bearer dev:studio-1:admin-1:admins' ${api}/settings/company/email`);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping …`);
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await inbound.stop();
  await scheduler.stop();
  await bus.drain();
  await ses.stop();
  await dynamo.stop();
  log('stopped.');
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
