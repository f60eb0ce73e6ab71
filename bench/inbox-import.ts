/**
 * Child process of bench/inbox.ts (not a bench of its own): imports one Dovecot mailbox with
 * pollBox into a fresh DynamoDB Local table and a temp blob store, then prints JSON with the
 * count, the seconds, this process's peak RSS and what the import cost (bench/cost.ts: DynamoDB
 * units from ReturnConsumedCapacity, blob-store requests). BENCH_MODE=idle only starts and reports
 * RSS. BENCH_MODE=floor is the storage floor: the same number of messages of the same size, each
 * written with only its blob put and one transaction (the message item, its Message-ID lookup and
 * its two import markers, as the data model asks), BENCH_FLOOR_CONCURRENCY at a time, with no
 * retrieval and no parsing.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LocalBlobStore } from '#lib/adapters/local/blobs';
import { LocalSecretStore } from '#lib/adapters/local/secrets';
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import { makeRepositories } from '#lib/data/repositories';
import { Table } from '#lib/data/table';
import { openBox } from '#lib/inbox/connect';
import { pollBox } from '#lib/inbox/poll';
import { ensureTable, startDynamoLocal } from '#local/dynamodb';
import type { DovecotInfo } from '#test/support/dovecot';
import { rawMail } from '#test/support/mail';
import { CostMeter } from './cost.ts';

const info = JSON.parse(process.env.BENCH_DOVECOT ?? '{}') as DovecotInfo;
const mb = () => Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;

if (process.env.BENCH_MODE === 'idle') {
  console.log(JSON.stringify({ maxRssMb: mb() }));
} else {
  const dynamo = await startDynamoLocal();
  try {
    const client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    await ensureTable(client, 'bench');
    const meter = new CostMeter();
    meter.watchDynamo(client as never);
    const dir = mkdtempSync(join(tmpdir(), 'bench-inbox-'));
    const d = buildDeps(loadConfig({ STUDIO_MAIL_ADAPTERS: 'local' }), {
      repos: makeRepositories(new Table(client, 'bench')),
      blobs: meter.watchBlobs(new LocalBlobStore(join(dir, 'blobs'))),
      secrets: new LocalSecretStore(join(dir, 'secrets'), 'bench/'),
    });
    const passwordRef = await d.secrets.create('box', process.env.BENCH_PASSWORD ?? '');
    await d.repos.emailBoxes.create('s', 'b', {
      id: 'b',
      description: 'bench',
      leaveOnServer: true,
      connection: {
        type: 'pop3',
        server: info.host,
        port: info.pop3sPort,
        ssl: true,
        spa: false,
        emailAddress: 'bench@studio.test',
        userName: process.env.BENCH_USER ?? '',
        passwordRef,
      },
    });
    if (process.env.BENCH_MODE === 'floor') {
      const count = Number(process.env.BENCH_FLOOR_COUNT ?? 0);
      const concurrency = Number(process.env.BENCH_FLOOR_CONCURRENCY ?? 1);
      const filler = `${'x'.repeat(76)}\r\n`.repeat(260);
      const raws = Array.from({ length: count }, (_, i) => rawMail({ subject: `bench ${i}`, body: filler }));
      meter.reset();
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < raws.length) {
            const raw = raws[next]!;
            next += 1;
            const id = randomUUID();
            const sha256 = createHash('sha256').update(raw).digest('hex');
            const rawKey = `raw/in/b/${id}.eml`;
            await d.blobs.put(rawKey, raw, 'message/rfc822');
            const now = new Date().toISOString();
            await d.repos.table.transact([
              ...d.repos.messages.createWrites('s', {
                id,
                direction: 'in',
                status: 'imported',
                boxId: 'b',
                threadId: id,
                messageId: `<${id}@client.test>`,
                references: [],
                from: { address: 'ana@client.test', name: 'Ana Ruiz' },
                to: [{ address: 'sales@studio.test' }],
                cc: [],
                subject: 'bench',
                date: now,
                snippet: 'x'.repeat(200),
                rawKey,
                attachments: [],
                automatic: false,
              }),
              d.repos.importMarkers.uidlWrite('s', 'b', 'floor', {
                uidl: id,
                state: 'imported',
                messageId: id,
                sha256,
                at: now,
              }),
              d.repos.importMarkers.hashWrite('s', 'b', sha256, id),
            ]);
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      console.log(
        JSON.stringify({ imported: count, seconds, maxRssMb: mb(), cost: meter.per1000(count, 'Mails') }),
      );
    } else {
      meter.reset();
      const t0 = performance.now();
      const outcome = await pollBox(
        d,
        { studioId: 's', boxId: 'b', trigger: 'manual', budgetMs: 3_600_000 },
        { open: (box, pw) => openBox(box.connection, pw, { ca: info.caCertPem }) },
      );
      const seconds = (performance.now() - t0) / 1000;
      const imported = outcome.run?.counts.imported ?? 0;
      console.log(
        JSON.stringify({
          imported,
          seconds,
          maxRssMb: mb(),
          cost: imported ? meter.per1000(imported, 'Mails') : {},
        }),
      );
    }
  } finally {
    await dynamo.stop();
  }
}
