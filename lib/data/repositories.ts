/**
 * Repositories over the single table. Each takes the Table as a dependency; none knows about
 * HTTP. Writes that must not overwrite (create) or must find the item (update/delete) are
 * conditional, and a failed condition becomes a named ConflictError or NotFoundError.
 */
import type { z } from 'zod';
import { addressKey } from '#lib/domain/addresses';
import { ConflictError, NotFoundError } from '#lib/domain/errors';
import * as m from '#lib/domain/model';
import { receivingLocalPart, takesPush } from '#lib/domain/receiving';
import * as k from './keys.ts';
import { ConditionFailed, type Item, type Page, type Table, type TxItem } from './table.ts';

export interface Meta {
  version: number;
  createdAt: string;
  updatedAt: string;
}
export type Stored<T> = T & Meta;

const KEY_ATTRS = [
  'PK',
  'SK',
  'GSI1PK',
  'GSI1SK',
  'GSI2PK',
  'GSI2SK',
  'GSI3PK',
  'GSI3SK',
  'ttl',
  'entity',
] as const;

/** Drops key attributes and validates the stored shape, so callers never see table internals. */
function fromItem<S extends z.ZodType>(schema: S, item: Item): Stored<z.output<S>> {
  const { version, createdAt, updatedAt, ...rest } = item as Item & Meta;
  for (const a of KEY_ATTRS) delete rest[a];
  return { ...(schema.parse(rest) as object), version, createdAt, updatedAt } as Stored<z.output<S>>;
}

const now = () => new Date().toISOString();

/**
 * Reference data and settings kept in the studio's own partition (PK = ST#sid, SK = KIND#id):
 * small, read often, listed whole.
 */
export class RefRepository<S extends z.ZodType> {
  constructor(
    protected readonly table: Table,
    /** SK prefix, e.g. `DEPT`. */
    readonly kind: string,
    readonly schema: S,
    /** Human name used in error messages, e.g. `department`. */
    readonly label: string,
  ) {}

  protected key(sid: string, id: string) {
    return { PK: k.studioPk(sid), SK: k.refSk(this.kind, id) };
  }

  /**
   * Creates the record; `also` (e.g. clearing the old default, from `clearing`) is written in
   * the same transaction, so either both happen or neither does.
   */
  async create(
    sid: string,
    id: string,
    value: z.input<S>,
    also: TxItem[] = [],
  ): Promise<Stored<z.output<S>>> {
    const parsed = this.schema.parse(value) as Item;
    const at = now();
    const item = {
      ...parsed,
      ...this.key(sid, id),
      entity: this.kind,
      version: 1,
      createdAt: at,
      updatedAt: at,
    };
    try {
      if (also.length === 0) await this.table.put(item, { expression: 'attribute_not_exists(PK)' });
      else
        await this.table.transact([
          { Put: { Item: item, ConditionExpression: 'attribute_not_exists(PK)' } },
          ...also,
        ]);
    } catch (error) {
      if (error instanceof ConditionFailed)
        throw new ConflictError(`A ${this.label} with id "${id}" already exists.`);
      throw error;
    }
    return fromItem(this.schema, item);
  }

  async get(sid: string, id: string): Promise<Stored<z.output<S>> | undefined> {
    const item = await this.table.get(this.key(sid, id));
    return item ? fromItem(this.schema, item) : undefined;
  }

  async require(sid: string, id: string): Promise<Stored<z.output<S>>> {
    const found = await this.get(sid, id);
    if (!found) throw new NotFoundError(this.label, id);
    return found;
  }

