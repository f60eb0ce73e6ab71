/**
 * `npm run bench -- send`: single-send latency and throughput of the project's send path against
 * bare nodemailer, both into the same local SMTP sink (smtp-server, plain, no AUTH, greeting at
 * once), in the same run.
 *
 * Project = the `POST /emails` route handler the API runs, called with a parsed request (no
 * API Gateway/JSON edge): body validation, Idempotency-Key claim and outcome (2 DynamoDB writes),
 * settings/user/client/form letter/signature reads (DynamoDB Local), merge-field rendering with a
 * signature, MIME composition, the raw copy in the local blob store (files), the SMTP send (a
 * new connection per message, as in Lambda), and the message record (1 DynamoDB transaction).
 * Baseline = `createTransport({ host, port }).sendMail({ from, to, subject, text, html })`, also a
 * new connection per message.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import nodemailer from 'nodemailer';
import { sendHandlers } from '#functions/send/app';
import { LocalBlobStore } from '#lib/adapters/local/blobs';
import { InProcessEventBus } from '#lib/adapters/local/events';
import { InProcessScheduler } from '#lib/adapters/local/scheduler';
import { LocalSecretStore } from '#lib/adapters/local/secrets';
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import { ensureTable, startDynamoLocal } from '#local/dynamodb';
import { startSmtpServer } from '#test/support/smtp';
import { CostMeter } from './cost.ts';
import { report } from './report.ts';

const WARMUP = 30;
const SEQUENTIAL = 300;
const CONCURRENT = 600;
const CONCURRENCY = 8;
const TRACED = 40;
const SID = 'bench-studio';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Runs `op` n times one after another; returns the latencies in ms, sorted. */
async function sequential(n: number, op: () => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await op();
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b);
}

/** Runs `op` n times with `concurrency` in flight; returns messages per second. */
async function throughput(n: number, concurrency: number, op: () => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next += 1;
        await op();
      }
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

