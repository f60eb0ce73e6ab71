/**
 * Idempotency-Key support: a request that carries a key sends at most once. The key is claimed
 * per studio and user with a conditional put BEFORE sending and the answer stored AFTER, so a
 * retry gets the same status and body back, a retry during the first gets "in progress", and the
 * same key with another request is refused. A key is given back only when nothing was handed to a
 * transport; an error after that is stored as the answer and replayed. Keys end after 24 hours
 * (TTL): one past its end is not honoured even before DynamoDB's TTL sweep removes it.
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { idempotencyPk } from '#lib/data/keys';
import { ConditionFailed, type Table, type TxItem } from '#lib/data/table';
import { ValidationError } from '#lib/domain/errors';
import { errorBody } from '#lib/http/errors';
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER } from '#lib/http/headers';
import type { ApiResult } from '#lib/http/routes';
import type { MailTransport } from '#lib/ports/index';
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
  /** Epoch seconds after which the key is over (DynamoDB's TTL attribute). */
  ttl?: number;
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
    const nowSeconds = Math.floor(now.getTime() / 1000);
    try {
      await this.table.put(
        {
          ...this.key(sid, scope, key),
          entity: 'IDEM',
          state: 'in-progress',
          fingerprint: print,
          startedAt: now.toISOString(),
          ttl: nowSeconds + this.options.ttlSeconds,
        },
        // A key past its TTL is over even while DynamoDB has not swept it yet (that takes up to days).
        {
          expression: 'attribute_not_exists(PK) OR #ttl < :now',
          names: { '#ttl': 'ttl' },
          values: { ':now': nowSeconds },
        },
      );
      return { state: 'claimed' };
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
    }
    const item = await this.table.get<IdemItem>(this.key(sid, scope, key));
    // Expired and removed between the put and the read: rare enough to ask for a retry.
    if (!item || (item.ttl !== undefined && item.ttl < nowSeconds)) throw new IdempotencyInProgressError();
    if (item.fingerprint !== print) throw new IdempotencyKeyReusedError();
    if (item.state === 'done' && item.outcome) return { state: 'done', outcome: item.outcome };
    if (now.getTime() - Date.parse(item.startedAt) > this.options.staleAfterMs) {
      throw new IdempotencyOutcomeUnknownError(item.startedAt);
    }
    throw new IdempotencyInProgressError();
  }

  /** Stores the answer given, for replays. */
  async complete(sid: string, scope: string, key: string, outcome: StoredOutcome, now: Date): Promise<void> {
    await this.table.update(this.completeWrite(sid, scope, key, outcome, now).Update);
  }

  /** The same write as `complete`, for a caller's own transaction. */
  completeWrite(sid: string, scope: string, key: string, outcome: StoredOutcome, now: Date) {
    return {
      Update: {
        Key: this.key(sid, scope, key),
        UpdateExpression: 'SET #s = :done, outcome = :o, finishedAt = :at',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: { ':done': 'done', ':o': outcome, ':at': now.toISOString() },
      },
    } satisfies TxItem;
  }

  /** Gives the key back when nothing was sent (the request failed before sending), so a retry may run. */
  async release(sid: string, scope: string, key: string): Promise<void> {
    await this.table.delete(this.key(sid, scope, key));
  }
}

/** Whether the request running in this context has handed a message to a transport. */
const sending = new AsyncLocalStorage<{ started: boolean }>();

/**
 * `factory`'s transports, telling `runOnce` when a send starts (in the request's own async
 * context, so a transport shared by concurrent requests still tells each its own).
 */
export function watchedTransport<A extends unknown[]>(
  factory: (...args: A) => MailTransport,
): (...args: A) => MailTransport {
  return (...args) => {
    const transport = factory(...args);
    return Object.assign(Object.create(transport) as MailTransport, {
      send: (mail: Parameters<MailTransport['send']>[0]) => {
        const state = sending.getStore();
        if (state) state.started = true;
        return transport.send(mail);
      },
    });
  };
}

export interface OnceRequest {
  headers: Record<string, string>;
  routeKey: string;
  params: Record<string, string>;
  body: unknown;
  caller: { studioId: string; userId: string };
  requestId: string;
}

export interface OnceOptions {
  store: IdempotencyStore;
  now: () => Date;
  log: { error(message: string, ...extra: Record<string, unknown>[]): void };
}

/**
 * Runs `send` at most once per Idempotency-Key, per studio and user: claim before, store the
 * answer after, replay it for the same request. `prepare` (reads and validation, no side effects)
 * runs alongside the claim to save a round trip; its refusal gives the key back. Without the
 * header both just run. An error before any transport was handed the message gives the key back
 * (nothing went); after that, the error's answer is stored and replayed, so a retry never sends twice.
 */
/**
 * How `send` stores its answer: `complete` writes it on its own; `write` gives the same write for
 * the caller's own transaction (undefined without a key), and `committed` says that it landed.
 */
export interface Completion {
  (result: ApiResult): Promise<void>;
  write(result: ApiResult): TxItem | undefined;
  committed(): void;
}

export async function runOnce<P>(
  o: OnceOptions,
  req: OnceRequest,
  scope: string,
  prepare: () => Promise<P>,
  send: (prepared: P, complete: Completion) => Promise<ApiResult>,
): Promise<ApiResult> {
  const key = idempotencyKey(req.headers);
  if (!key) {
    const none = Object.assign(async () => {}, { write: () => undefined, committed: () => {} });
    return send(await prepare(), none);
  }
  const sid = req.caller.studioId;
  // Per user: another user's key of the same text is another request (the edge checked the subject).
  const userScope = `${scope}#${req.caller.userId}`;
  const print = fingerprint({
    route: req.routeKey,
    params: req.params,
    user: req.caller.userId,
    body: req.body,
  });
  const [claimed, prepared] = await Promise.allSettled([
    o.store.claim(sid, userScope, key, print, o.now()),
    prepare(),
  ]);
  if (claimed.status === 'rejected') throw claimed.reason;
  const claim: Claim = claimed.value;
  if (claim.state === 'done') {
    const { status, body } = claim.outcome;
    return { status, body, headers: { [IDEMPOTENT_REPLAYED_HEADER]: 'true' } };
  }
  // `send` may store its outcome itself, beside its own last write (one write round).
  let completed = false;
  const complete: Completion = Object.assign(
    async (r: ApiResult) => {
      completed = true;
      try {
        await o.store.complete(sid, userScope, key, { status: r.status, body: r.body }, o.now());
      } catch (error) {
        // The email went; a retry now finds the claim and is told the outcome is unknown, never re-sent.
        o.log.error('idempotency outcome not stored', { errorMessage: String(error) });
      }
    },
    {
      write: (r: ApiResult) =>
        o.store.completeWrite(sid, userScope, key, { status: r.status, body: r.body }, o.now()),
      committed: () => {
        completed = true;
      },
    },
  );
  const attempt = { started: false };
  let result: ApiResult;
  try {
    if (prepared.status === 'rejected') throw prepared.reason;
    const ready = prepared.value;
    result = await sending.run(attempt, () => send(ready, complete));
  } catch (error) {
    if (completed) throw error;
    if (!attempt.started) {
      await o.store.release(sid, userScope, key).catch(() => {});
      throw error;
    }
    // Handed to a transport, then failed: whatever the answer is now, it is the answer for good.
    const { status, body } = errorBody(error, req.requestId);
    await complete({ status, body });
    throw error;
  }
  if (!completed) await complete(result);
  return result;
}
