/**
 * One poll of one email box: the seed's Email Inbox Processor. Store first, then act:
 *   1. RETR streams the raw bytes into the blob store (hashed on the way);
 *   2. the stored copy is parsed (bodies and attachments streamed to the blob store);
 *   3. message, Message-ID lookup, UIDL and content-hash markers and the task are written in one
 *      DynamoDB transaction — the message is imported and marked, or neither;
 *   4. only then: the auto-reply; and, once retrieval is over, DELE (committed by QUIT) for what
 *      is stored, when the box does not leave mail on the server.
 * A connection cut anywhere loses nothing (DELE is uncommitted, the markers say what is done)
 * and duplicates nothing (markers are checked first and written conditionally).
 */
import { createHash, randomUUID } from 'node:crypto';
import { pipeline, type Readable, Transform } from 'node:stream';
import type { Deps } from '#lib/app/deps';
import { ConditionFailed } from '#lib/data/table';
import {
  automaticReason,
  autoReplyTargets,
  decideActions,
  matchThread,
  referencedIds,
} from '#lib/domain/inbound';
import { type EmailBox, type Message, type Run, type RunCounts, runCounts } from '#lib/domain/model';
import { type ScheduleWindow, scheduledRunCheck } from '#lib/domain/schedule';
import type { Pop3Client } from '#lib/pop3/client';
import { describeFailure, type Failure } from './failures.ts';
import { type ParsedMessage, parsedFields, parseStored, UnparseableMessageError } from './parse.ts';

export interface PollRequest {
  studioId: string;
  boxId: string;
  trigger: 'schedule' | 'manual';
  /** The window the schedule carried; re-checked here, so an admin's console edit is honoured. */
  window?: ScheduleWindow;
  /** Scheduler's `<aws.scheduler.scheduled-time>`; the window is checked at this minute. */
  scheduledTime?: string;
  /** Stop starting new messages after this long (below the Lambda timeout). */
  budgetMs: number;
  /**
   * The run record to carry on (created `running` by the API before its 202, or by the invocation
   * this one continues): its id, start and counts are kept, and it holds the lease under its id.
   */
  run?: Run;
}

export interface AutoReplyRequest {
  studioId: string;
  box: EmailBox;
  inbound: Message;
  to: string[];
}

export interface PollPorts {
  /** Connects and logs in to the box's server. */
  open(box: EmailBox, password: string): Promise<Pop3Client>;
  /** Sends one auto-reply; resolves once the transport accepted it. */
  autoReply?(request: AutoReplyRequest): Promise<unknown>;
  /** Replies per sender address per day (a loop guard). Default 3. */
  dailyReplyCap?: number;
  /** Messages at most this size are fetched pipelined into memory; larger ones stream. Default 1 MB. */
  inMemoryLimit?: number;
  /** Called after each message with the live run (lib/inbox/service.ts persists its counts). */
  progress?(run: Run): Promise<void>;
  /**
   * Called, with the run stored still `running`, when the budget ran out: true when a next
   * invocation carries the run on (it stays `running` and keeps the lease), false to end it `partial`.
   */
  continueRun?(run: Run): Promise<boolean>;
}

export type PollStatus = 'succeeded' | 'partial' | 'failed' | 'busy' | 'skipped' | 'running';

export interface PollOutcome {
  status: PollStatus;
  run?: Run;
  /** Errors of the run, including those the run record only counts (see MAX_RUN_ERRORS). */
  errorCount?: number;
  reason?: string;
  failure?: Failure;
  /** The budget ran out and a next invocation carries the run on (status `running`). */
  continued?: boolean;
}

const emptyCounts = (): RunCounts => runCounts.parse({});

/** "Email from Ana Ruiz: Prices?", short enough for a list however long the headers are. */
export function taskTitle(from: { name?: string; address: string } | undefined, subject: string): string {
  return `Email from ${from?.name || from?.address || 'unknown sender'}: ${subject || '(no subject)'}`.slice(
    0,
    300,
  );
}

