/**
 * Child process of bench/inbox.ts (not a bench of its own): imports one Dovecot mailbox with
 * pollBox into a fresh DynamoDB Local table and a temp blob store, then prints JSON with the
 * count, the seconds and this process's peak RSS. BENCH_MODE=idle only starts and reports RSS.
 */
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
    const dir = mkdtempSync(join(tmpdir(), 'bench-inbox-'));
    const d = buildDeps(loadConfig({ STUDIO_MAIL_ADAPTERS: 'local' }), {
      repos: makeRepositories(new Table(client, 'bench')),
      blobs: new LocalBlobStore(join(dir, 'blobs')),
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
    const t0 = performance.now();
    const outcome = await pollBox(
      d,
      { studioId: 's', boxId: 'b', trigger: 'manual', budgetMs: 3_600_000 },
      { open: (box, pw) => openBox(box.connection, pw, { ca: info.caCertPem }) },
    );
    const seconds = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({ imported: outcome.run?.counts.imported ?? 0, seconds, maxRssMb: mb() }));
  } finally {
    await dynamo.stop();
  }
}
