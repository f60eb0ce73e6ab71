/**
 * Thin wrapper over the DynamoDB document client for the single table (docs/data-model.md).
 * It turns a failed condition into a ConflictError that the repository names, and pages
 * queries with an opaque cursor.
 */
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ValidationError } from '#lib/domain/errors';

export type Item = Record<string, unknown>;
export interface Key {
  PK: string;
  SK: string;
}
/** One write of a transaction; the table name is filled in by Table.transact. */
export type TxItem =
  | {
      Put: {
        Item: Item;
        ConditionExpression?: string;
        ExpressionAttributeNames?: Record<string, string>;
        ExpressionAttributeValues?: Item;
      };
    }
  | {
      Delete: {
        Key: Key;
        ConditionExpression?: string;
        ExpressionAttributeNames?: Record<string, string>;
        ExpressionAttributeValues?: Item;
      };
    }
  | {
      Update: {
        Key: Key;
        UpdateExpression: string;
        ConditionExpression?: string;
        ExpressionAttributeNames?: Record<string, string>;
        ExpressionAttributeValues?: Item;
      };
    }
  | {
      ConditionCheck: {
        Key: Key;
        ConditionExpression: string;
        ExpressionAttributeNames?: Record<string, string>;
        ExpressionAttributeValues?: Item;
      };
    };

export interface Page<T> {
  items: T[];
  /** Opaque; pass back as `cursor` to read the next page. Absent on the last page. */
  nextCursor?: string;
}

/** Tries of one BatchGet page before its unprocessed keys fail the read (throttling that persists). */
const BATCH_GET_ATTEMPTS = 10;

interface PendingGet {
  key: Key;
  resolve: (item: Item | undefined) => void;
  reject: (error: unknown) => void;
}

/** Raised when a conditional write fails; repositories turn it into a ConflictError or NotFoundError. */
export class ConditionFailed extends Error {
  override readonly name = 'ConditionFailed';
}