/** Run errors kept in the run record (a DynamoDB item: 400 KB at most); the rest are counted. */
export const MAX_RUN_ERRORS = 100;

/** Collects a run's errors; past MAX_RUN_ERRORS the last entry only counts the ones left out. */
function errorList(run: Run) {
  let omitted = 0;
  return {
    add(error: { kind: string; message: string }): void {
      if (run.errors.length < MAX_RUN_ERRORS - 1) {
        run.errors.push(error);
        return;
      }
      omitted++;
      run.errors[MAX_RUN_ERRORS - 1] = {
        kind: 'more-errors',
        message: `${omitted} more error(s) not listed; the counts include them.`,
      };
    },
    /** Every error the run had, listed or not. */
    get total(): number {
      return run.errors.length + (omitted > 0 ? omitted - 1 : 0);
    },
  };
}

export async function pollBox(d: Deps, request: PollRequest, ports: PollPorts): Promise<PollOutcome> {
  const { studioId: sid, boxId } = request;
  const box = await d.repos.emailBoxes.get(sid, boxId);
  if (!box) return { status: 'skipped', reason: `The email box "${boxId}" no longer exists.` };

  // A continued run was due when it began.
  if (request.trigger === 'schedule' && !request.run) {
    // The input's window (a console edit wins), else the stored one; at Scheduler's scheduled minute.
    const check = scheduledRunCheck(request, box.schedule, d.now());
    if (!check.due) return { status: 'skipped', reason: check.reason };
  }
  if (box.connection.type !== 'pop3') {
    return {
      status: 'skipped',
      reason: 'Only POP3 boxes can be polled; the Exchange connector is not available yet.',
    };
  }

  const runId = request.run?.id ?? randomUUID();
  const started = request.run ? new Date(request.run.startedAt) : d.now();
  // The budget is real elapsed time (the Lambda timeout is), whatever clock d.now() reads.
  const deadline = Date.now() + request.budgetMs;
  // The lease outlives the budget by a margin, so a run that overruns still keeps others out.
  if (
    !(await d.repos.boxState.acquireLease(sid, boxId, runId, request.budgetMs + 60_000, d.now().getTime()))
  ) {
    return { status: 'busy', reason: 'Another poll of this box is running.' };
  }
  const run: Run = {
    id: runId,
    boxId,
    startedAt: started.toISOString(),
    trigger: request.trigger,
    counts: emptyCounts(),
    errors: [],
    ...request.run,
    status: 'running',
  };
  const errors = errorList(run);
  await d.repos.runs.put(sid, run);
  const log = d.logger.createChild({ persistentLogAttributes: { studioId: sid, boxId, runId } });

  let client: Pop3Client | undefined;
  let failure: Failure | undefined;
  let outOfTime = false;
  let continued = false;
  try {
    const password = await d.secrets.get(box.connection.passwordRef);
    client = await ports.open(box, password);
    const own = await ownAddresses(d, sid, box);
    outOfTime = await importAll(d, { sid, own, box, client, run, errors, deadline, ports, log });
    // QUIT commits the DELEs; without it (a cut) the server keeps every message.
    await client.quit();
  } catch (error) {
    failure = describeFailure(error, box.connection);
    // Always listed, even past the cap: it is why the run failed.
    run.errors.push({ kind: failure.kind, message: failure.message });
    log.warn('poll failed', { kind: failure.kind, errorMessage: failure.message });
    client?.close();
  } finally {
    // The budget ran out: a next invocation may carry the run on, under its id and lease.
    if (!failure && outOfTime && ports.continueRun) {
      try {
        await d.repos.runs.put(sid, run);
        continued = await ports.continueRun(run);
      } catch (error) {
        log.warn('could not continue the run', { errorMessage: (error as Error).message });
      }
    }
    if (!continued) {
      run.finishedAt = d.now().toISOString();
      run.status = failure ? 'failed' : outOfTime || run.errors.length > 0 ? 'partial' : 'succeeded';
      try {
        await d.repos.runs.put(sid, run);
        await d.repos.boxState.recordOutcome(sid, boxId, !failure, failure?.kind);
      } finally {
        // Whatever happened to the record, the next run must not wait for the lease to expire.
        await d.repos.boxState.releaseLease(sid, boxId, runId);
      }
    }
  }
  if (continued) return { status: 'running', run, errorCount: errors.total, continued };
  return { status: run.status as PollStatus, run, errorCount: errors.total, failure };
}