  async list(sid: string): Promise<Stored<z.output<S>>[]> {
    const items = await this.table.queryAll({
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :sk)',
      ExpressionAttributeValues: { ':pk': k.studioPk(sid), ':sk': `${this.kind}#` },
    });
    return items.map((i) => fromItem(this.schema, i));
  }

  /** A page of the kind, by id (for kinds whose records are large: signatures, form letters). */
  async page(sid: string, limit = 50, cursor?: string): Promise<Page<Stored<z.output<S>>>> {
    const page = await this.table.query(
      {
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :sk)',
        ExpressionAttributeValues: { ':pk': k.studioPk(sid), ':sk': `${this.kind}#` },
        Limit: limit,
      },
      cursor,
    );
    return { items: page.items.map((i) => fromItem(this.schema, i)), nextCursor: page.nextCursor };
  }

  /**
   * Replaces the whole record. With `expectedVersion` the write fails with a ConflictError when
   * someone else saved in between (optimistic locking).
   */
  async replace(
    sid: string,
    id: string,
    value: z.input<S>,
    expectedVersion?: number,
    also: TxItem[] = [],
  ): Promise<Stored<z.output<S>>> {
    const current = await this.require(sid, id);
    if (expectedVersion !== undefined && expectedVersion !== current.version) {
      throw new ConflictError(
        `The ${this.label} "${id}" was changed by someone else (version ${current.version}, you sent ${expectedVersion}); reload and try again.`,
      );
    }
    const parsed = this.schema.parse(value) as Item;
    const item = {
      ...parsed,
      ...this.key(sid, id),
      entity: this.kind,
      version: current.version + 1,
      createdAt: current.createdAt,
      updatedAt: now(),
    };
    const condition = {
      ConditionExpression: '#v = :v',
      ExpressionAttributeNames: { '#v': 'version' },
      ExpressionAttributeValues: { ':v': current.version },
    };
    try {
      if (also.length === 0)
        await this.table.put(item, {
          expression: condition.ConditionExpression,
          names: condition.ExpressionAttributeNames,
          values: condition.ExpressionAttributeValues,
        });
      else await this.table.transact([{ Put: { Item: item, ...condition } }, ...also]);
    } catch (error) {
      if (error instanceof ConditionFailed) {
        throw new ConflictError(
          `The ${this.label} "${id}" was changed at the same time; reload and try again.`,
        );
      }
      throw error;
    }
    return fromItem(this.schema, item);
  }

  /**
   * Writes that set `field` to false on `others`, each only at the version read (a record changed
   * since fails the whole transaction: a ConflictError). For "only one default" kinds.
   */
  clearing(sid: string, others: readonly (Meta & { id: string })[], field = 'isDefault'): TxItem[] {
    return others.map((o) => ({
      Update: {
        Key: this.key(sid, o.id),
        UpdateExpression: 'SET #f = :false, #v = :next, updatedAt = :at',
        ConditionExpression: '#v = :v',
        ExpressionAttributeNames: { '#f': field, '#v': 'version' },
        ExpressionAttributeValues: { ':false': false, ':v': o.version, ':next': o.version + 1, ':at': now() },
      },
    }));
  }

  /** Creates or replaces; for singletons such as company settings. */
  async upsert(sid: string, id: string, value: z.input<S>): Promise<Stored<z.output<S>>> {
    const current = await this.get(sid, id);
    return current ? this.replace(sid, id, value, current.version) : this.create(sid, id, value);
  }

  async delete(sid: string, id: string): Promise<Stored<z.output<S>>> {
    try {
      const old = await this.table.delete(this.key(sid, id), 'attribute_exists(PK)');
      return fromItem(this.schema, old ?? {});
    } catch (error) {
      if (error instanceof ConditionFailed) throw new NotFoundError(this.label, id);
      throw error;
    }
  }
}

/** Clients, with one lookup item per email address so that incoming mail finds its client. */
export class ClientRepository extends RefRepository<typeof m.client> {
  constructor(table: Table) {
    super(table, 'CLIENT', m.client, 'client');
  }

  protected override key(sid: string, id: string) {
    return { PK: k.clientTimelinePk(sid, id), SK: 'CLIENT' };
  }

  private addressItems(sid: string, c: m.Client) {
    const unique = [...new Set(c.emails.map((e) => addressKey(e.address)))];
    return unique.map((address) => ({ PK: k.addressPk(sid, address), SK: `CLIENT#${c.id}`, clientId: c.id }));
  }

  private record(sid: string, c: m.Client, meta: Meta) {
    return {
      ...c,
      ...this.key(sid, c.id),
      entity: this.kind,
      GSI1PK: k.clientListPk(sid),
      GSI1SK: `${c.lastName.toLowerCase()}#${c.firstName.toLowerCase()}#${c.id}`,
      ...meta,
    };
  }

  override async create(sid: string, id: string, value: z.input<typeof m.client>) {
    const c = m.client.parse({ ...value, id });
    const at = now();
    const item = this.record(sid, c, { version: 1, createdAt: at, updatedAt: at });
    try {
      await this.table.transact([
        { Put: { Item: item, ConditionExpression: 'attribute_not_exists(PK)' } },
        ...this.addressItems(sid, c).map((Item) => ({ Put: { Item } })),
      ]);
    } catch (error) {
      if (error instanceof ConditionFailed)
        throw new ConflictError(`A client with id "${id}" already exists.`);
      throw error;
    }
    return fromItem(m.client, item);
  }

  override async replace(sid: string, id: string, value: z.input<typeof m.client>, expectedVersion?: number) {
    const current = await this.require(sid, id);
    if (expectedVersion !== undefined && expectedVersion !== current.version) {
      throw new ConflictError(`The client "${id}" was changed by someone else; reload and try again.`);
    }
    const c = m.client.parse({ ...value, id });
    const item = this.record(sid, c, {
      version: current.version + 1,
      createdAt: current.createdAt,
      updatedAt: now(),
    });
    const keep = new Set(this.addressItems(sid, c).map((a) => a.PK));
    const stale = this.addressItems(sid, current).filter((a) => !keep.has(a.PK));
    try {
      await this.table.transact([
        {
          Put: {
            Item: item,
            ConditionExpression: '#v = :v',
            ExpressionAttributeNames: { '#v': 'version' },
            ExpressionAttributeValues: { ':v': current.version },
          },
        },
        ...this.addressItems(sid, c).map((Item) => ({ Put: { Item } })),
        ...stale.map((a) => ({ Delete: { Key: { PK: a.PK, SK: a.SK } } })),
      ]);
    } catch (error) {
      if (error instanceof ConditionFailed)
        throw new ConflictError(`The client "${id}" was changed at the same time.`);
      throw error;
    }
    return fromItem(m.client, item);
  }

