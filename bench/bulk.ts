/**
 * `npm run bench -- bulk`: a bulk email of 10,000 personalised messages through the whole job
 * path (POST /bulk-emails with a selection, the in-process queue with at-least-once delivery,
 * conditional state writes in DynamoDB Local, merge fields, MIME, the raw copy in the local blob
 * store, pooled SMTP, the message record on each client) into a local smtp-server sink, against
 * bare nodemailer pooled sending of the same personalised messages into the same sink, in the
 * same run. `BULK_BENCH_N` changes the count; `BULK_BENCH_SKIP_BARE=1` leaves the baseline out (to
 * profile the project path alone: `node --cpu-prof --import tsx bench/run.ts bulk`).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import nodemailer from 'nodemailer';
import { bulkFunction, bulkParts } from '#functions/bulk/app';
import { bulkRoutes } from '#functions/bulk/routes';
import { LocalBlobStore } from '#lib/adapters/local/blobs';
import { InProcessEventBus } from '#lib/adapters/local/events';
import { InProcessScheduler } from '#lib/adapters/local/scheduler';
import { LocalSecretStore } from '#lib/adapters/local/secrets';
import { buildDeps } from '#lib/app/deps';
import { InProcessQueue } from '#lib/bulk/adapters/local-queue';
import { InProcessTimer } from '#lib/bulk/adapters/local-timer';
import { loadConfig } from '#lib/config';
import { clientListPk, clientTimelinePk } from '#lib/data/keys';
import { ensureTable, startDynamoLocal } from '#local/dynamodb';
import { apiClient } from '#test/support/api';
import { startSmtpServer } from '#test/support/smtp';
import { report } from './report.ts';

const N = Number(process.env.BULK_BENCH_N ?? 10_000);
const SID = 'studio-1';
const POOL = 5;

const letter = {
  subject: 'Your {{date.year}} portraits, {{client.firstName}}',
  html: '<p>Dear {{client.firstName}} {{client.lastName}},</p><p>Our winter session days are open. Book yours before the holidays.</p><p><a href="{{unsubscribe.url}}">Unsubscribe</a></p>',
  text: 'Dear {{client.firstName}} {{client.lastName}},\nOur winter session days are open. Book yours before the holidays.\nUnsubscribe: {{unsubscribe.url}}',
};

/** CPU seconds of this process's child processes (DynamoDB Local's JVM) so far, from /proc. */
function childCpuSeconds(): number {
  let ticks = 0;
  try {
    for (const pid of readdirSync('/proc').filter((f) => /^\d+$/.test(f))) {
      try {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
          .replace(/^.*\) /, '')
          .split(' ');
        if (Number(fields[1]) === process.pid) ticks += Number(fields[11]) + Number(fields[12]);
      } catch {
        // The process ended meanwhile.
      }
    }
  } catch {
    return Number.NaN; // no /proc (not Linux)
  }
  return ticks / 100;
}

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

