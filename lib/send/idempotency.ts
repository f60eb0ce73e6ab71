/**
 * Idempotency-Key support: a request that carries a key sends at most once. The key is claimed
 * per studio with a conditional put BEFORE sending and the answer stored AFTER, so a retry gets
 * the same status and body back, a retry during the first gets "in progress", and the same key
 * with another request is refused. Items expire (TTL) after 24 hours.
 */

import { createHash } from 'node:crypto';
import { idempotencyPk } from '#lib/data/keys';
import { ConditionFailed, type Table } from '#lib/data/table';
import { ValidationError } from '#lib/domain/errors';
import { IDEMPOTENCY_KEY_HEADER } from '#lib/http/headers';
import {
  IdempotencyInProgressError,
  IdempotencyKeyReusedError,
  IdempotencyOutcomeUnknownError,
} from './errors.ts';

export interface StoredOutcome {
  status: number;
  body: unknown;
}

interface IdemItem {
  state: 'in-progress' | 'done';
  fingerprint: string;
  startedAt: string;
  outcome?: StoredOutcome;
}

/** JSON with object keys sorted, so `{a,b}` and `{b,a}` are the same request. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** What makes two requests "the same": route, path parameters, caller and body. */
export function fingerprint(parts: unknown): string {
  return createHash('sha256').update(canonical(parts)).digest('base64url');
}

const KEY = /^[\x21-\x7e]{1,255}$/;

/** The key from the `Idempotency-Key` header, or undefined when the request has none. */
export function idempotencyKey(headers: Record<string, string>): string | undefined {
  const key = headers[IDEMPOTENCY_KEY_HEADER];
  if (key === undefined) return undefined;
  if (!KEY.test(key)) {
    throw ValidationError.field(
      'Idempotency-Key',
      'must be 1 to 255 visible ASCII characters (a UUID is a good choice).',
    );
  }
  return key;
}

export interface IdempotencyOptions {
  ttlSeconds: number;
  /**
   * An in-progress claim older than this belongs to a request that died (the send function times
   * out after 29 s); its outcome is unknown and is reported as such rather than sent again.
   */
  staleAfterMs: number;
}

export const defaultIdempotency: IdempotencyOptions = { ttlSeconds: 24 * 3600, staleAfterMs: 60_000 };

export type Claim = { state: 'claimed' } | { state: 'done'; outcome: StoredOutcome };

export class IdempotencyStore {
  constructor(
    private readonly table: Table,
    private readonly options: IdempotencyOptions = defaultIdempotency,
  ) {}

  private key(sid: string, scope: string, key: string) {
    return { PK: idempotencyPk(sid, scope, key), SK: 'IDEM' };
  }

  /**
   * Claims the key for this request, or returns the stored outcome of the same request. Throws
   * when the key belongs to another request or the first is still running.
   */
  async claim(sid: string, scope: string, key: string, print: string, now: Date): Promise<Claim> {
    try {
      await this.table.put(
        {
          ...this.key(sid, scope, key),
          entity: 'IDEM',
          state: 'in-progress',
          fingerprint: print,
          startedAt: now.toISOString(),
          ttl: Math.floor(now.getTime() / 1000) + this.options.ttlSeconds,
        },
        { expression: 'attribute_not_exists(PK)' },
      );
      return { state: 'claimed' };
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
    }
    const item = await this.table.get<IdemItem>(this.key(sid, scope, key));
    // Expired and removed between the put and the read: rare enough to ask for a retry.
    if (!item) throw new IdempotencyInProgressError();
    if (item.fingerprint !== print) throw new IdempotencyKeyReusedError();
    if (item.state === 'done' && item.outcome) return { state: 'done', outcome: item.outcome };
    if (now.getTime() - Date.parse(item.startedAt) > this.options.staleAfterMs) {
      throw new IdempotencyOutcomeUnknownError(item.startedAt);
    }
    throw new IdempotencyInProgressError();
  }

  /** Stores the answer given, for replays. */
  async complete(sid: string, scope: string, key: string, outcome: StoredOutcome, now: Date): Promise<void> {
    await this.table.update({
      Key: this.key(sid, scope, key),
      UpdateExpression: 'SET #s = :done, outcome = :o, finishedAt = :at',
      ExpressionAttributeNames: { '#s': 'state' },
      ExpressionAttributeValues: { ':done': 'done', ':o': outcome, ':at': now.toISOString() },
    });
  }

  /** Gives the key back when nothing was sent (the request failed before sending), so a retry may run. */
  async release(sid: string, scope: string, key: string): Promise<void> {
    await this.table.delete(this.key(sid, scope, key));
  }
}