  override async delete(sid: string, id: string) {
    const current = await this.require(sid, id);
    try {
      await this.table.transact([
        { Delete: { Key: this.key(sid, id), ConditionExpression: 'attribute_exists(PK)' } },
        ...this.addressItems(sid, current).map((a) => ({ Delete: { Key: { PK: a.PK, SK: a.SK } } })),
      ]);
    } catch (error) {
      if (error instanceof ConditionFailed) throw new NotFoundError('client', id);
      throw error;
    }
    return current;
  }

  /** Clients ordered by last name, a page at a time. */
  override async page(sid: string, limit = 50, cursor?: string): Promise<Page<Stored<m.Client>>> {
    const page = await this.table.query(
      {
        IndexName: 'GSI1',
        KeyConditionExpression: 'GSI1PK = :pk',
        ExpressionAttributeValues: { ':pk': k.clientListPk(sid) },
        Limit: limit,
      },
      cursor,
    );
    return { items: page.items.map((i) => fromItem(m.client, i)), nextCursor: page.nextCursor };
  }

  /** Ids of the clients that have this address (case-insensitive). */
  async findByAddress(sid: string, address: string): Promise<string[]> {
    const items = await this.table.queryAll<{ clientId: string }>({
      KeyConditionExpression: 'PK = :pk',
      ExpressionAttributeValues: { ':pk': k.addressPk(sid, address) },
    });
    return items.map((i) => i.clientId);
  }
}

/** Per-box lease and failure streak (PK = box partition, SK = STATE). */
export class BoxStateRepository {
  constructor(private readonly table: Table) {}

  private key(sid: string, boxId: string) {
    return { PK: k.boxPk(sid, boxId), SK: 'STATE' };
  }

  async get(sid: string, boxId: string): Promise<m.BoxState> {
    const item = await this.table.get(this.key(sid, boxId));
    return m.boxState.parse(item ? stripKeys(item) : { boxId });
  }

  /**
   * Takes the box's lease for `ms` unless another live run holds it. Returns false when the box is
   * busy, so a second overlapping poll stops without touching the mailbox.
   */
  async acquireLease(
    sid: string,
    boxId: string,
    owner: string,
    ms: number,
    at = Date.now(),
  ): Promise<boolean> {
    try {
      await this.table.update({
        Key: this.key(sid, boxId),
        UpdateExpression: 'SET boxId = :b, leaseOwner = :o, leaseExpiresAt = :exp, lastRunAt = :now',
        ConditionExpression:
          'attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :at OR leaseOwner = :o',
        ExpressionAttributeValues: {
          ':b': boxId,
          ':o': owner,
          ':exp': at + ms,
          ':at': at,
          ':now': new Date(at).toISOString(),
        },
      });
      return true;
    } catch (error) {
      if (error instanceof ConditionFailed) return false;
      throw error;
    }
  }

  async releaseLease(sid: string, boxId: string, owner: string): Promise<void> {
    try {
      await this.table.update({
        Key: this.key(sid, boxId),
        UpdateExpression: 'REMOVE leaseOwner, leaseExpiresAt',
        ConditionExpression: 'leaseOwner = :o',
        ExpressionAttributeValues: { ':o': owner },
      });
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
      // Someone else took over after our lease expired; theirs stays.
    }
  }

  /** Gmail's forwarding confirmation pushed to the box (shown by GET /email-boxes/{id}). */
  async setForwardingConfirmation(
    sid: string,
    boxId: string,
    confirmation: NonNullable<m.BoxState['forwardingConfirmation']>,
  ): Promise<void> {
    await this.table.update({
      Key: this.key(sid, boxId),
      UpdateExpression: 'SET boxId = :b, forwardingConfirmation = :c',
      ExpressionAttributeValues: { ':b': boxId, ':c': confirmation },
    });
  }

  /** Graph: where the box's next delta query starts (lib/graph/session.ts); undefined starts over. */
  async setGraphDelta(sid: string, boxId: string, delta: m.BoxState['graphDelta']): Promise<void> {
    await this.table.update({
      Key: this.key(sid, boxId),
      ...(delta
        ? {
            UpdateExpression: 'SET boxId = :b, graphDelta = :d',
            ExpressionAttributeValues: { ':b': boxId, ':d': delta },
          }
        : {
            UpdateExpression: 'SET boxId = :b REMOVE graphDelta',
            ExpressionAttributeValues: { ':b': boxId },
          }),
    });
  }

  async recordOutcome(sid: string, boxId: string, ok: boolean, alertKind?: string): Promise<m.BoxState> {
    const at = new Date().toISOString();
    const out = await this.table.update({
      Key: this.key(sid, boxId),
      UpdateExpression: ok
        ? 'SET boxId = :b, consecutiveFailures = :zero, lastSuccessAt = :at REMOVE lastAlertKind'
        : 'SET boxId = :b, consecutiveFailures = if_not_exists(consecutiveFailures, :zero) + :one, lastAlertKind = :k',
      ExpressionAttributeValues: ok
        ? { ':b': boxId, ':zero': 0, ':at': at }
        : { ':b': boxId, ':zero': 0, ':one': 1, ':k': alertKind ?? 'unknown' },
    });
    return m.boxState.parse(stripKeys(out ?? { boxId }));
  }
}

/** Poll runs of a box, newest first (PK = box partition, SK = RUN#startedAt#id). */
export class RunRepository {
  constructor(private readonly table: Table) {}

