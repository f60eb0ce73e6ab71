/**
 * What a bench phase costs on AWS at on-demand prices: DynamoDB read and write units, counted
 * from the `ConsumedCapacity` DynamoDB Local reports when every request asks for it, and
 * blob-store requests, counted at the BlobStore port (each would be one S3 request).
 */
import type { Readable } from 'node:stream';
import type { BlobStore } from '#lib/ports/index';

/** On-demand prices (us-east-1): DynamoDB per million request units, S3 per 1,000 PUTs. */
export const prices = {
  dynamoWriteUsdPerMillion: 0.625,
  dynamoReadUsdPerMillion: 0.125,
  s3PutUsdPer1000: 0.005,
};

const READS = new Set([
  'GetItemCommand',
  'BatchGetItemCommand',
  'QueryCommand',
  'ScanCommand',
  'TransactGetItemsCommand',
]);

interface Capacity {
  CapacityUnits?: number;
  ReadCapacityUnits?: number;
  WriteCapacityUnits?: number;
}

interface MiddlewareClient {
  middlewareStack: {
    add(
      middleware: (
        next: (args: { input: Record<string, unknown> }) => Promise<{ output: Record<string, unknown> }>,
        context: { commandName?: string },
      ) => (args: { input: Record<string, unknown> }) => Promise<{ output: Record<string, unknown> }>,
      options: { step: 'initialize'; name: string },
    ): void;
  };
}

export class CostMeter {
  readUnits = 0;
  writeUnits = 0;
  dynamoRequests = 0;
  blobPuts = 0;
  blobReads = 0;

  /** Makes every request of `client` ask for `ReturnConsumedCapacity: 'TOTAL'` and adds up the answer. */
  watchDynamo(client: MiddlewareClient): void {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        args.input.ReturnConsumedCapacity = 'TOTAL';
        const result = await next(args);
        const consumed = result.output.ConsumedCapacity as Capacity | Capacity[] | undefined;
        const read = READS.has(context.commandName ?? '');
        this.dynamoRequests += 1;
        for (const c of [consumed ?? []].flat()) {
          // Transactions report read and write units apart; single requests only the total.
          if (c.ReadCapacityUnits !== undefined || c.WriteCapacityUnits !== undefined) {
            this.readUnits += c.ReadCapacityUnits ?? 0;
            this.writeUnits += c.WriteCapacityUnits ?? 0;
          } else if (read) this.readUnits += c.CapacityUnits ?? 0;
          else this.writeUnits += c.CapacityUnits ?? 0;
        }
        return result;
      },
      { step: 'initialize', name: 'benchConsumedCapacity' },
    );
  }

  /** The store, counting its requests. */
  watchBlobs(store: BlobStore): BlobStore {
    return {
      put: (key: string, body: Buffer | string | Readable, contentType?: string) => {
        this.blobPuts += 1;
        return store.put(key, body, contentType);
      },
      downloadUrl: (key, options) => store.downloadUrl(key, options),
      get: (key) => {
        this.blobReads += 1;
        return store.get(key);
      },
      getBuffer: (key) => {
        this.blobReads += 1;
        return store.getBuffer(key);
      },
      exists: (key) => {
        this.blobReads += 1;
        return store.exists(key);
      },
      delete: (key) => store.delete(key),
    };
  }

  reset(): void {
    this.readUnits = 0;
    this.writeUnits = 0;
    this.dynamoRequests = 0;
    this.blobPuts = 0;
    this.blobReads = 0;
  }

  /** The figures per 1,000 of the `count` things done since the last reset, with their price. */
  per1000(count: number, what: string): Record<string, number> {
    const f = 1000 / count;
    const dynamoUsd =
      (this.writeUnits * f * prices.dynamoWriteUsdPerMillion +
        this.readUnits * f * prices.dynamoReadUsdPerMillion) /
      1e6;
    return {
      [`dynamoDbUsdPer1000${what}`]: round6(dynamoUsd),
      [`dynamoDbWriteUnitsPer1000${what}`]: round2(this.writeUnits * f),
      [`dynamoDbReadUnitsPer1000${what}`]: round2(this.readUnits * f),
      [`dynamoDbRequestsPer1000${what}`]: round2(this.dynamoRequests * f),
      [`blobRequestsPer1000${what}`]: round2((this.blobPuts + this.blobReads) * f),
      [`blobPutsPer1000${what}`]: round2(this.blobPuts * f),
      [`s3PutUsdPer1000${what}`]: round6((this.blobPuts * f * prices.s3PutUsdPer1000) / 1000),
    };
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100;
const round6 = (n: number) => Math.round(n * 1e6) / 1e6;