interface ImportContext {
  sid: string;
  /** The studio's own addresses (box, company, users): never auto-replied to. Read once per run. */
  own: string[];
  box: EmailBox;
  client: Pop3Client;
  run: Run;
  errors: ReturnType<typeof errorList>;
  deadline: number;
  ports: PollPorts;
  log: Deps['logger'];
}

/**
 * Imports every new message in server order; returns true when the time budget ran out first.
 * Runs of small messages come pipelined, each large one streams on its own in between.
 * DELEs wait until retrieval is over: one sent while pipelined RETRs are still unread would be
 * answered only after them, and their reader is the loop waiting for that answer (a deadlock
 * until the idle timeout). POP3 commits DELEs only at QUIT anyway.
 */
async function importAll(d: Deps, ctx: ImportContext): Promise<boolean> {
  const { sid, box, client, run } = ctx;
  const uidls = await client.uidl();
  const sizes = new Map((await client.list()).map((l) => [l.id, l.size]));
  run.counts.seen = uidls.length;
  const known = await d.repos.importMarkers.findUidls(
    sid,
    box.id,
    uidls.map((u) => u.uid),
  );

  const stored: number[] = [];
  const fresh: { id: number; uid: string }[] = [];
  for (const u of uidls) {
    const marker = known.get(u.uid);
    if (!marker) {
      fresh.push(u);
      continue;
    }
    run.counts.skipped++;
    // Imported before but not deleted (the last run was cut before QUIT): delete it now.
    if (marker.state !== 'excluded') stored.push(u.id);
  }

  const outOfTime = await importFresh(d, ctx, fresh, sizes, stored);
  if (!box.leaveOnServer) await client.deleMany(stored, { window: 16 });
  return outOfTime;
}

/**
 * Marks the new messages dated before the box's cut-off as excluded and imports the others, in
 * server order; adds to `stored` what may be deleted. Returns true when the budget ran out first.
 */
async function importFresh(
  d: Deps,
  ctx: ImportContext,
  fresh: { id: number; uid: string }[],
  sizes: Map<number, number>,
  stored: number[],
): Promise<boolean> {
  const { sid, box, client, run } = ctx;
  const excluded = box.excludeBefore
    ? await excludedByDate(client, fresh, box.excludeBefore)
    : new Set<number>();
  for (const u of fresh.filter((f) => excluded.has(f.id))) {
    // A first poll of a full mailbox may exclude thousands: the budget holds here too.
    if (Date.now() >= ctx.deadline) return true;
    await d.repos.importMarkers.mark(sid, box.id, {
      uidl: u.uid,
      state: 'excluded',
      at: d.now().toISOString(),
    });
    run.counts.skipped++;
    await ctx.ports.progress?.(run);
  }

  const wanted = fresh.filter((u) => !excluded.has(u.id));
  const uidOf = new Map(wanted.map((u) => [u.id, u.uid]));
  const limit = ctx.ports.inMemoryLimit ?? 1_000_000;
  // A size LIST did not give is treated as large: streamed, never held whole.
  const isLarge = (id: number) => (sizes.get(id) ?? Number.POSITIVE_INFINITY) > limit;
  for (let i = 0; i < wanted.length; ) {
    if (Date.now() >= ctx.deadline) return true;
    const first = wanted[i]!;
    if (isLarge(first.id)) {
      i++;
      const raw = await storeRaw(d, ctx, first.uid, await client.retrStream(first.id));
      if (await importOne(d, ctx, { uid: first.uid, ...raw })) stored.push(first.id);
      await ctx.ports.progress?.(run);
      continue;
    }
    const batch: number[] = [];
    for (; i < wanted.length && !isLarge(wanted[i]!.id); i++) batch.push(wanted[i]!.id);
    // Leaving this loop early (budget, error) returns the generator, which drains what is in flight.
    for await (const { id, data } of client.retrMany(batch, { window: 16 })) {
      const uid = uidOf.get(id) ?? '';
      const raw = await storeRaw(d, ctx, uid, data);
      if (await importOne(d, ctx, { uid, ...raw, copy: data })) stored.push(id);
      await ctx.ports.progress?.(run);
      if (Date.now() >= ctx.deadline && id !== batch.at(-1)) return true;
    }
  }
  return false;
}