  /**
   * Writes the run. A `running` run also gets its id lookup (`RUNID#<id>` → its start), so that
   * GET /email-boxes/{id}/runs/{runId} finds it without knowing when it started.
   */
  async put(sid: string, r: m.Run): Promise<void> {
    const parsed = m.run.parse(r);
    const item = { ...parsed, PK: k.boxPk(sid, r.boxId), SK: `RUN#${r.startedAt}#${r.id}`, entity: 'RUN' };
    if (parsed.status !== 'running') return this.table.put(item);
    await this.table.transact([
      { Put: { Item: item } },
      {
        Put: {
          Item: { PK: item.PK, SK: `RUNID#${r.id}`, entity: 'RUNID', runId: r.id, startedAt: r.startedAt },
        },
      },
    ]);
  }

  /** One run by its id; undefined when the box has no such run. */
  async get(sid: string, boxId: string, runId: string): Promise<m.Run | undefined> {
    const pointer = await this.table.get<{ startedAt: string }>({
      PK: k.boxPk(sid, boxId),
      SK: `RUNID#${runId}`,
    });
    if (!pointer) return undefined;
    const item = await this.table.get({ PK: k.boxPk(sid, boxId), SK: `RUN#${pointer.startedAt}#${runId}` });
    return item ? m.run.parse(stripKeys(item)) : undefined;
  }

  async list(sid: string, boxId: string, limit = 20, cursor?: string): Promise<Page<m.Run>> {
    const page = await this.table.query(
      {
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :sk)',
        ExpressionAttributeValues: { ':pk': k.boxPk(sid, boxId), ':sk': 'RUN#' },
        ScanIndexForward: false,
        Limit: limit,
      },
      cursor,
    );
    return { items: page.items.map((i) => m.run.parse(stripKeys(i))), nextCursor: page.nextCursor };
  }
}

/**
 * Messages in and out. The item is small metadata; bodies and raw MIME live in the blob store.
 * GSI1 lists a client's timeline or the unassigned/quarantined lists by date; GSI2 lists a thread.
 * A lookup item per Message-ID header lets replies find their thread.
 */
export class MessageRepository {
  constructor(private readonly table: Table) {}

  private item(sid: string, msg: m.Message) {
    const listPk =
      msg.status === 'quarantined'
        ? k.quarantinePk(sid)
        : msg.clientId
          ? k.clientTimelinePk(sid, msg.clientId)
          : k.unassignedPk(sid);
    return {
      ...msg,
      PK: k.messagePk(sid, msg.id),
      SK: 'MSG',
      entity: 'MSG',
      GSI1PK: listPk,
      GSI1SK: `${msg.date}#${msg.id}`,
      GSI2PK: k.threadPk(sid, msg.threadId),
      GSI2SK: `${msg.date}#${msg.id}`,
      // Mail a box received, listed by box and state (GET /email-boxes/{id}/messages).
      ...(msg.direction === 'in' && msg.boxId && (msg.status === 'imported' || msg.status === 'quarantined')
        ? { GSI3PK: k.boxMailPk(sid, msg.boxId, msg.status), GSI3SK: `${msg.date}#${msg.id}` }
        : {}),
    };
  }

  /** Writes for a new message: the message and its Message-ID lookup, created together or not at all. */
  createWrites(sid: string, msg: m.Message) {
    const parsed = m.message.parse(msg);
    const writes: TxItem[] = [
      { Put: { Item: this.item(sid, parsed), ConditionExpression: 'attribute_not_exists(PK)' } },
    ];
    // A message the provider renamed (SES) is found under either Message-ID.
    const ids = [parsed.messageId, parsed.providerMessageId].filter((v): v is string => Boolean(v));
    for (const messageId of new Set(ids.map((v) => v.toLowerCase()))) {
      writes.push({
        Put: {
          Item: {
            PK: k.messageIdPk(sid, messageId),
            SK: `MSG#${parsed.id}`,
            entity: 'MID',
            id: parsed.id,
            threadId: parsed.threadId,
            clientId: parsed.clientId,
            direction: parsed.direction,
            boxId: parsed.boxId,
            contentHash: parsed.contentHash,
          },
        },
      });
    }
    return writes;
  }

  async create(sid: string, msg: m.Message): Promise<m.Message> {
    try {
      await this.table.transact(this.createWrites(sid, msg));
    } catch (error) {
      if (error instanceof ConditionFailed)
        throw new ConflictError(`A message with id "${msg.id}" already exists.`);
      throw error;
    }
    return m.message.parse(msg);
  }

  /** Overwrites the metadata (status change, reprocessing, client assignment). */
  async save(sid: string, msg: m.Message): Promise<void> {
    await this.table.put(this.item(sid, m.message.parse(msg)), { expression: 'attribute_exists(PK)' });
  }

