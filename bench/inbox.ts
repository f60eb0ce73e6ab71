/**
 * `npm run bench -- inbox`: on one Dovecot mailbox in one run,
 *  - raw retrieval rate of the project's POP3 client (pipelined RETR over POP3S),
 *  - the same mailbox through Python's poplib (the baseline),
 *  - end-to-end import rate (pollBox: blob store + parse + DynamoDB Local transaction), with its
 *    DynamoDB units and blob-store requests per 1,000 mails priced at on-demand rates,
 *  - the storage floor: the same number of messages written with only the blob put and one
 *    transaction each, at the import's concurrency (IMPORT_CONCURRENCY in lib/inbox/poll.ts;
 *    BENCH_FLOOR_CONCURRENCY overrides it),
 *  - peak RSS of a fresh process importing one message with a 25 MB attachment, next to the
 *    peak RSS of the same process doing nothing but starting.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { IMPORT_CONCURRENCY } from '#lib/inbox/poll';
import { Pop3Client } from '#lib/pop3/client';
import { startDovecot, uniqueUser } from '#test/support/dovecot';
import { bigAttachmentMail, rawMail } from '#test/support/mail';
import { report } from './report.ts';

const run = promisify(execFile);
const COUNT = Number(process.env.BENCH_INBOX_COUNT ?? 2000);

export async function main() {
  const dovecot = await startDovecot();
  try {
    const user = uniqueUser('bench');
    const password = 'bench-password';
    await dovecot.addUser(user, password);
    const filler = `${'x'.repeat(76)}\r\n`.repeat(260);
    for (let i = 0; i < COUNT; i++)
      await dovecot.deliver(user, rawMail({ subject: `bench ${i}`, body: filler }));
    const caFile = join(await mkdtemp(join(tmpdir(), 'bench-ca-')), 'ca.pem');
    writeFileSync(caFile, dovecot.caCertPem);

    // Project client: pipelined RETR of every message.
    const t0 = performance.now();
    const client = await Pop3Client.connect({
      host: dovecot.host,
      port: dovecot.pop3sPort,
      ca: dovecot.caCertPem,
    });
    await client.login(user, password);
    const ids = (await client.list()).map((l) => l.id);
    let bytes = 0;
    for await (const m of client.retrMany(ids, { window: 16 })) bytes += m.data.length;
    await client.quit();
    const projectSeconds = (performance.now() - t0) / 1000;

    // Baseline: Python poplib, one RETR at a time.
    const py = await run('python3', [
      new URL('./baselines/poplib_retr.py', import.meta.url).pathname,
      dovecot.host,
      String(dovecot.pop3sPort),
      user,
      password,
      caFile,
    ]);
    const baseline = JSON.parse(py.stdout) as { messages: number; bytes: number; seconds: number };

    // End to end: import into DynamoDB Local and the local blob store, in a child process.
    const child = async (
      mode: 'import' | 'idle' | 'floor',
      mailbox: string,
      more: Record<string, string> = {},
    ) => {
      const out = await run(
        process.execPath,
        ['--import', 'tsx', new URL('./inbox-import.ts', import.meta.url).pathname],
        {
          env: {
            ...process.env,
            BENCH_DOVECOT: JSON.stringify(dovecot.info),
            BENCH_USER: mailbox,
            BENCH_PASSWORD: password,
            BENCH_MODE: mode,
            ...more,
          },
          maxBuffer: 10 * 1024 * 1024,
        },
      );
      if (process.env.BENCH_VERBOSE) console.error(out.stderr);
      return JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '{}') as {
        imported: number;
        seconds: number;
        maxRssMb: number;
        cost?: Record<string, number>;
      };
    };
    const e2e = await child('import', user);
    const floorConcurrency = process.env.BENCH_FLOOR_CONCURRENCY ?? String(IMPORT_CONCURRENCY);
    const floor = await child('floor', user, {
      BENCH_FLOOR_COUNT: String(e2e.imported),
      BENCH_FLOOR_CONCURRENCY: floorConcurrency,
    });

    // Peak RSS: a fresh process importing a 25 MB attachment vs the same process idle.
    const bigUser = uniqueUser('bench-big');
    await dovecot.addUser(bigUser, password);
    await dovecot.deliver(bigUser, bigAttachmentMail(25).raw);
    const idle = await child('idle', bigUser);
    const big = await child('import', bigUser);

    const projectRate = ids.length / projectSeconds;
    const importRate = e2e.imported / e2e.seconds;
    const floorRate = floor.imported / floor.seconds;
    const baselineRate = baseline.messages / baseline.seconds;
    report({
      name: 'inbox',
      unit: 'messages/s',
      baseline: baselineRate,
      project: projectRate,
      meaning: `raw POP3S retrieval of ${ids.length} × 20 KB: project client ÷ Python poplib; higher is better`,
      extra: {
        retrievalRatio: round(projectRate / baselineRate),
        meaning_retrievalRatio: 'project POP3S retrieval rate ÷ Python poplib; higher is better (keep ≥ 1.5)',
        importToRetrievalRatio: round(importRate / projectRate),
        meaning_importToRetrievalRatio:
          'end-to-end import rate (retrieve, store, parse, record) ÷ raw retrieval rate; higher is better (goal ≥ 0.25)',
        importToStorageFloorRatio: round(importRate / floorRate),
        meaning_importToStorageFloorRatio:
          'end-to-end import rate ÷ storage floor rate (blob put + one transaction per message, same concurrency); ' +
          'higher is better, 1 = at the floor',
        messages: ids.length,
        megabytesRetrieved: Math.round(bytes / 1e4) / 100,
        projectRetrievalSeconds: round(projectSeconds),
        baselineRetrievalSeconds: round(baseline.seconds),
        endToEndImportedMessages: e2e.imported,
        endToEndImportSeconds: round(e2e.seconds),
        endToEndImportMessagesPerSecond: round(importRate),
        storageFloorMessages: floor.imported,
        storageFloorSeconds: round(floor.seconds),
        storageFloorMessagesPerSecond: round(floorRate),
        storageFloorConcurrency: Number(floorConcurrency),
        importConcurrency: IMPORT_CONCURRENCY,
        ...e2e.cost,
        meaning_cost:
          'per 1,000 imported mails: DynamoDB units from ReturnConsumedCapacity at on-demand prices (write $0.625, ' +
          'read $0.125 per million; goal ≤ $0.01), blob-store requests (each an S3 request; PUT $0.005 per 1,000); ' +
          'lower is better',
        ...Object.fromEntries(Object.entries(floor.cost ?? {}).map(([k, v]) => [`storageFloor_${k}`, v])),
        peakRssIdleProcessMb: idle.maxRssMb,
        peakRss25MbAttachmentImportMb: big.maxRssMb,
        peakRss25MbAttachmentAboveIdleMb: round(big.maxRssMb - idle.maxRssMb),
        meaning_peakRss:
          'peak RSS of a fresh process importing one mail with a 25 MB attachment; lower is better',
      },
    });
  } finally {
    await dovecot.stop();
  }
}

function round(n: number) {
  return Math.round(n * 100) / 100;
}