/**
 * Stores the raw bytes under a key derived from the UIDL (a retried import overwrites, never
 * adds), hashing them on the way. A stream that fails (the connection drops) fails the store.
 */
async function storeRaw(
  d: Deps,
  ctx: ImportContext,
  uid: string,
  body: Buffer | Readable,
): Promise<{ rawKey: string; sha256: string }> {
  const rawKey = `raw/${ctx.sid}/${ctx.box.id}/${createHash('sha256').update(uid).digest('hex').slice(0, 32)}.eml`;
  if (Buffer.isBuffer(body)) {
    await d.blobs.put(rawKey, body, 'message/rfc822');
    return { rawKey, sha256: createHash('sha256').update(body).digest('hex') };
  }
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  // pipeline (not pipe): an error of the POP3 stream destroys `hashing`, so the store fails
  // instead of waiting forever for the end of a stream that will never end.
  await d.blobs.put(
    rawKey,
    pipeline(body, hashing, () => {}),
    'message/rfc822',
  );
  return { rawKey, sha256: hash.digest('hex') };
}

/**
 * Messages dated before the box's cut-off, read from headers only (TOP n 0, pipelined). A message
 * without a usable Date takes the date of its nearest dated neighbour in server order (arrival order).
 */
async function excludedByDate(
  client: Pop3Client,
  fresh: { id: number }[],
  excludeBefore: string,
): Promise<Set<number>> {
  const cutoff = Date.parse(`${excludeBefore}T00:00:00Z`);
  const dates: (number | undefined)[] = [];
  for await (const { data } of client.topMany(
    fresh.map((u) => u.id),
    0,
    { window: 16 },
  )) {
    const head = data.toString('latin1');
    const m = /^date:[ \t]*(.+(?:\r?\n[ \t].+)*)/im.exec(head);
    const t = m?.[1] ? Date.parse(m[1].replace(/\r?\n[ \t]+/g, ' ')) : Number.NaN;
    dates.push(Number.isNaN(t) ? undefined : t);
  }
  const out = new Set<number>();
  fresh.forEach((u, i) => {
    let t = dates[i];
    for (let j = i - 1; t === undefined && j >= 0; j--) t = dates[j];
    for (let j = i + 1; t === undefined && j < dates.length; j++) t = dates[j];
    if (t !== undefined && t < cutoff) out.add(u.id);
  });
  return out;
}

interface Fetched {
  uid: string;
  rawKey: string;
  sha256: string;
  /** The stored bytes, when still in memory. */
  copy?: Buffer;
}

/**
 * Records one stored message (or marks it a duplicate) and sends its auto-reply. Returns true when
 * the message is recorded under its UIDL, so that the server's copy may be deleted.
 */