  /**
   * Overwrites the metadata and (re)writes its Message-ID lookup, together, with `extra` writes
   * (a task); `onlyIfStatus` makes it fail (ConditionFailed) when the stored status differs.
   */
  async reindex(
    sid: string,
    msg: m.Message,
    options: { onlyIfStatus?: m.Message['status']; extra?: TxItem[] } = {},
  ): Promise<void> {
    const [, ...lookups] = this.createWrites(sid, msg);
    const condition = options.onlyIfStatus
      ? {
          ConditionExpression: 'attribute_exists(PK) AND #status = :status',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':status': options.onlyIfStatus },
        }
      : { ConditionExpression: 'attribute_exists(PK)' };
    await this.table.transact([
      { Put: { Item: this.item(sid, m.message.parse(msg)), ...condition } },
      ...lookups,
      ...(options.extra ?? []),
    ]);
  }

  async get(sid: string, id: string): Promise<m.Message | undefined> {
    const item = await this.table.get({ PK: k.messagePk(sid, id), SK: 'MSG' });
    return item ? m.message.parse(stripKeys(item)) : undefined;
  }

  async require(sid: string, id: string): Promise<m.Message> {
    const found = await this.get(sid, id);
    if (!found) throw new NotFoundError('message', id);
    return found;
  }

  /** Messages we know under this Message-ID header (several when a sender reused one). */
  async findByMessageId(
    sid: string,
    messageId: string,
  ): Promise<
    {
      id: string;
      threadId: string;
      clientId?: string;
      direction: 'in' | 'out';
      boxId?: string;
      contentHash?: string;
    }[]
  > {
    return this.table.queryAll({
      KeyConditionExpression: 'PK = :pk',
      ExpressionAttributeValues: { ':pk': k.messageIdPk(sid, messageId) },
    });
  }

  private async listBy(pk: string, limit: number, cursor?: string): Promise<Page<m.Message>> {
    const page = await this.table.query(
      {
        IndexName: 'GSI1',
        KeyConditionExpression: 'GSI1PK = :pk',
        ExpressionAttributeValues: { ':pk': pk },
        ScanIndexForward: false,
        Limit: limit,
      },
      cursor,
    );
    return { items: page.items.map((i) => m.message.parse(stripKeys(i))), nextCursor: page.nextCursor };
  }

  listForClient(sid: string, clientId: string, limit = 50, cursor?: string) {
    return this.listBy(k.clientTimelinePk(sid, clientId), limit, cursor);
  }
  listUnassigned(sid: string, limit = 50, cursor?: string) {
    return this.listBy(k.unassignedPk(sid), limit, cursor);
  }
  listQuarantined(sid: string, limit = 50, cursor?: string) {
    return this.listBy(k.quarantinePk(sid), limit, cursor);
  }
  /**
   * A box's incoming mail that was imported, or quarantined, newest first. Quarantined mail also
   * has markers without a message (failed three runs, or the server cannot send it).
   */
  async listForBox(
    sid: string,
    boxId: string,
    state: 'imported' | 'quarantined',
    limit = 50,
    cursor?: string,
  ): Promise<Page<m.Message | ImportMarker>> {
    const page = await this.table.query(boxMailQuery(sid, boxId, state, limit), cursor);
    const items = await this.table.itemsOf(page.items, {
      attribute: 'GSI3PK',
      value: k.boxMailPk(sid, boxId, state),
    });
    return {
      items: items.map((i) => (i.entity === 'UIDL' ? markerOf(i) : m.message.parse(stripKeys(i)))),
      nextCursor: page.nextCursor,
    };
  }

  async listThread(sid: string, threadId: string): Promise<m.Message[]> {
    const keys = await this.table.queryAll({
      IndexName: 'GSI2',
      KeyConditionExpression: 'GSI2PK = :pk',
      ExpressionAttributeValues: { ':pk': k.threadPk(sid, threadId) },
    });
    return (await this.table.itemsOf(keys, { attribute: 'GSI2PK', value: k.threadPk(sid, threadId) })).map(
      (i) => m.message.parse(stripKeys(i)),
    );
  }
}

/** What GET /tasks filters on; the assignee is the task's `userId`. */
export interface TaskFilter {
  clientId?: string;
  statusId?: string;
  userId?: string;
  boxId?: string;
}

/** Tasks, listed newest first per studio through GSI1. */
export class TaskRepository {
  constructor(private readonly table: Table) {}

  createWrite(sid: string, t: m.Task, at = now()) {
    const parsed = m.task.parse(t);
    return {
      Put: {
        Item: {
          ...parsed,
          createdAt: at,
          PK: k.taskPk(sid, parsed.id),
          SK: 'TASK',
          entity: 'TASK',
          GSI1PK: k.taskListPk(sid),
          GSI1SK: `${at}#${parsed.id}`,
        },
        ConditionExpression: 'attribute_not_exists(PK)',
      },
    };
  }

  async create(sid: string, t: m.Task): Promise<m.Task & { createdAt: string }> {
    const write = this.createWrite(sid, t);
    try {
      await this.table.transact([write]);
    } catch (error) {
      if (error instanceof ConditionFailed)
        throw new ConflictError(`A task with id "${t.id}" already exists.`);
      throw error;
    }
    return { ...m.task.parse(t), createdAt: write.Put.Item.createdAt };
  }

