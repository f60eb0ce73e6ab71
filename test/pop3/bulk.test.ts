// @vitest-environment node
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pop3Client } from '#lib/pop3/client';
import { type Dovecot, startDovecot, uniqueUser } from '#test/support/dovecot';

const PASSWORD = 'bulk-password';

let dovecot: Dovecot;

beforeAll(async () => {
  dovecot = await startDovecot();
}, 30_000);

afterAll(async () => {
  await dovecot?.stop();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * A ~`size`-byte message of CRLF lines, different per `seed`, with the lines POP3 must stuff
 * ("." alone, "..", ".x") and 8-bit bytes sprinkled in.
 */
function bulkMessage(seed: number, size: number): Buffer {
  const lines = [`Subject: bulk ${seed}`, 'Content-Type: text/plain; charset=ISO-8859-1', ''];
  let length = 0;
  for (let n = 0; length < size; n++) {
    const line =
      n % 97 === 0
        ? '.'
        : n % 89 === 0
          ? '..'
          : n % 83 === 0
            ? `.line ${n}`
            : `${seed}:${n} caf\xe9 ${'x'.repeat(60)}`;
    lines.push(line);
    length += line.length + 2;
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1');
}

async function connect(user: string): Promise<Pop3Client> {
  const client = await Pop3Client.connect({
    host: dovecot.host,
    port: dovecot.pop3sPort,
    tls: 'implicit',
    ca: dovecot.caCertPem,
    timeoutMs: 20_000,
  });
  await client.login(user, PASSWORD);
  return client;
}

describe('bulk POP3 retrieval', () => {
  it('retrieves 2,000 messages of 20 KB over POP3S with pipelining, all byte-identical (node-pop3 hung here)', async () => {
    // Prepare
    const user = uniqueUser('bulk');
    await dovecot.addUser(user, PASSWORD);
    const expected = new Map<string, string>(); // uidl → sha256
    for (let batch = 0; batch < 2000; batch += 100) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const message = bulkMessage(batch + i, 20_000);
          const { uidl } = await dovecot.deliver(user, message);
          expected.set(uidl, sha256(message));
        }),
      );
    }
    const client = await connect(user);
    const uidOf = new Map((await client.uidl()).map((entry) => [entry.id, entry.uid]));

    // Act
    const started = performance.now();
    const order: number[] = [];
    const mismatched: number[] = [];
    let bytes = 0;
    let mostBuffered = 0;
    for await (const { id, data } of client.retrMany(uidOf.keys(), { window: 16 })) {
      mostBuffered = Math.max(mostBuffered, client.bufferedBytes);
      order.push(id);
      bytes += data.length;
      if (expected.get(uidOf.get(id)!) !== sha256(data)) mismatched.push(id);
    }
    const elapsed = performance.now() - started;
    await client.quit();
    console.info(
      `2,000 × 20 KB over POP3S, pipelined: ${(bytes / 1e6).toFixed(1)} MB in ${elapsed.toFixed(0)} ms`,
    );

    // Assess
    expect(client.capabilities.pipelining).toBe(true);
    expect(order).toHaveLength(2000);
    expect(order).toEqual([...uidOf.keys()]);
    expect(mismatched).toEqual([]);
    expect(mostBuffered).toBeLessThan(256 * 1024); // 16 RETRs in flight, yet only one message held whole
    expect(elapsed).toBeLessThan(60_000);
  }, 120_000);

  it('streams a 25 MB message with bounded buffering and the exact bytes', async () => {
    // Prepare
    const user = uniqueUser('huge');
    await dovecot.addUser(user, PASSWORD);
    const expectedHash = await (async () => {
      const message = bulkMessage(25, 25 * 1024 * 1024); // dropped after delivery: only the hash is kept
      await dovecot.deliver(user, message);
      return sha256(message);
    })();
    const client = await connect(user);

    // Act
    const started = performance.now();
    const stream = await client.retrStream(1);
    const hash = createHash('sha256');
    let bytes = 0;
    let largestChunk = 0;
    let mostBuffered = 0;
    let nextPause = 2 * 1024 * 1024;
    for await (const chunk of stream) {
      const piece = chunk as Buffer;
      hash.update(piece);
      bytes += piece.length;
      largestChunk = Math.max(largestChunk, piece.length);
      mostBuffered = Math.max(mostBuffered, stream.readableLength + client.bufferedBytes);
      if (bytes > nextPause) {
        // A slow reader (think: S3 upload): without backpressure the loopback would fill the stream buffer.
        nextPause += 2 * 1024 * 1024;
        await sleep(50);
        mostBuffered = Math.max(mostBuffered, stream.readableLength + client.bufferedBytes);
      }
    }
    const elapsed = performance.now() - started;
    await client.quit();
    console.info(`25 MB streamed over POP3S in ${elapsed.toFixed(0)} ms; largest chunk ${largestChunk} B`);

    // Assess
    expect(bytes).toBeGreaterThan(25 * 1024 * 1024);
    expect(hash.digest('hex')).toBe(expectedHash);
    // A read returns what is buffered: at most the 64 KB high-water mark plus one socket read.
    expect(largestChunk).toBeLessThan(256 * 1024);
    expect(mostBuffered).toBeLessThan(256 * 1024);
  }, 120_000);
});