export class Table {
  readonly doc: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    readonly name: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    });
  }

  /**
   * One item. Reads asked for in the same turn of the event loop go out together as one
   * BatchGetItem (a request path's independent reads cost one round trip, not one each); a read
   * alone is a GetItem.
   */
  get<T = Item>(key: Key, consistent = true): Promise<T | undefined> {
    return new Promise<Item | undefined>((resolve, reject) => {
      const queue = consistent ? this.consistentGets : this.eventualGets;
      queue.push({ key, resolve, reject });
      if (queue.length === 1) setImmediate(() => this.flushGets(consistent));
    }) as Promise<T | undefined>;
  }

  // TypeScript-private, not #private: tests wrap a table with Object.create, which #fields refuse.
  private readonly consistentGets: PendingGet[] = [];
  private readonly eventualGets: PendingGet[] = [];

  private flushGets(consistent: boolean): void {
    const queue = consistent ? this.consistentGets : this.eventualGets;
    const waiting = queue.splice(0, queue.length);
    if (waiting.length === 1) {
      const [only] = waiting as [PendingGet];
      this.doc
        .send(new GetCommand({ TableName: this.name, Key: only.key, ConsistentRead: consistent }))
        .then((out) => only.resolve(out.Item), only.reject);
      return;
    }
    // A key asked for twice is read once (BatchGetItem refuses duplicates).
    const byKey = new Map<string, PendingGet[]>();
    for (const w of waiting) {
      const id = `${w.key.PK}\u0000${w.key.SK}`;
      const list = byKey.get(id);
      if (list) list.push(w);
      else byKey.set(id, [w]);
    }
    const keys = [...byKey.values()].map((list) => list[0]!.key);
    this.batchGet(keys, consistent).then(
      (items) => {
        const found = new Map(items.map((i) => [`${i.PK}\u0000${i.SK}`, i]));
        for (const [id, list] of byKey) for (const w of list) w.resolve(found.get(id));
      },
      () => {
        // One bad key or a persistent throttle must not fail every read that happened to share
        // the turn: each is tried again on its own, and fails (or not) by itself.
        for (const w of waiting)
          this.doc
            .send(new GetCommand({ TableName: this.name, Key: w.key, ConsistentRead: consistent }))
            .then((out) => w.resolve(out.Item), w.reject);
      },
    );
  }

  async put(
    item: Item & Key,
    condition?: { expression: string; names?: Record<string, string>; values?: Item },
  ) {
    await this.guard(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.name,
          Item: item,
          ConditionExpression: condition?.expression,
          ExpressionAttributeNames: condition?.names,
          ExpressionAttributeValues: condition?.values,
        }),
      ),
    );
  }

  async update(input: Omit<UpdateCommandInput, 'TableName'>): Promise<Item | undefined> {
    const out = await this.guard(() =>
      this.doc.send(new UpdateCommand({ ReturnValues: 'ALL_NEW', ...input, TableName: this.name })),
    );
    return out.Attributes;
  }

  async delete(key: Key, condition?: string): Promise<Item | undefined> {
    const out = await this.guard(() =>
      this.doc.send(
        new DeleteCommand({
          TableName: this.name,
          Key: key,
          ConditionExpression: condition,
          ReturnValues: 'ALL_OLD',
        }),
      ),
    );
    return out.Attributes;
  }

  async query<T = Item>(
    input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>,
    cursor?: string,
  ): Promise<Page<T>> {
    const out = await this.doc.send(
      new QueryCommand({ ...input, TableName: this.name, ExclusiveStartKey: decodeCursor(cursor) }),
    );
    return {
      items: (out.Items ?? []) as T[],
      nextCursor: out.LastEvaluatedKey ? encodeCursor(out.LastEvaluatedKey) : undefined,
    };
  }

  /**
   * A page of up to `limit` items that pass `input.FilterExpression`, reading on through DynamoDB
   * pages (at most `maxReads`) so that a selective filter does not answer with empty pages. The
   * cursor resumes after the last item returned (`keyAttributes` are the table's and the index's
   * keys); a page may still be short when `maxReads` ran out, and then carries a cursor.
   */
  async queryFiltered<T = Item>(
    input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey' | 'Limit'>,
    limit: number,
    cursor: string | undefined,
    keyAttributes: readonly string[],
    maxReads = 10,
  ): Promise<Page<T>> {
    const items: Item[] = [];
    let next = cursor;
    for (let read = 0; read < maxReads; read++) {
      const page = await this.query({ ...input, Limit: Math.max(limit, 25) }, next);
      for (const [i, item] of page.items.entries()) {
        items.push(item);
        if (items.length === limit) {
          const more = i < page.items.length - 1 || page.nextCursor !== undefined;
          const key = Object.fromEntries(keyAttributes.map((a) => [a, item[a]]));
          return { items: items as T[], nextCursor: more ? encodeCursor(key) : undefined };
        }
      }
      next = page.nextCursor;
      if (!next) break;
    }
    return { items: items as T[], nextCursor: next };
  }

  /** Reads every page; for small partitions only (reference data, a box's markers). */
  async queryAll<T = Item>(input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>): Promise<T[]> {
    const all: T[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.query<T>(input, cursor);
      all.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return all;
  }

  /**
   * Reads many items by key (100 per request, unprocessed keys retried with backoff, at most
   * BATCH_GET_ATTEMPTS tries); missing ones are absent.
   */
  async batchGet<T = Item>(keys: Key[], consistent = true): Promise<T[]> {
    const out: T[] = [];
    for (let i = 0; i < keys.length; i += 100) {
      let pending: Key[] | undefined = keys.slice(i, i + 100);
      // `tries` counts rounds that made no progress (a throttle that persists); a round that
      // returned items (large items cut at the 16 MB answer limit, or a partial throttle) is not
      // held against it. Every later round still waits a little, so a throttle is not hammered.
      for (let round = 0, tries = 0; pending && pending.length > 0; round++) {
        if (tries >= BATCH_GET_ATTEMPTS)
          throw new Error(`DynamoDB left ${pending.length} keys unprocessed after ${tries} tries.`);
        if (round > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** Math.max(tries, 1))));
        const res = await this.doc.send(
          new BatchGetCommand({
            RequestItems: { [this.name]: { Keys: pending, ConsistentRead: consistent } },
          }),
        );
        const got = (res.Responses?.[this.name] ?? []) as T[];
        out.push(...got);
        pending = res.UnprocessedKeys?.[this.name]?.Keys as Key[] | undefined;
        if (got.length === 0) tries++;
      }
    }
    return out;
  }

  /**
   * The items a KEYS_ONLY index query found, read from the table in the query's order (one
   * BatchGetItem per 100). The index lags the table: an item deleted since the query, or no longer
   * under the queried index key (`where`: a message moved from quarantined to imported), is left out.
   */
  async itemsOf(found: Item[], where?: { attribute: string; value: string }): Promise<Item[]> {
    if (found.length === 0) return [];
    const id = (i: Item) => `${i.PK}\u0000${i.SK}`;
    const keys = found.map((i) => ({ PK: String(i.PK), SK: String(i.SK) }));
    const items = new Map((await this.batchGet(keys)).map((i) => [id(i), i]));
    return found
      .map((i) => items.get(id(i)))
      .filter((i): i is Item => i !== undefined && (!where || i[where.attribute] === where.value));
  }

  async transact(items: TxItem[]): Promise<void> {
    const withTable = items.map((i) => {
      const [[kind, body]] = Object.entries(i) as [[string, Item]];
      return { [kind]: { ...body, TableName: this.name } };
    }) as TransactWriteCommandInput['TransactItems'];
    await this.guard(() => this.doc.send(new TransactWriteCommand({ TransactItems: withTable })));
  }

  private async guard<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new ConditionFailed(error.message);
      if (
        error instanceof TransactionCanceledException &&
        error.CancellationReasons?.some((r) => r.Code === 'ConditionalCheckFailed')
      ) {
        throw new ConditionFailed(error.message);
      }
      throw error;
    }
  }
}

function encodeCursor(key: Item): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeCursor(cursor: string | undefined): Item | undefined {
  if (!cursor) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Item;
  } catch {
    // fall through to the validation error
  }
  throw ValidationError.field('cursor', 'is not a cursor this API returned; start again without it.');
}
