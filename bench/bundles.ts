/**
 * `npm run bench -- bundles`: bundles each Lambda function exactly as the stack does
 * (`bundleFunction` of infra/constructs/studio-function.ts), plus a naive bundle of every entry (one
 * file, no minification, no tree shaking, no splitting), and measures in fresh
 * `node --enable-source-maps` processes, as Lambda runs them:
 *  - load: `import()` of the bundle's entry file;
 *  - cold request: from before that `import()` to the answer of one typical first request, served
 *    against DynamoDB Local and local servers — settings `GET /settings/company/email`, send
 *    `POST /emails/preview`, inbox-poll a scheduled poll of an empty Dovecot box, notify one failed
 *    poll outcome event (one notification through the local SES). Deferring work from module load
 *    to the first request cannot hide here.
 * Project and naive runs alternate, RUNS times each, and the medians are reported.
 *
 * The AWS services without a local server (Secrets Manager, EventBridge) are answered by a small
 * stub on loopback (the SDK's `AWS_ENDPOINT_URL_<SERVICE>` settings point the clients at it), so
 * their clients are loaded and called as in Lambda.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type BuildOptions, build } from 'esbuild';
import {
  bundleFunction,
  esbuildOptions,
  functionEntry,
  functionNames,
  studioBundling,
} from '#infra/constructs/studio-function';
import { makeRepositories } from '#lib/data/repositories';
import { Table } from '#lib/data/table';
import { POLL_EVENT_SOURCE, POLL_FAILED } from '#lib/inbox/events';
import { senderIdentityId } from '#lib/settings/sender-identities';
import { ensureTable, startDynamoLocal } from '#local/dynamodb';
import { devClaims } from '#local/http';
import { startSesLocal } from '#local/ses';
import { startDovecot, uniqueUser } from '#test/support/dovecot';
import { report } from './report.ts';

const RUNS = Number(process.env.BENCH_BUNDLE_RUNS ?? 9);
/**
 * The functions measured: the four of issue 13 and the bulk-email API. The bulk queue worker and
 * the SES-events function start on queue and event deliveries only (no user waits on them).
 */
const BENCHED = functionNames.filter((n) => n !== 'bulk-worker' && n !== 'bulk-events');
const SID = 'bench-studio';
const TABLE = 'bench-bundles';

/** What the stack sets, so module initialisation sees a Lambda-like environment. */
const lambdaEnv = {
  AWS_REGION: 'eu-central-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  STUDIO_MAIL_ADAPTERS: 'aws',
  TABLE_NAME: TABLE,
  BLOB_BUCKET: 'bench-bucket',
  SECRET_PREFIX: 'studio-mail/',
  EVENT_BUS_NAME: 'bench-bus',
  SCHEDULE_GROUP: 'studio-mail',
  SCHEDULER_ROLE_ARN: 'arn:aws:iam::123456789012:role/bench',
  POLLER_ARN: 'arn:aws:lambda:eu-central-1:123456789012:function:bench',
  NOTIFICATION_SENDER: 'notifications@mail.example.com',
  STUDIO_CLAIM: 'custom:studioId',
  POWERTOOLS_METRICS_NAMESPACE: 'StudioMail',
  POWERTOOLS_SERVICE_NAME: 'bench',
  LOG_LEVEL: 'ERROR',
  POLL_BUDGET_MS: '60000',
  // The stack sets false; here the mail server is Dovecot on loopback.
  ALLOW_PRIVATE_MAIL_HOSTS: 'true',
};

function naiveOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: studioBundling.target,
    banner: { js: studioBundling.banner },
    // What a first attempt looks like: everything bundled as is, into one file.
    minify: false,
    treeShaking: false,
    sourcemap: false,
    logLevel: 'silent',
  };
}

/** Bytes of the .mjs files (code) and of the .map files under `dir`. */
function sizes(dir: string): { bytes: number; mapBytes: number; files: number } {
  let bytes = 0;
  let mapBytes = 0;
  let files = 0;
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    const size = statSync(join(dir, f)).size;
    if (f.endsWith('.mjs')) {
      bytes += size;
      files += 1;
    } else if (f.endsWith('.map')) mapBytes += size;
  }
  return { bytes, mapBytes, files };
}