  /** Tasks newest first; `filter` keeps those whose fields equal every value given. */
  async list(
    sid: string,
    limit = 50,
    cursor?: string,
    filter: TaskFilter = {},
  ): Promise<Page<m.Task & { createdAt: string }>> {
    const given = Object.entries(filter).filter(([, v]) => v !== undefined) as [string, string][];
    const query = {
      IndexName: 'GSI1',
      KeyConditionExpression: 'GSI1PK = :pk',
      ExpressionAttributeValues: {
        ':pk': k.taskListPk(sid),
        ...Object.fromEntries(given.map(([f, v]) => [`:${f}`, v])),
      },
      ScanIndexForward: false,
    };
    const page =
      given.length === 0
        ? await this.table.query({ ...query, Limit: limit }, cursor)
        : await this.table.queryFiltered(
            {
              ...query,
              FilterExpression: given.map(([f]) => `#${f} = :${f}`).join(' AND '),
              ExpressionAttributeNames: Object.fromEntries(given.map(([f]) => [`#${f}`, f])),
            },
            limit,
            cursor,
            ['PK', 'SK', 'GSI1PK', 'GSI1SK'],
          );
    return {
      items: page.items.map((i) => ({ ...m.task.parse(stripKeys(i)), createdAt: String(i.createdAt) })),
      nextCursor: page.nextCursor,
    };
  }
}

function stripKeys(item: Item): Item {
  const rest = { ...item };
  for (const a of KEY_ATTRS) delete rest[a];
  return rest;
}

/** The listed fields of a UIDL marker item. */
function markerOf(i: Item): ImportMarker {
  const marker = i as unknown as ImportMarker;
  return {
    uidl: marker.uidl,
    state: marker.state,
    messageId: marker.messageId,
    sha256: marker.sha256,
    attempts: marker.attempts,
    reason: marker.reason,
    at: marker.at,
  };
}

/** One page of a box's mail in one state, newest first (sparse GSI3: messages and markers). */
function boxMailQuery(sid: string, boxId: string, state: string, limit: number) {
  return {
    IndexName: 'GSI3',
    KeyConditionExpression: 'GSI3PK = :pk',
    ExpressionAttributeValues: { ':pk': k.boxMailPk(sid, boxId, state) },
    ScanIndexForward: false,
    Limit: limit,
  };
}

export interface ImportMarker {
  uidl: string;
  /**
   * `imported`: stored and recorded (maybe as quarantined); `duplicate`: the same bytes were
   * imported before; `excluded`: dated before the box's cut-off (`excludeBefore` says which),
   * left alone; `failed`: a run could not take it (`attempts` so far), retried; `quarantined`:
   * it failed MAX_ATTEMPTS runs, or the server cannot send it — skipped, never deleted.
   */
  state: 'imported' | 'excluded' | 'duplicate' | 'failed' | 'quarantined';
  messageId?: string;
  sha256?: string;
  /** The message's size in the server's LIST when it was stored: a different size is another message. */
  size?: number;
  /** The cut-off an `excluded` marker was decided against; another cut-off decides again. */
  excludeBefore?: string;
  attempts?: number;
  reason?: string;
  at: string;
}

/** Markers a new import may overwrite: neither stands for a stored message. */
const OVERWRITABLE = ['failed', 'excluded'];

/**
 * What a box has already taken from its server: one marker per UIDL of one mailbox identity
 * (server, port, user name: a box pointed elsewhere starts fresh) and one per content hash, in
 * the box's partition. Written in the same transaction as the message, so a message is either
 * imported and marked, or neither.
 */
export class ImportMarkerRepository {
  constructor(private readonly table: Table) {}

  private uidlKey(sid: string, boxId: string, identity: string, uidl: string) {
    return { PK: k.boxPk(sid, boxId), SK: `UIDL#${identity}#${uidl}` };
  }
  private hashKey(sid: string, boxId: string, sha256: string) {
    return { PK: k.boxPk(sid, boxId), SK: `HASH#${sha256}` };
  }

  async findUidls(
    sid: string,
    boxId: string,
    identity: string,
    uidls: string[],
  ): Promise<Map<string, ImportMarker>> {
    const items = await this.table.batchGet<ImportMarker>(
      uidls.map((u) => this.uidlKey(sid, boxId, identity, u)),
    );
    return new Map(items.map((i) => [i.uidl, i]));
  }

  async findHash(sid: string, boxId: string, sha256: string): Promise<{ messageId: string } | undefined> {
    return this.table.get(this.hashKey(sid, boxId, sha256));
  }

  /**
   * The UIDL marker write; fails the transaction if another run recorded the message first.
   * Excluded and duplicate mail has no message record: its marker is what
   * GET /email-boxes/{id}/messages lists (sparse GSI3).
   */
  uidlWrite(sid: string, boxId: string, identity: string, marker: ImportMarker): TxItem {
    const listed =
      marker.state === 'excluded' || marker.state === 'duplicate' || marker.state === 'quarantined'
        ? { GSI3PK: k.boxMailPk(sid, boxId, marker.state), GSI3SK: `${marker.at}#${marker.uidl}` }
        : {};
    return {
      Put: {
        Item: { ...this.uidlKey(sid, boxId, identity, marker.uidl), entity: 'UIDL', ...marker, ...listed },
        ConditionExpression: 'attribute_not_exists(PK) OR #state IN (:s0, :s1)',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':s0': OVERWRITABLE[0], ':s1': OVERWRITABLE[1] },
      },
    };
  }

  hashWrite(sid: string, boxId: string, sha256: string, messageId: string): TxItem {
    return {
      Put: {
        Item: { ...this.hashKey(sid, boxId, sha256), entity: 'HASH', sha256, messageId },
        ConditionExpression: 'attribute_not_exists(PK)',
      },
    };
  }

  /** A page of a box's excluded or duplicate mail (their markers), newest first. */
  async listState(
    sid: string,
    boxId: string,
    state: 'excluded' | 'duplicate',
    limit = 50,
    cursor?: string,
  ): Promise<Page<ImportMarker>> {
    const page = await this.table.query(boxMailQuery(sid, boxId, state, limit), cursor);
    const items = await this.table.itemsOf(page.items, {
      attribute: 'GSI3PK',
      value: k.boxMailPk(sid, boxId, state),
    });
    return { items: items.map(markerOf), nextCursor: page.nextCursor };
  }

  async mark(sid: string, boxId: string, identity: string, marker: ImportMarker): Promise<void> {
    try {
      await this.table.transact([this.uidlWrite(sid, boxId, identity, marker)]);
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
    }
  }
}

