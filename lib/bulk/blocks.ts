/**
 * The studio's block list: addresses that unsubscribed, bounced for good or complained. One item
 * per address (PK `ST#sid#BLOCK`, SK the lower-case address) with its history, so reinstating an
 * address keeps who did it and why. Bulk email never goes to a blocked address; single emails
 * skip them too unless the studio's `bypassBlocksForTransactional` is on.
 */

import type { Item, Page, Table } from '#lib/data/table';
import { NotFoundError } from '#lib/domain/errors';
import { type BlockEntry, blockEntry } from './model.ts';

const pk = (sid: string) => `ST#${sid}#BLOCK`;
const norm = (address: string) => address.trim().toLowerCase();

export interface BlockRecord {
  address: string;
  blocked: boolean;
  /** Newest last. */
  history: BlockEntry[];
}

export class BlockList {
  constructor(private readonly table: Table) {}

  /** Blocks `address` (again): a new history entry. */
  async block(sid: string, entry: Omit<BlockEntry, 'address'> & { address: string }): Promise<void> {
    const address = norm(entry.address);
    const e = blockEntry.parse({ ...entry, address });
    await this.table.update({
      Key: { PK: pk(sid), SK: address },
      UpdateExpression:
        'SET entity = :e, address = :a, blocked = :t, history = list_append(if_not_exists(history, :empty), :h)',
      ExpressionAttributeValues: { ':e': 'BLOCK', ':a': address, ':t': true, ':empty': [], ':h': [e] },
    });
  }

  async get(sid: string, address: string): Promise<BlockRecord | undefined> {
    const item = await this.table.get<Item>({ PK: pk(sid), SK: norm(address) });
    return item ? toRecord(item) : undefined;
  }

  /** The blocked ones among `addresses` (lower-case), with the latest reason. */
  async blocked(sid: string, addresses: string[]): Promise<Map<string, BlockEntry>> {
    const unique = [...new Set(addresses.map(norm))];
    // A large selection reads the studio's whole block list (one query, usually a few pages)
    // instead of looking up each address (a request per 100).
    const items =
      unique.length > 500
        ? await this.table.queryAll<Item>({
            KeyConditionExpression: 'PK = :pk',
            FilterExpression: 'blocked = :t',
            ExpressionAttributeValues: { ':pk': pk(sid), ':t': true },
          })
        : await this.table.batchGet<Item>(unique.map((a) => ({ PK: pk(sid), SK: a })));
    const wanted = new Set(unique);
    const out = new Map<string, BlockEntry>();
    for (const item of items) {
      const r = toRecord(item);
      const last = r.history.at(-1);
      if (r.blocked && last && wanted.has(r.address)) out.set(r.address, last);
    }
    return out;
  }

  async list(sid: string, limit: number, cursor?: string, all = false): Promise<Page<BlockRecord>> {
    const input = {
      KeyConditionExpression: 'PK = :pk',
      ExpressionAttributeValues: { ':pk': pk(sid), ...(all ? {} : { ':t': true }) },
      ...(all ? {} : { FilterExpression: 'blocked = :t' }),
    };
    const page = await this.table.queryFiltered(input, limit, cursor, ['PK', 'SK']);
    return { items: page.items.map((i) => toRecord(i as Item)), nextCursor: page.nextCursor };
  }

  /** Takes the address off the list; `by` and `reason` are kept on its latest entry. */
  async reinstate(
    sid: string,
    address: string,
    by: string,
    reason: string,
    at: string,
  ): Promise<BlockRecord> {
    const current = await this.get(sid, address);
    if (!current?.blocked) throw new NotFoundError('blocked address', norm(address));
    const history = current.history.map((h, i) =>
      i === current.history.length - 1 ? { ...h, reinstated: { by, reason, at } } : h,
    );
    await this.table.put({
      PK: pk(sid),
      SK: norm(address),
      entity: 'BLOCK',
      address: norm(address),
      blocked: false,
      history,
    });
    return { address: norm(address), blocked: false, history };
  }
}

function toRecord(item: Item): BlockRecord {
  return {
    address: String(item.address),
    blocked: item.blocked === true,
    history: ((item.history as unknown[]) ?? []).map((h) => blockEntry.parse(h)),
  };
}