/** The first request of each function (an API Gateway v2 event, or the function's own event). */
function firstRequest(name: string, box: { pollBox: string; notifyBox: () => Promise<string> }) {
  const api = (routeKey: string, path: string, body?: unknown) => {
    const [method] = routeKey.split(' ');
    return {
      version: '2.0',
      routeKey,
      rawPath: path,
      rawQueryString: '',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      isBase64Encoded: false,
      requestContext: {
        accountId: '123456789012',
        apiId: 'bench',
        domainName: 'bench.example.com',
        domainPrefix: 'bench',
        http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' },
        requestId: randomUUID(),
        routeKey,
        stage: '$default',
        time: new Date().toISOString(),
        timeEpoch: Date.now(),
        authorizer: {
          principalId: '',
          integrationLatency: 0,
          jwt: { claims: devClaims(`dev:${SID}:user-1:admins`, lambdaEnv.STUDIO_CLAIM), scopes: [] },
        },
      },
    };
  };
  switch (name) {
    case 'settings':
      return async () => ({ event: api('GET /settings/company/email', '/settings/company/email') });
    case 'bulk':
      return async () => ({ event: api('GET /bulk-emails', '/bulk-emails') });
    case 'send':
      return async () => ({
        event: api('POST /emails/preview', '/emails/preview', {
          clientId: 'client-1',
          formLetterId: 'ready',
        }),
      });
    case 'inbox-poll':
      return async () => ({
        event: { studioId: SID, boxId: box.pollBox, scheduledTime: new Date().toISOString() },
      });
    case 'notify':
      return async () => {
        const boxId = await box.notifyBox();
        const now = new Date().toISOString();
        return {
          event: {
            version: '0',
            id: randomUUID(),
            source: POLL_EVENT_SOURCE,
            'detail-type': POLL_FAILED,
            account: '123456789012',
            time: now,
            region: lambdaEnv.AWS_REGION,
            resources: [],
            detail: {
              studioId: SID,
              boxId,
              runId: randomUUID(),
              trigger: 'schedule',
              status: 'failed',
              counts: { seen: 0, imported: 0, skipped: 0, quarantined: 0, tasks: 0, autoReplies: 0 },
              errors: [],
              failure: {
                kind: 'login-rejected',
                message: 'The mail server rejected the user name or password.',
                advice: 'Check the user name and password.',
                field: 'connection.password',
              },
              startedAt: now,
              finishedAt: now,
            },
          },
        };
      };
    default:
      throw new Error(`no first request for ${name}`);
  }
}

/** Whether the answer is the success the request should get (a failed request is not a cold start). */
function succeeded(name: string, answer: unknown): boolean {
  const a = answer as { statusCode?: number; status?: string; sent?: boolean } | undefined;
  if (name === 'settings' || name === 'send' || name === 'bulk') return a?.statusCode === 200;
  if (name === 'inbox-poll') return a?.status === 'succeeded';
  return a?.sent === true;
}

const childScript = `
const t0 = performance.now();
const mod = await import(process.env.BENCH_BUNDLE);
const t1 = performance.now();
const deadline = Date.now() + 60000;
const context = { callbackWaitsForEmptyEventLoop: false, functionName: 'bench', functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-central-1:123456789012:function:bench', memoryLimitInMB: '512',
  awsRequestId: crypto.randomUUID(), logGroupName: '/bench', logStreamName: 'bench',
  getRemainingTimeInMillis: () => deadline - Date.now(), done() {}, fail() {}, succeed() {} };
let answer, error;
if (process.env.BENCH_EVENT) {
  try { answer = await mod.handler(JSON.parse(process.env.BENCH_EVENT), context); }
  catch (e) { error = String(e && e.stack || e); }
}
const t2 = performance.now();
process.stdout.write('\\n@@bench ' + JSON.stringify({ loadMs: t1 - t0, requestMs: t2 - t0, answer, error }) + '\\n');
process.exit(0);
`;