/** Per-sender daily auto-reply counters and per-message auto-reply claims. */
export class AutoReplyRepository {
  constructor(private readonly table: Table) {}

  /**
   * Counts one more reply to `address` today, unless `cap` is reached (then false). The counter
   * expires after two days.
   */
  async takeDailySlot(
    sid: string,
    address: string,
    day: string,
    cap: number,
    nowMs = Date.now(),
  ): Promise<boolean> {
    try {
      await this.table.update({
        Key: { PK: `ST#${sid}#AUTOREPLY#${address.toLowerCase()}`, SK: day },
        UpdateExpression: 'SET #c = if_not_exists(#c, :zero) + :one, #ttl = :ttl',
        ConditionExpression: 'attribute_not_exists(#c) OR #c < :cap',
        ExpressionAttributeNames: { '#c': 'count', '#ttl': 'ttl' },
        ExpressionAttributeValues: {
          ':zero': 0,
          ':one': 1,
          ':cap': cap,
          ':ttl': Math.floor(nowMs / 1000) + 2 * 86400,
        },
      });
      return true;
    } catch (error) {
      if (error instanceof ConditionFailed) return false;
      throw error;
    }
  }

  /** Claims the right to auto-reply to a message once; false if already claimed. */
  async claim(sid: string, messageId: string): Promise<boolean> {
    try {
      await this.table.put(
        {
          PK: k.messagePk(sid, messageId),
          SK: 'AUTOREPLY',
          entity: 'AUTOREPLY',
          at: new Date().toISOString(),
        },
        { expression: 'attribute_not_exists(PK)' },
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionFailed) return false;
      throw error;
    }
  }
}

/** Where a receiving address's mail goes: one claim per local part across the deployment. */
export interface ReceivingClaim {
  studioId: string;
  boxId: string;
}

/**
 * Email boxes, each with a deployment-wide claim on its receiving address when it takes pushed
 * mail (lib/domain/receiving.ts), written in the same transaction as the box: two boxes never
 * share an address, and a box without push leaves no address that still routes to it.
 */
export class EmailBoxRepository extends RefRepository<typeof m.emailBox> {
  constructor(table: Table) {
    super(table, 'BOX', m.emailBox, 'email box');
  }

  private claimKey(localPart: string) {
    return { PK: `RECV#${localPart}`, SK: 'CLAIM' };
  }

  /** The local part a box claims, or undefined when it takes no pushed mail. */
  private claimed(sid: string, box: m.EmailBox): string | undefined {
    return takesPush(box.intake) ? receivingLocalPart(sid, box.id, box.receivingLocalPart) : undefined;
  }

  private takenError(localPart: string) {
    return new ConflictError(
      `The receiving address "${localPart}" is taken by another email box; choose another receivingLocalPart.`,
    );
  }

  /** The box a receiving local part belongs to, if any. */
  async routeOf(localPart: string): Promise<ReceivingClaim | undefined> {
    const item = await this.table.get<ReceivingClaim>(this.claimKey(localPart.toLowerCase()));
    return item ? { studioId: item.studioId, boxId: item.boxId } : undefined;
  }

  override async create(sid: string, id: string, value: z.input<typeof m.emailBox>) {
    const claim = this.claimed(sid, m.emailBox.parse({ ...value, id }));
    try {
      return await super.create(sid, id, value, claim ? [this.claimPut(sid, id, claim)] : []);
    } catch (error) {
      // The box's own condition failed (it exists), or the claim's (another box has the address).
      if (!(error instanceof ConflictError) || !claim || (await this.get(sid, id))) throw error;
      throw this.takenError(claim);
    }
  }

  override async replace(
    sid: string,
    id: string,
    value: z.input<typeof m.emailBox>,
    expectedVersion?: number,
  ) {
    const current = await this.require(sid, id);
    const before = this.claimed(sid, current);
    const after = this.claimed(sid, m.emailBox.parse({ ...value, id }));
    const claims =
      before === after
        ? []
        : [
            ...(before ? [this.claimDelete(sid, id, before)] : []),
            ...(after ? [this.claimPut(sid, id, after)] : []),
          ];
    try {
      return await super.replace(sid, id, value, expectedVersion, claims);
    } catch (error) {
      if (!(error instanceof ConflictError) || !after || claims.length === 0) throw error;
      // The version still stands: it was the claim that failed.
      if ((await this.get(sid, id))?.version !== current.version) throw error;
      throw this.takenError(after);
    }
  }