async function importOne(d: Deps, ctx: ImportContext, f: Fetched): Promise<boolean> {
  const { sid, box, run } = ctx;
  const now = d.now().toISOString();

  // The same bytes seen before (another UIDL, or a server that re-numbered): import once.
  const dup = await d.repos.importMarkers.findHash(sid, box.id, f.sha256);
  if (dup) {
    await d.repos.importMarkers.mark(sid, box.id, {
      uidl: f.uid,
      state: 'duplicate',
      messageId: dup.messageId,
      sha256: f.sha256,
      at: now,
    });
    run.counts.skipped++;
    return true;
  }

  const id = randomUUID();
  let parsed: ParsedMessage | undefined;
  let parseError: string | undefined;
  try {
    parsed = await parseStored(d.blobs, f.rawKey, `parts/${sid}/${id}`, f.copy);
  } catch (error) {
    if (!(error instanceof UnparseableMessageError)) throw error;
    parseError = error.message;
  }

  let built = parsed ? await classify(d, ctx, parsed) : undefined;
  let message: Message = parsed
    ? {
        id,
        direction: 'in',
        status: 'imported',
        boxId: box.id,
        clientId: built?.clientId,
        threadId: built?.threadId ?? id,
        ...parsedFields(parsed, now),
        rawKey: f.rawKey,
        departmentId: box.departmentId,
        userId: box.userId,
        emailTypeId: box.emailTypeId,
        emailStatusId: box.emailStatusId,
        automatic: built?.automatic !== undefined,
      }
    : quarantined(id, box.id, f.rawKey, now, parseError);

  let taskWrites = built?.actions.createTask
    ? [
        d.repos.tasks.createWrite(sid, {
          id: randomUUID(),
          title: taskTitle(parsed?.from, message.subject),
          typeId: box.taskTypeId,
          statusId: box.taskStatusId,
          departmentId: box.departmentId,
          userId: box.userId,
          clientId: message.clientId,
          messageId: id,
          boxId: box.id,
        }),
      ]
    : [];
  const record = () =>
    d.repos.table.transact([
      ...d.repos.messages.createWrites(sid, message),
      d.repos.importMarkers.uidlWrite(sid, box.id, {
        uidl: f.uid,
        state: 'imported',
        messageId: id,
        sha256: f.sha256,
        at: now,
      }),
      d.repos.importMarkers.hashWrite(sid, box.id, f.sha256, id),
      ...taskWrites,
    ]);
  try {
    try {
      await record();
    } catch (error) {
      if (!isTooLarge(error)) throw error;
      // Left to fail, this message would stop every later run at the same place: keep it as
      // quarantined (its raw copy is stored) and go on.
      message = quarantined(
        id,
        box.id,
        f.rawKey,
        now,
        `The message's details are too large to record (${(error as Error).message}); its raw copy is kept.`,
      );
      built = undefined;
      taskWrites = [];
      await record();
    }
  } catch (error) {
    // Another run marked this UIDL or hash first: it is imported; count it as seen before.
    // The next run, which finds the marker, deletes the server's copy.
    if (error instanceof ConditionFailed) {
      run.counts.skipped++;
      return false;
    }
    throw error;
  }
  if (message.status === 'quarantined') {
    run.counts.quarantined++;
    ctx.errors.add({
      kind: 'quarantined',
      message: `Message ${f.uid} was quarantined: ${(message.error ?? 'it could not be parsed.').slice(0, 300)}`,
    });
  } else {
    run.counts.imported++;
  }
  run.counts.tasks += taskWrites.length;

  if (built?.actions.autoReply && ctx.ports.autoReply) {
    try {
      if (await sendAutoReply(d, ctx, message, built.targets)) run.counts.autoReplies++;
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      ctx.errors.add({
        kind: 'auto-reply-failed',
        message: `The auto-reply to ${built.targets.join(', ')} failed: ${text}`,
      });
      ctx.log.warn('auto-reply failed', { messageId: id, errorMessage: text });
    }
  }
  return true;
}