export async function main(): Promise<void> {
  // Quiet like the logger below: an EMF line per send on the terminal is noise, not the send path.
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  const dir = mkdtempSync(join(tmpdir(), 'studio-mail-bench-'));
  const dynamo = await startDynamoLocal();
  const sink = await startSmtpServer({ mode: 'plain', immediateGreeting: true });
  try {
    const config = loadConfig({
      STUDIO_MAIL_ADAPTERS: 'local',
      DYNAMODB_ENDPOINT: dynamo.endpoint,
      TABLE_NAME: 'bench-send',
      BLOB_DIR: join(dir, 'blobs'),
      SECRET_DIR: join(dir, 'secrets'),
    });
    const meter = new CostMeter();
    const d = buildDeps(config, {
      secrets: new LocalSecretStore(join(dir, 'secrets'), config.secretPrefix),
      blobs: meter.watchBlobs(new LocalBlobStore(join(dir, 'blobs'))),
      scheduler: new InProcessScheduler(),
      events: new InProcessEventBus(),
      logger: new Logger({ serviceName: 'bench', logLevel: 'SILENT' }),
    });
    await ensureTable(d.repos.table.doc as never, config.tableName);
    meter.watchDynamo(d.repos.table.doc as never);

    await d.repos.companyEmail.create(SID, 'company', {
      studioName: 'Lumen Photo Studio',
      displayName: 'Lumen Photo',
      emailAddress: 'hello@lumen.test',
      transport: { method: 'smtp', server: sink.host, port: sink.port, security: 'none' },
      defaultSignatureId: 'sig',
      timeZone: 'America/New_York',
      phone: '555-0100',
    });
    await d.repos.users.create(SID, 'user-1', {
      id: 'user-1',
      firstName: 'Maya',
      lastName: 'Ortiz',
      email: 'maya@lumen.test',
    });
    await d.repos.signatures.create(SID, 'sig', {
      id: 'sig',
      name: 'Studio',
      html: '<p>{{user.fullName}} · {{studio.name}} · {{studio.phone}}</p>',
      text: '{{user.fullName}} · {{studio.name}} · {{studio.phone}}',
    });
    await d.repos.clients.create(SID, 'client-1', {
      id: 'client-1',
      firstName: 'José',
      lastName: 'Núñez',
      emails: [{ address: 'jose@example.test', primary: true }],
    });
    const body =
      '<p>Dear {{client.firstName}},</p><p>Your gallery is ready to view. {{date.today}}</p>'.repeat(4);
    await d.repos.formLetters.create(SID, 'ready', {
      id: 'ready',
      name: 'Gallery ready',
      kind: 'html-email',
      subject: 'Your gallery is ready, {{client.firstName}}',
      html: body,
    });

    const route = sendHandlers(d)['POST /emails']!;
    const project = async () => {
      const req: Parameters<typeof route>[0] = {
        routeKey: 'POST /emails',
        params: {},
        query: {},
        headers: { 'idempotency-key': randomUUID() },
        body: { clientId: 'client-1', formLetterId: 'ready' },
        caller: { userId: 'user-1', studioId: SID, groups: [], isAdmin: false },
        requestId: randomUUID(),
      };
      const res = await route(req);
      if (res.status !== 200) throw new Error(`project send failed: ${JSON.stringify(res.body)}`);
    };

    const html = body
      .replaceAll('{{client.firstName}}', 'José')
      .replaceAll('{{date.today}}', 'March 5, 2026');
    const bare = async () => {
      const transporter = nodemailer.createTransport({
        host: sink.host,
        port: sink.port,
        secure: false,
        ignoreTLS: true,
      });
      await transporter.sendMail({
        from: { name: 'Lumen Photo', address: 'hello@lumen.test' },
        to: { name: 'José Núñez', address: 'jose@example.test' },
        subject: 'Your gallery is ready, José',
        html,
        text: html.replace(/<[^>]+>/g, ''),
      });
      transporter.close();
    };

    await sequential(WARMUP, bare);
    await sequential(WARMUP, project);
    if (process.env.BENCH_TRACE) await trace(d, project);
    const bareTimes = await sequential(SEQUENTIAL, bare);
    meter.reset();
    const projectTimes = await sequential(SEQUENTIAL, project);
    const cost = meter.per1000(SEQUENTIAL, 'Sends');
    const bareRate = await throughput(CONCURRENT, CONCURRENCY, bare);
    const projectRate = await throughput(CONCURRENT, CONCURRENCY, project);
    // The project path makes four DynamoDB round trips one after another; these say what they cost here.
    const dynamoTimes = await sequential(SEQUENTIAL, async () => {
      await d.repos.users.get(SID, 'user-1');
    });
    const [sample] = (await d.repos.messages.listForClient(SID, 'client-1', 1)).items;
    const recordTimes = await sequential(SEQUENTIAL, async () => {
      await d.repos.messages.create(SID, {
        ...sample!,
        id: randomUUID(),
        messageId: `<${randomUUID()}@bench>`,
      });
    });
    const delivered = sink.messages.length;
    const expected = 2 * (WARMUP + SEQUENTIAL + CONCURRENT) + (process.env.BENCH_TRACE ? TRACED : 0);
    if (delivered !== expected) throw new Error(`sink received ${delivered} messages, expected ${expected}`);

    const bareMedian = percentile(bareTimes, 50);
    const projectMedian = percentile(projectTimes, 50);
    report({
      name: 'send',
      unit: 'ms',
      baseline: bareMedian,
      project: projectMedian,
      meaning:
        'median single-send latency, project POST /emails path ÷ bare nodemailer sendMail, both into the same ' +
        'local SMTP sink with a new connection per message; lower is better',
      extra: {
        latencyRatio: round(projectMedian / bareMedian),
        meaning_latencyRatio:
          'median project latency ÷ median bare latency, one send at a time; lower is better (goal ≤ 4)',
        throughputRatio: round(projectRate / bareRate),
        meaning_throughputRatio: `project messages/s ÷ bare messages/s with ${CONCURRENCY} sends in flight; higher is better (goal ≥ 0.6)`,
        bareMedianMs: round(bareMedian),
        projectMedianMs: round(projectMedian),
        bareP95Ms: round(percentile(bareTimes, 95)),
        projectP95Ms: round(percentile(projectTimes, 95)),
        projectOverheadMedianMs: round(projectMedian - bareMedian),
        bareMessagesPerSecond: round(bareRate),
        projectMessagesPerSecond: round(projectRate),
        inFlight: CONCURRENCY,
        dynamoDbLocalGetItemMedianMs: round(percentile(dynamoTimes, 50)),
        dynamoDbLocalMessageRecordMedianMs: round(percentile(recordTimes, 50)),
        ...cost,
        meaning_cost:
          `per 1,000 project sends (counted over the ${SEQUENTIAL} sequential ones): DynamoDB units from ` +
          'ReturnConsumedCapacity at on-demand prices (write $0.625, read $0.125 per million), blob-store ' +
          'requests (each an S3 request; PUT $0.005 per 1,000); lower is better',
        sequentialSendsPerSide: SEQUENTIAL,
        concurrentSendsPerSide: CONCURRENT,
        projectPathIncludes:
          'validation; one read round (idempotency claim beside the settings, user, client, form letter and ' +
          'signature reads); merge fields; MIME; blob write; SMTP (connections shared while sends are in flight); ' +
          'message record, then the idempotency outcome',
        node: process.version,
      },
    });
  } finally {
    await sink.stop();
    await dynamo.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * BENCH_TRACE=1: where one send's time goes. Each DynamoDB request and blob write of 40 sends,
 * as start–end ms from the send's start; the median send's timeline is printed.
 */
async function trace(d: ReturnType<typeof buildDeps>, op: () => Promise<void>): Promise<void> {
  const doc = d.repos.table.doc as unknown as {
    send: (c: { constructor: { name: string } }) => Promise<unknown>;
  };
  const blobs = d.blobs as unknown as { put: (...a: unknown[]) => Promise<unknown> };
  const send = doc.send.bind(doc);
  const put = blobs.put.bind(blobs);
  let t0 = 0;
  let events: string[] = [];
  const timed = async <T>(label: string, run: () => Promise<T>) => {
    const s = performance.now() - t0;
    try {
      return await run();
    } finally {
      events.push(`${s.toFixed(2)}–${(performance.now() - t0).toFixed(2)} ${label}`);
    }
  };
  doc.send = (c) => timed(c.constructor.name, () => send(c));
  blobs.put = (...a) => timed('blob put', () => put(...a));
  const runs: { ms: number; events: string[] }[] = [];
  for (let i = 0; i < TRACED; i++) {
    events = [];
    t0 = performance.now();
    await op();
    runs.push({ ms: performance.now() - t0, events });
  }
  doc.send = send;
  blobs.put = put;
  runs.sort((a, b) => a.ms - b.ms);
  const mid = runs[Math.floor(TRACED / 2)]!;
  console.log(`median traced send ${mid.ms.toFixed(2)} ms:\n  ${mid.events.join('\n  ')}`);
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