  override async delete(sid: string, id: string) {
    const current = await this.require(sid, id);
    const claim = this.claimed(sid, current);
    try {
      await this.table.transact([
        { Delete: { Key: this.key(sid, id), ConditionExpression: 'attribute_exists(PK)' } },
        ...(claim ? [this.claimDelete(sid, id, claim)] : []),
      ]);
    } catch (error) {
      if (error instanceof ConditionFailed) throw new NotFoundError(this.label, id);
      throw error;
    }
    return current;
  }

  private claimPut(sid: string, boxId: string, localPart: string): TxItem {
    return {
      Put: {
        Item: { ...this.claimKey(localPart), entity: 'RECVCLAIM', studioId: sid, boxId },
        // Free, or already this box's (a retried save).
        ConditionExpression: 'attribute_not_exists(PK) OR (studioId = :sid AND boxId = :box)',
        ExpressionAttributeValues: { ':sid': sid, ':box': boxId },
      },
    };
  }

  private claimDelete(sid: string, boxId: string, localPart: string): TxItem {
    return {
      Delete: {
        Key: this.claimKey(localPart),
        // Only this box's claim; one that is already gone is fine.
        ConditionExpression: 'attribute_not_exists(PK) OR (studioId = :sid AND boxId = :box)',
        ExpressionAttributeValues: { ':sid': sid, ':box': boxId },
      },
    };
  }
}

/** Every repository, built once over one Table. */
/**
 * Sender identities: the studio's record plus an account-wide owner claim per identity (SES
 * identities are account-wide), written in one transaction, so one studio can never claim a
 * domain or address another studio holds.
 */
export class SenderIdentityRepository extends RefRepository<typeof m.senderIdentity> {
  constructor(table: Table) {
    super(table, 'SENDERID', m.senderIdentity, 'sender identity');
  }

  private ownerKey(identity: string) {
    return { PK: `SENDERID#${identity}`, SK: 'OWNER' };
  }

  /** The studio that holds `identity`, if any. */
  async ownerOf(identity: string): Promise<string | undefined> {
    const item = await this.table.get<{ studioId: string }>(this.ownerKey(identity));
    return item?.studioId;
  }

  async createClaimed(sid: string, value: m.SenderIdentity): Promise<Stored<m.SenderIdentity>> {
    const at = now();
    const item = {
      ...m.senderIdentity.parse(value),
      ...this.key(sid, value.id),
      entity: this.kind,
      version: 1,
      createdAt: at,
      updatedAt: at,
    };
    try {
      await this.table.transact([
        { Put: { Item: item, ConditionExpression: 'attribute_not_exists(PK)' } },
        {
          Put: {
            Item: { ...this.ownerKey(value.identity), entity: 'SENDEROWNER', studioId: sid },
            ConditionExpression: 'attribute_not_exists(PK)',
          },
        },
      ]);
    } catch (error) {
      if (error instanceof ConditionFailed)
        throw new ConflictError(`The sender identity "${value.identity}" is already registered.`);
      throw error;
    }
    return fromItem(this.schema, item);
  }

  async deleteClaimed(sid: string, current: m.SenderIdentity): Promise<void> {
    await this.table.transact([
      { Delete: { Key: this.key(sid, current.id), ConditionExpression: 'attribute_exists(PK)' } },
      {
        Delete: {
          Key: this.ownerKey(current.identity),
          ConditionExpression: 'studioId = :sid',
          ExpressionAttributeValues: { ':sid': sid },
        },
      },
    ]);
  }
}

export function makeRepositories(table: Table) {
  return {
    table,
    companyEmail: new RefRepository(table, 'SETTINGS', m.companyEmailSettings, 'company email settings'),
    userEmail: new RefRepository(table, 'USEREMAIL', m.userEmailSettings, 'user email settings'),
    departments: new RefRepository(table, 'DEPT', m.department, 'department'),
    users: new RefRepository(table, 'USER', m.user, 'user'),
    signatures: new RefRepository(table, 'SIG', m.signature, 'signature'),
    taskTypes: new RefRepository(table, 'TASKTYPE', m.lookup, 'task type'),
    taskStatuses: new RefRepository(table, 'TASKSTATUS', m.lookup, 'task status'),
    emailTypes: new RefRepository(table, 'EMAILTYPE', m.lookup, 'email type'),
    emailStatuses: new RefRepository(table, 'EMAILSTATUS', m.lookup, 'email status'),
    formLetters: new RefRepository(table, 'FORMLETTER', m.formLetter, 'form letter'),
    emailBoxes: new EmailBoxRepository(table),
    clients: new ClientRepository(table),
    boxState: new BoxStateRepository(table),
    runs: new RunRepository(table),
    messages: new MessageRepository(table),
    tasks: new TaskRepository(table),
    importMarkers: new ImportMarkerRepository(table),
    autoReplies: new AutoReplyRepository(table),
    senderIdentities: new SenderIdentityRepository(table),
  };
}
export type Repositories = ReturnType<typeof makeRepositories>;