/** The record of a message kept raw but not filed: listed for an admin, replayable by reprocess. */
function quarantined(id: string, boxId: string, rawKey: string, now: string, error?: string): Message {
  return {
    id,
    direction: 'in',
    status: 'quarantined',
    boxId,
    threadId: id,
    references: [],
    to: [],
    cc: [],
    subject: '',
    date: now,
    snippet: '',
    rawKey,
    attachments: [],
    error: error?.slice(0, 1_000),
    automatic: false,
  };
}

/** DynamoDB refusing an item or key for its size: the message's fault, not a passing failure. */
export function isTooLarge(error: unknown): boolean {
  return error instanceof Error && error.name === 'ValidationException' && /size|length/i.test(error.message);
}

export async function ownAddresses(d: Deps, sid: string, box: EmailBox): Promise<string[]> {
  const company = await d.repos.companyEmail.get(sid, 'company');
  const users = await d.repos.userEmail.list(sid);
  return [
    box.connection.emailAddress,
    company?.emailAddress,
    company?.replyTo,
    ...users.flatMap((u) => [u.emailAddress, u.replyTo]),
  ].filter((a): a is string => Boolean(a));
}

/**
 * The thread a message joins (the nearest Message-ID it refers to that we know) and its client:
 * the thread's, else the one client with the sender's address. Used by import and reprocess.
 */
export async function threadAndClient(d: Deps, sid: string, parsed: ParsedMessage) {
  const thread = await matchThread(referencedIds(parsed.inReplyTo, parsed.references), (mid) =>
    d.repos.messages.findByMessageId(sid, mid),
  );
  let clientId = thread?.clientId;
  if (!clientId && parsed.from?.address) {
    const matches = await d.repos.clients.findByAddress(sid, parsed.from.address);
    // Several clients share an address (a couple): assign only when it is unambiguous.
    if (matches.length === 1) clientId = matches[0];
  }
  return { thread, clientId };
}

/** Thread, client, automatic and the actions due (shared with reprocess, lib/inbox/service.ts). */
export async function classify(
  d: Deps,
  ctx: Pick<ImportContext, 'sid' | 'box' | 'own'>,
  parsed: ParsedMessage,
) {
  const { sid, box, own } = ctx;
  const automatic = automaticReason(parsed.headers, parsed.from?.address);
  const { thread, clientId } = await threadAndClient(d, sid, parsed);
  const actions = decideActions({
    automatic: automatic !== undefined,
    thread,
    autoCreateTask: box.autoCreateTask,
    sendAutoReply: box.sendAutoReply,
    autoReplyFirstEmailOnly: box.autoReplyFirstEmailOnly,
  });
  const targets = autoReplyTargets({
    from: parsed.from?.address,
    replyTo: parsed.replyTo.map((a) => a.address),
    to: parsed.to.map((a) => a.address),
    cc: parsed.cc.map((a) => a.address),
    own,
    toAll: box.autoReplyToAll,
  });
  return {
    automatic,
    threadId: thread?.threadId,
    clientId,
    actions: { ...actions, autoReply: actions.autoReply && targets.length > 0 },
    targets,
  };
}

/** Claims the message's one auto-reply, applies the per-sender daily cap, then sends. */
export async function sendAutoReply(
  d: Deps,
  ctx: Pick<ImportContext, 'sid' | 'box' | 'ports' | 'log'>,
  inbound: Message,
  targets: string[],
): Promise<boolean> {
  const { sid, box } = ctx;
  if (!(await d.repos.autoReplies.claim(sid, inbound.id))) return false;
  const day = d.now().toISOString().slice(0, 10);
  const cap = ctx.ports.dailyReplyCap ?? 3;
  const allowed: string[] = [];
  for (const address of targets) {
    if (await d.repos.autoReplies.takeDailySlot(sid, address, day, cap)) allowed.push(address);
  }
  if (allowed.length === 0) {
    ctx.log.info('auto-reply skipped: daily cap reached', { messageId: inbound.id });
    return false;
  }
  await ctx.ports.autoReply?.({ studioId: sid, box, inbound, to: allowed });
  return true;
}