interface Run {
  loadMs: number;
  requestMs: number;
  answer?: unknown;
  error?: string;
}

function runChild(file: string, env: Record<string, string>, event?: unknown): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--enable-source-maps',
        // BENCH_CPU_PROF_DIR=dir writes a V8 CPU profile of every fresh process (load + first request).
        ...(process.env.BENCH_CPU_PROF_DIR
          ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`]
          : []),
        '--input-type=module',
        '-e',
        childScript,
      ],
      {
        env: {
          PATH: process.env.PATH ?? '',
          ...env,
          BENCH_BUNDLE: pathToFileURL(file).href,
          ...(event ? { BENCH_EVENT: JSON.stringify(event) } : {}),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c;
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('@@bench '));
      if (!line)
        return reject(new Error(`bundle ${file} exited ${code}: ${err.split('\n').slice(0, 5).join(' ')}`));
      resolve(JSON.parse(line.slice('@@bench '.length)) as Run);
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const round = (n: number) => Math.round(n * 100) / 100;
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

/**
 * Answers the JSON-protocol AWS calls that have no local server: Secrets Manager GetSecretValue
 * (the box password) and EventBridge PutEvents (the poll outcome).
 */
async function startAwsStub(password: string): Promise<{ endpoint: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const body = target.endsWith('.GetSecretValue')
        ? {
            ARN: 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:studio-mail/box',
            Name: 'studio-mail/box',
            SecretString: password,
            VersionId: '1',
          }
        : target.endsWith('.PutEvents')
          ? { FailedEntryCount: 0, Entries: [{ EventId: randomUUID() }] }
          : {};
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

export async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'studio-mail-bundles-'));
  const dynamo = await startDynamoLocal();
  const dovecot = await startDovecot();
  const ses = await startSesLocal();
  const password = 'bench-password';
  const stub = await startAwsStub(password);
  try {
    // Bundles first, so the servers sit idle while esbuild runs.
    const bundles: Record<string, { project: string; naive: string }> = {};
    const size: Record<string, ReturnType<typeof sizes> & { naiveBytes: number }> = {};
    for (const name of BENCHED) {
      const projectDir = join(dir, name);
      const naiveDir = join(dir, `${name}-naive`);
      const project = await bundleFunction(name, projectDir);
      await build(naiveOptions(functionEntry(name), join(naiveDir, 'index.mjs')));
      bundles[name] = { project, naive: join(naiveDir, 'index.mjs') };
      size[name] = { ...sizes(projectDir), naiveBytes: sizes(naiveDir).bytes };
    }
    const helloEntry = join(dir, 'hello.ts');
    writeFileSync(helloEntry, "export const handler = async () => ({ statusCode: 200, body: 'hello' });\n");
    const helloFile = join(dir, 'hello', 'index.mjs');
    await build(esbuildOptions(helloEntry, helloFile));

    // Data of the first requests.
    const client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    await ensureTable(client, TABLE);
    const repos = makeRepositories(new Table(client, TABLE));
    await seed(repos);
    const mailbox = uniqueUser('bench-empty');
    await dovecot.addUser(mailbox, password);
    const pollBox = 'box-poll';
    await repos.emailBoxes.create(SID, pollBox, {
      ...boxBase(pollBox),
      connection: {
        ...boxBase(pollBox).connection,
        server: dovecot.host,
        port: dovecot.pop3sPort,
        userName: mailbox,
      },
      schedule: alwaysOpen,
    });
    const notifyBox = async () => {
      const id = `box-${randomUUID().slice(0, 8)}`;
      await repos.emailBoxes.create(SID, id, {
        ...boxBase(id),
        schedule: { ...alwaysOpen, notifyEmail: 'owner@lumen.test', notifyOn: 'failures' },
      });
      return id;
    };
    const caFile = join(dir, 'dovecot-ca.pem');
    writeFileSync(caFile, dovecot.caCertPem);
    const env = {
      ...lambdaEnv,
      DYNAMODB_ENDPOINT: dynamo.endpoint,
      SES_ENDPOINT: ses.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: stub.endpoint,
      AWS_ENDPOINT_URL_EVENTBRIDGE: stub.endpoint,
      POP3_CA_FILE: caFile,
    };

    const hello: number[] = [];
    for (let i = 0; i < RUNS; i++) hello.push((await runChild(helloFile, env)).loadMs);

    const figures: Record<
      string,
      { load: number[]; request: number[]; naiveLoad: number[]; naiveRequest: number[] }
    > = {};
    for (const name of BENCHED) {
      const next = firstRequest(name, { pollBox, notifyBox });
      const f = {
        load: [] as number[],
        request: [] as number[],
        naiveLoad: [] as number[],
        naiveRequest: [] as number[],
      };
      // One warm-up pair (file cache, DynamoDB Local's JIT), then alternate project and naive.
      for (let i = 0; i <= RUNS; i++) {
        for (const variant of ['project', 'naive'] as const) {
          const { event } = await next();
          const run = await runChild(bundles[name]![variant], env, event);
          if (run.error || !succeeded(name, run.answer))
            throw new Error(
              `${name} (${variant}) did not serve its first request: ${run.error ?? JSON.stringify(run.answer).slice(0, 500)}`,
            );
          if (i === 0) continue;
          if (variant === 'project') {
            f.load.push(run.loadMs);
            f.request.push(run.requestMs);
          } else {
            f.naiveLoad.push(run.loadMs);
            f.naiveRequest.push(run.requestMs);
          }
        }
      }
      figures[name] = f;
    }

    const extra: Record<string, number | string> = {
      meaning_load_ms:
        '<fn>_load_ms: median ms to import() the bundle in a fresh node --enable-source-maps process; lower is better',
      meaning_cold_request_ms:
        '<fn>_cold_request_ms: median ms from before that import() to the answer of the first request (load + first request); lower is better',
      meaning_worstLoadToNaiveRatio:
        'max over the functions of <fn>_load_ms ÷ <fn>_naive_load_ms; lower is better (goal ≤ 0.5)',
      meaning_worstColdRequestToNaiveRatio:
        'max over the functions of <fn>_cold_request_ms ÷ <fn>_naive_cold_request_ms; lower is better (goal ≤ 0.5)',
      first_requests:
        'settings GET /settings/company/email; send POST /emails/preview; inbox-poll a scheduled poll of an empty ' +
        'Dovecot box (POP3S); notify one failed-poll event (one email through the local SES)',
      runs_per_measurement: RUNS,
      statistic: 'median',
      node: process.version,
      hello_load_ms: round(median(hello)),
    };
    let worstLoad = 0;
    let worstRequest = { ratio: 0, name: '', project: 0, naive: 0 };
    console.log(`Fresh node ${process.version} --enable-source-maps processes, median of ${RUNS}:`);
    console.log(`  hello-world bundle loads in ${round(median(hello))} ms`);
    for (const name of BENCHED) {
      const f = figures[name]!;
      const s = size[name]!;
      const load = median(f.load);
      const naiveLoad = median(f.naiveLoad);
      const request = median(f.request);
      const naiveRequest = median(f.naiveRequest);
      worstLoad = Math.max(worstLoad, load / naiveLoad);
      if (request / naiveRequest > worstRequest.ratio)
        worstRequest = { ratio: request / naiveRequest, name, project: request, naive: naiveRequest };
      Object.assign(extra, {
        [`${name}_load_ms`]: round(load),
        [`${name}_naive_load_ms`]: round(naiveLoad),
        [`${name}_cold_request_ms`]: round(request),
        [`${name}_naive_cold_request_ms`]: round(naiveRequest),
        [`${name}_bytes`]: s.bytes,
        [`${name}_map_bytes`]: s.mapBytes,
        [`${name}_files`]: s.files,
        [`${name}_naive_bytes`]: s.naiveBytes,
      });
      console.log(
        `  ${name}: ${kib(s.bytes)} in ${s.files} file(s) (+${kib(s.mapBytes)} maps), load ${round(load)} ms, ` +
          `cold request ${round(request)} ms; naive ${kib(s.naiveBytes)}, load ${round(naiveLoad)} ms, ` +
          `cold request ${round(naiveRequest)} ms`,
      );
    }
    extra.worstLoadToNaiveRatio = round(worstLoad);
    extra.worstColdRequestToNaiveRatio = round(worstRequest.ratio);
    extra.worstColdRequestFunction = worstRequest.name;
    report({
      name: 'bundles',
      unit: 'ms',
      baseline: worstRequest.naive,
      project: worstRequest.project,
      extra,
      meaning:
        `cold request (fresh process: load the bundle and serve one first request) of the function with the ` +
        `worst ratio (${worstRequest.name}): project bundle ÷ naive bundle; lower is better`,
    });
  } finally {
    await new Promise((resolve) => stub.server.close(resolve));
    await ses.stop();
    await dovecot.stop();
    await dynamo.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const alwaysOpen = {
  enabled: true,
  startTime: '00:00',
  endTime: '23:59',
  intervalMinutes: 1,
  weekdays: ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'] as (
    | 'MON'
    | 'TUE'
    | 'WED'
    | 'THU'
    | 'FRI'
    | 'SAT'
    | 'SUN'
  )[],
  timeZone: 'UTC',
  notifyOn: 'failures' as const,
};

function boxBase(id: string) {
  return {
    id,
    description: 'Bench box',
    autoCreateTask: false,
    sendAutoReply: false,
    autoReplyToAll: false,
    autoReplyFirstEmailOnly: false,
    leaveOnServer: true,
    connection: {
      type: 'pop3' as const,
      server: 'pop.lumen.test',
      emailAddress: 'sales@lumen.test',
      userName: 'sales@lumen.test',
      passwordRef: 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:studio-mail/box',
      ssl: true,
      spa: false,
      port: 995,
    },
  };
}

/** Company settings, a user, a client, a signature and a form letter: what a preview reads. */
async function seed(repos: ReturnType<typeof makeRepositories>): Promise<void> {
  // SES sends only from a verified identity of the studio (issue 12): the studio's domain is one.
  await repos.senderIdentities.createClaimed(SID, {
    id: senderIdentityId('lumen.test'),
    identity: 'lumen.test',
    type: 'domain',
    verified: true,
    arn: 'arn:aws:ses:eu-central-1:123456789012:identity/lumen.test',
  });
  await repos.companyEmail.create(SID, 'company', {
    studioName: 'Lumen Photo Studio',
    displayName: 'Lumen Photo',
    emailAddress: 'hello@lumen.test',
    transport: { method: 'ses' },
    defaultSignatureId: 'sig',
    timeZone: 'America/New_York',
    phone: '555-0100',
  });
  await repos.users.create(SID, 'user-1', {
    id: 'user-1',
    firstName: 'Maya',
    lastName: 'Ortiz',
    email: 'maya@lumen.test',
  });
  await repos.signatures.create(SID, 'sig', {
    id: 'sig',
    name: 'Studio',
    html: '<p>{{user.fullName}} · {{studio.name}} · {{studio.phone}}</p>',
    text: '{{user.fullName}} · {{studio.name}} · {{studio.phone}}',
  });
  await repos.clients.create(SID, 'client-1', {
    id: 'client-1',
    firstName: 'José',
    lastName: 'Núñez',
    emails: [{ address: 'jose@example.test', primary: true }],
  });
  await repos.formLetters.create(SID, 'ready', {
    id: 'ready',
    name: 'Gallery ready',
    kind: 'html-email',
    subject: 'Your gallery is ready, {{client.firstName}}',
    html: '<p>Dear {{client.firstName}},</p><p>Your gallery is ready to view. {{date.today}}</p>',
  });
}