export async function main(): Promise<void> {
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  const dir = mkdtempSync(join(tmpdir(), 'studio-mail-bench-'));
  const dynamo = await startDynamoLocal();
  const sink = await startSmtpServer({ mode: 'plain', immediateGreeting: true });
  try {
    const config = loadConfig({
      STUDIO_MAIL_ADAPTERS: 'local',
      DYNAMODB_ENDPOINT: dynamo.endpoint,
      TABLE_NAME: 'bench-bulk',
      BLOB_DIR: join(dir, 'blobs'),
      SECRET_DIR: join(dir, 'secrets'),
    });
    const d = buildDeps(config, {
      secrets: new LocalSecretStore(join(dir, 'secrets'), config.secretPrefix),
      blobs: new LocalBlobStore(join(dir, 'blobs')),
      scheduler: new InProcessScheduler(),
      events: new InProcessEventBus(),
      logger: new Logger({ serviceName: 'bench', logLevel: 'SILENT' }),
    });
    await ensureTable(d.repos.table.doc as never, config.tableName);
    await d.repos.companyEmail.create(SID, 'company', {
      studioName: 'Lumen Photo Studio',
      displayName: 'Lumen Photo',
      emailAddress: 'hello@lumen.test',
      transport: { method: 'smtp', server: sink.host, port: sink.port, security: 'none' },
      timeZone: 'America/New_York',
    });
    await d.repos.users.create(SID, 'user-1', {
      id: 'user-1',
      firstName: 'Maya',
      lastName: 'Ortiz',
      email: 'maya@lumen.test',
    });
    await d.repos.formLetters.create(SID, 'winter', {
      id: 'winter',
      name: 'Winter',
      kind: 'html-email',
      ...letter,
    });
    const clients = Array.from({ length: N }, (_, i) => ({
      id: `c-${i}`,
      firstName: `First${i}`,
      lastName: `Last${i}`,
      emails: [{ address: `client${i}@example.test`, primary: true }],
      groups: ['all'],
      marketingConsent: true,
    }));
    const at = new Date().toISOString();
    for (let i = 0; i < clients.length; i += 25) {
      await d.repos.table.doc.send(
        new BatchWriteCommand({
          RequestItems: {
            [config.tableName]: clients.slice(i, i + 25).map((c) => ({
              PutRequest: {
                Item: {
                  ...c,
                  PK: clientTimelinePk(SID, c.id),
                  SK: 'CLIENT',
                  entity: 'CLIENT',
                  GSI1PK: clientListPk(SID),
                  GSI1SK: `${c.lastName.toLowerCase()}#${c.firstName.toLowerCase()}#${c.id}`,
                  version: 1,
                  createdAt: at,
                  updatedAt: at,
                },
              },
            })),
          },
        }),
      );
    }

    // Baseline: the same personalised messages, nodemailer pooled (5 connections), 5 x 4 in flight.
    const bareStarted = performance.now();
    const bareCpu = cpuSeconds();
    const transporter = nodemailer.createTransport({
      host: sink.host,
      port: sink.port,
      secure: false,
      ignoreTLS: true,
      pool: true,
      maxConnections: POOL,
    });
    let next = process.env.BULK_BENCH_SKIP_BARE ? N : 0; // profiling the project path alone
    await Promise.all(
      Array.from({ length: POOL * 4 }, async () => {
        while (next < N) {
          const c = clients[next++] as (typeof clients)[number];
          const fill = (t: string) =>
            t
              .replaceAll('{{client.firstName}}', c.firstName)
              .replaceAll('{{client.lastName}}', c.lastName)
              .replaceAll('{{date.year}}', '2026')
              .replaceAll('{{unsubscribe.url}}', `https://api.lumen.test/unsubscribe/${c.id}`);
          await transporter.sendMail({
            from: { name: 'Lumen Photo', address: 'hello@lumen.test' },
            to: { name: `${c.firstName} ${c.lastName}`, address: c.emails[0]?.address ?? '' },
            subject: fill(letter.subject),
            html: fill(letter.html),
            text: fill(letter.text),
          });
        }
      }),
    );
    transporter.close();
    const bareSeconds = (performance.now() - bareStarted) / 1000;
    const bareCpuSeconds = cpuSeconds() - bareCpu;
    sink.reset();

    // Project: the job path from POST /bulk-emails to the job completed.
    const queue = new InProcessQueue({
      concurrency: Number(process.env.BULK_BENCH_CONSUMERS ?? 4),
      visibilityTimeoutMs: 300_000,
    });
    const timer = new InProcessTimer(() => queue);
    const parts = bulkParts(d, {
      queue,
      timer,
      linkKey: async () => 'bench-key',
      publicUrl: 'https://api.lumen.test',
    });
    queue.consume((m) => parts.worker.handle(m));
    const call = apiClient(bulkFunction(d, parts) as never, bulkRoutes, 'bulk');
    await call('PUT', '/settings/bulk-email', { body: { smtpRatePerSecond: 10_000 } });
    const profile = new Map<string, { n: number; ms: number }>();
    if (process.env.BULK_BENCH_PROFILE) {
      const doc = d.repos.table.doc as unknown as {
        send: (c: { constructor: { name: string } }) => Promise<unknown>;
      };
      const send = doc.send.bind(doc);
      doc.send = async (c) => {
        const t = performance.now();
        try {
          return await send(c);
        } finally {
          const e = profile.get(c.constructor.name) ?? { n: 0, ms: 0 };
          e.n += 1;
          e.ms += performance.now() - t;
          profile.set(c.constructor.name, e);
        }
      };
    }
    const started = performance.now();
    const [nodeCpu, dbCpu] = [cpuSeconds(), childCpuSeconds()];
    const created = await call('POST', '/bulk-emails', {
      body: { formLetterId: 'winter', selection: { groups: ['all'] } },
      token: 'dev:studio-1:user-1:',
    });
    if (created.status !== 202)
      throw new Error(`POST /bulk-emails answered ${created.status}: ${created.text}`);
    const acceptedMs = performance.now() - started;
    await queue.drained(30 * 60_000);
    const projectSeconds = (performance.now() - started) / 1000;
    const projectCpu = { node: cpuSeconds() - nodeCpu, dynamo: childCpuSeconds() - dbCpu };
    const progress = (await call('GET', `/bulk-emails/${created.body.id}`)).body;
    queue.stop();
    const unique = new Set(sink.messages.flatMap((m) => m.envelope.to));
    if (progress.counts.sent !== N || unique.size !== N || sink.messages.length !== N)
      throw new Error(
        `sent ${progress.counts.sent}, sink ${sink.messages.length} (${unique.size} unique), expected ${N}`,
      );

    for (const [k, v] of profile)
      console.log(`  ${k}: ${v.n} calls, ${Math.round(v.ms)} ms, ${(v.ms / v.n).toFixed(1)} ms each`);
    const bareRate = N / bareSeconds;
    const projectRate = N / projectSeconds;
    report({
      name: 'bulk',
      unit: 'messages/s',
      baseline: bareRate,
      project: projectRate,
      meaning: `messages per second for ${N} personalised emails, project bulk-job path ÷ bare nodemailer pooled sending, into the same local SMTP sink; higher is better`,
      extra: {
        throughputRatio: Math.round((projectRate / bareRate) * 1000) / 1000,
        meaning_throughputRatio: 'project messages/s ÷ bare messages/s; higher is better (goal ≥ 0.6)',
        messages: N,
        bareSeconds: round2(bareSeconds),
        projectSeconds: round2(projectSeconds),
        acceptedMs: Math.round(acceptedMs),
        bareNodeCpuSeconds: round2(bareCpuSeconds),
        projectNodeCpuSeconds: round2(projectCpu.node),
        projectDynamoCpuSeconds: round2(projectCpu.dynamo),
        meaning_cpuSeconds:
          'CPU seconds used in each phase by this process (client, worker and SMTP sink) and by DynamoDB Local',
        meaning_acceptedMs:
          'POST /bulk-emails until its 202 (selection, checks, the recipient list stored; the batches are written by the worker)',
        projectPathIncludes:
          'selection and checks, recipient list stored, batches written by the worker, queue (4 consumers), ' +
          'ledger reservation, claim and outcome writes per chunk, merge fields, MIME, raw copy (files), pooled SMTP (5), message records',
        node: process.version,
      },
    });
  } finally {
    await sink.stop();
    await dynamo.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100;
