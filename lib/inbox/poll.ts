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
import type { ImportMarker } from '#lib/data/repositories';
import { ConditionFailed } from '#lib/data/table';
import { addressKey } from '#lib/domain/addresses';
import {
  automaticReason,
  autoReplyTargets,
  decideActions,
  matchThread,
  referencedIds,
} from '#lib/domain/inbound';
import { type EmailBox, type Message, type Run, type RunCounts, runCounts } from '#lib/domain/model';
import { takesPoll } from '#lib/domain/receiving';
import { type ScheduleWindow, scheduledRunCheck } from '#lib/domain/schedule';
import { GraphError } from '#lib/graph/errors';
import { ImapError } from '#lib/imap/errors';
import { EMPTY_ANNOUNCED, Pop3Error } from '#lib/pop3/client';
import { InvalidBlobError } from '#lib/ports/index';
import { isSendableAddress, MAX_RECIPIENTS } from '#lib/send/schemas';
import { describeFailure, type Failure, StorageError } from './failures.ts';
import { type ParsedMessage, parsedFields, parseStored, UnparseableMessageError } from './parse.ts';
import type { MailSession } from './session.ts';

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
  /**
   * Connects and logs in to the box's server (an OAuth2 box's token is looked up by studio and
   * box); `run.deadline` (epoch ms) bounds waits the connector may make (Graph's Retry-After).
   */
  open(box: EmailBox, password: string, studioId: string, run?: { deadline: number }): Promise<MailSession>;
  /** Sends one auto-reply; resolves once the transport accepted it. */
  autoReply?(request: AutoReplyRequest): Promise<unknown>;
  /** Replies per sender address per day (a loop guard). Default 3. */
  dailyReplyCap?: number;
  /** Messages at most this size are fetched pipelined into memory; larger ones stream. Default 1 MB. */
  inMemoryLimit?: number;
  /** Epoch ms the time budget is checked against; default Date.now (tests pass a controllable clock). */
  clock?: () => number;
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
  /** Earlier runs this one found `running` past their deadline and closed as `timed out`. */
  timedOut?: Run[];
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
export function errorList(run: Run) {
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

/** Runs a message may fail before it is quarantined as such and skipped. */
export const MAX_ATTEMPTS = 3;
/** DELEs committed per POP3 session (QUIT, then a new session): each batch fits any budget. */
export const DELE_BATCH = 200;
/** DELEs sent between two looks at the clock (and kept in flight with PIPELINING). */
const DELE_SLICE = 16;
/**
 * Retrieved messages stored, parsed and recorded at once (each holds at most the in-memory
 * limit, 1 MB, plus its parse): retrieval, storage and DynamoDB round trips of different
 * messages overlap. The storage-floor bench runs at the same concurrency.
 */
export const IMPORT_CONCURRENCY = 8;
/** Share of the budget retrieval may use; the rest is for DELE, QUIT and auto-replies. */
const RETRIEVAL_SHARE = 0.6;
/** Sessions one run may open (reconnects after a message the server cannot send, DELE batches). */
const MAX_SESSIONS = 50;
/** How often a working run renews its lease. */
const LEASE_RENEW_MS = 30_000;

/**
 * The mailbox a UIDL belongs to: another server, port or user is another mailbox; for IMAP
 * another folder too (UIDVALIDITY:UID names a message within one folder only).
 */
export function mailboxIdentity(box: EmailBox): string {
  const c = box.connection;
  const port = 'port' in c ? c.port : '';
  const user = 'userName' in c ? c.userName.toLowerCase() : '';
  const folder = c.type === 'imap' ? `\nimap\n${c.folder?.trim() || 'INBOX'}` : '';
  return createHash('sha256')
    .update(`${c.server.toLowerCase()}\n${port}\n${user}${folder}`)
    .digest('hex')
    .slice(0, 16);
}

/** A failure of the mail server or the line to it (POP3 or IMAP), never of our own storage. */
function isSessionError(error: unknown): error is Pop3Error | ImapError {
  return error instanceof Pop3Error || error instanceof ImapError;
}

/** The server refused this one message (POP3 -ERR to RETR/TOP; IMAP NO to FETCH): its failure only. */
function isRefusalOf(error: unknown, pop3Command: 'RETR' | 'TOP'): error is Pop3Error | ImapError {
  if (error instanceof Pop3Error) return error.command === pop3Command && error.kind === 'server';
  return error instanceof ImapError && error.command === 'FETCH' && error.kind === 'server';
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
  if (!takesPoll(box.intake))
    return { status: 'skipped', reason: 'This box takes pushed mail only; it is not polled.' };
  const passwordRef = box.connection.passwordRef;
  if (!passwordRef)
    return {
      status: 'skipped',
      reason: 'This box has no saved password; add one (connection.password) to poll it.',
    };
  const runId = request.run?.id ?? randomUUID();
  const started = request.run ? new Date(request.run.startedAt) : d.now();
  // The budget is real elapsed time (the Lambda timeout is), whatever clock d.now() reads.
  const clock = ports.clock ?? Date.now;
  const startMs = clock();
  const deadline = startMs + request.budgetMs;
  // The lease covers the whole invocation (budget + the handler's margin) and is renewed while
  // the run works, so a run that overruns still keeps others out. A continued run already holds it
  // under its id (the API took it before answering 202), so this renews it.
  const leaseMs = request.budgetMs + 60_000;
  const invokedAt = d.now();
  if (!(await d.repos.boxState.acquireLease(sid, boxId, runId, leaseMs, invokedAt.getTime()))) {
    return { status: 'busy', reason: 'Another poll of this box is running.' };
  }
  const renewal = setInterval(() => {
    d.repos.boxState.acquireLease(sid, boxId, runId, leaseMs).catch(() => {});
  }, LEASE_RENEW_MS);
  renewal.unref();
  const run: Run = {
    id: runId,
    boxId,
    startedAt: started.toISOString(),
    trigger: request.trigger,
    counts: emptyCounts(),
    errors: [],
    ...request.run,
    // Each invocation of a continued run has a deadline of its own.
    deadlineAt: new Date(invokedAt.getTime() + leaseMs).toISOString(),
    status: 'running',
  };
  const errors = errorList(run);
  const log = d.logger.createChild({ persistentLogAttributes: { studioId: sid, boxId, runId } });

  let failure: Failure | undefined;
  let outOfTime = false;
  let timedOut: Run[] = [];
  const ctx: ImportContext = {
    sid,
    own: [],
    box,
    identity: mailboxIdentity(box),
    client: undefined as unknown as MailSession,
    run,
    errors,
    deadline,
    retrievalDeadline: startMs + request.budgetMs * RETRIEVAL_SHARE,
    ports,
    log,
    replies: [],
    clock,
    judgeAfterRetrieval: new Set(),
    order: new ImportOrder(),
  };
  let continued = false;
  try {
    timedOut = await closeTimedOutRuns(d, sid, boxId, runId, invokedAt);
    await d.repos.runs.put(sid, run);
    const password = await d.secrets.get(passwordRef);
    ctx.own = await ownAddresses(d, sid, box, ctx);
    outOfTime = await runSessions(d, ctx, () => ports.open(box, password, sid, { deadline }));
  } catch (error) {
    failure = describeFailure(error, box.connection);
    // Always listed, even past the cap: it is why the run failed.
    run.errors.push({ kind: failure.kind, message: failure.message });
    log.warn('poll failed', { kind: failure.kind, errorMessage: failure.message });
    ctx.client?.close?.();
    // The message being taken when the run failed counts one failed attempt (unless our own
    // storage is at fault): a message that breaks every session must not stop the box for ever.
    if (ctx.current && !isOwnStorageFailure(error)) {
      await recordAttempt(d, ctx, ctx.current, failure.message).catch(() => {});
    }
  } finally {
    clearInterval(renewal);
    try {
      // Auto-replies go out after the POP3 session, never while it waits.
      await sendQueuedReplies(d, ctx);
    } catch (error) {
      log.warn('auto-replies failed', { errorMessage: (error as Error).message });
    }
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
  const closed = timedOut.length > 0 ? { timedOut } : {};
  if (continued) return { status: 'running', run, errorCount: errors.total, continued, ...closed };
  return { status: run.status as PollStatus, run, errorCount: errors.total, failure, ...closed };
}

/**
 * Runs found still `running` past their deadline: their Lambda was killed. Closed as `timed out`
 * (we hold the lease, so none of them is alive) and returned, so their outcome is published.
 */
async function closeTimedOutRuns(
  d: Deps,
  sid: string,
  boxId: string,
  self: string,
  now: Date,
): Promise<Run[]> {
  const { items } = await d.repos.runs.list(sid, boxId, 20);
  const closed: Run[] = [];
  for (const r of items) {
    // This run (a continuation carries its id) is alive: it holds the lease.
    if (r.status !== 'running' || r.id === self) continue;
    const end = r.deadlineAt ?? new Date(Date.parse(r.startedAt) + 16 * 60_000).toISOString();
    if (Date.parse(end) > now.getTime()) continue;
    const done: Run = {
      ...r,
      status: 'timed out',
      finishedAt: end,
      errors: [
        ...r.errors.slice(0, MAX_RUN_ERRORS - 1),
        {
          kind: 'timed-out',
          message:
            'The run did not finish within its time limit (the poller was stopped); what it stored is kept and the next run continues.',
        },
      ],
    };
    await d.repos.runs.put(sid, done);
    closed.push(done);
  }
  return closed;
}

interface QueuedReply {
  message: Message;
  targets: string[];
}

export interface ImportContext {
  sid: string;
  /** The studio's own addresses (box, company, users): never auto-replied to. Read once per run. */
  own: string[];
  box: EmailBox;
  /** The mailbox the UIDLs belong to (see mailboxIdentity). */
  identity: string;
  client: MailSession;
  run: Run;
  errors: ReturnType<typeof errorList>;
  /** When the run must be done: DELE batches and QUIT stop here. */
  deadline: number;
  /** When retrieval stops, leaving time for DELE, QUIT and the auto-replies. */
  retrievalDeadline: number;
  ports: PollPorts;
  log: Deps['logger'];
  /** The UIDL being taken now: charged a failed attempt if the run fails on it. */
  current?: string;
  /** Auto-replies to send once the POP3 session is over. */
  replies: QueuedReply[];
  /** Reads the time budgets are checked against (PollPorts.clock). */
  clock: () => number;
  companyTimeZone?: string;
  /**
   * UIDLs whose date TOP could not give (a server without TOP, or refusing it for a message):
   * judged against the exclude date from the retrieved copy instead.
   */
  judgeAfterRetrieval: Set<string>;
  /** The server refused a TOP in this run: later chunks are judged after retrieval at once. */
  topRefused?: boolean;
  /** What messages imported at once must still see of each other (IMPORT_CONCURRENCY). */
  order: ImportOrder;
}

/** One message's place in ImportOrder; `release()` must follow, whatever happens. */
export interface ImportTicket {
  /** Settles when the earlier message with the same bytes (if any) is done with. */
  sameBytes: Promise<void>;
  /** Notes this message's Message-ID; then waits until every earlier message has noted its own. */
  parsed(messageId: string | undefined): Promise<void>;
  /** Waits for the records of earlier messages of this run that `ids` name. */
  referenced(ids: string[]): Promise<void>;
  release(): void;
}

/**
 * What messages imported at once (in server order) must still see of each other, as if taken
 * one by one: the same bytes again wait for the first copy (found as a duplicate, never recorded
 * twice), and a reply to an earlier message of the same run waits for that record (so it joins
 * its thread and client). A message waits only for earlier ones, so nothing waits in a circle.
 */
export class ImportOrder {
  #entered = 0;
  #allParsed: Promise<void> = Promise.resolve();
  readonly #bySha = new Map<string, Promise<void>>();
  readonly #byMessageId = new Map<string, { index: number; done: Promise<void> }>();

  enter(sha256: string): ImportTicket {
    const index = this.#entered++;
    const before = this.#allParsed;
    let noted!: () => void;
    const mine = new Promise<void>((resolve) => {
      noted = resolve;
    });
    this.#allParsed = before.then(() => mine);
    let finish!: () => void;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const sameBytes = this.#bySha.get(sha256) ?? Promise.resolve();
    this.#bySha.set(sha256, done);
    let isNoted = false;
    const note = (messageId: string | undefined) => {
      if (isNoted) return;
      isNoted = true;
      const key = messageId?.toLowerCase();
      if (key && !this.#byMessageId.has(key)) this.#byMessageId.set(key, { index, done });
      noted();
    };
    return {
      sameBytes,
      parsed: async (messageId) => {
        note(messageId);
        await before;
      },
      referenced: async (ids) => {
        const earlier = ids
          .map((id) => this.#byMessageId.get(id.toLowerCase()))
          .filter((e): e is { index: number; done: Promise<void> } => e !== undefined && e.index < index);
        await Promise.all(earlier.map((e) => e.done));
      },
      release: () => {
        note(undefined);
        finish();
      },
    };
  }
}

/** One message as the server lists it; `uid` is unique in the listing (see listing). */
interface Listed {
  id: number;
  uid: string;
  size: number | undefined;
}

/** The server's messages, each with a UIDL unique in the listing and its LIST size. */
async function listing(client: MailSession): Promise<Listed[]> {
  const uidls = await client.uidl();
  const sizes = new Map((await client.list()).map((l) => [l.id, l.size]));
  const seen = new Map<string, number>();
  return uidls.map((u) => {
    // Two messages under one UIDL (a server fault): the second is kept apart, never over the first.
    const n = (seen.get(u.uid) ?? 0) + 1;
    seen.set(u.uid, n);
    return { id: u.id, uid: n === 1 ? u.uid : `${u.uid}#dup${n}`, size: sizes.get(u.id) };
  });
}

/**
 * Sessions until the mailbox is done or the budget is spent: the first retrieves (reconnecting
 * after a message the server cannot send); DELEs go in batches, each committed by its QUIT.
 * Returns true when the budget ran out first.
 */
async function runSessions(d: Deps, ctx: ImportContext, open: () => Promise<MailSession>): Promise<boolean> {
  let firstListing = true;
  for (let session = 0; session < MAX_SESSIONS; session++) {
    if (ctx.clock() >= ctx.deadline) return true;
    ctx.client = await open();
    const listed = await listing(ctx.client);
    if (firstListing) ctx.run.counts.seen = listed.length;
    const known = await d.repos.importMarkers.findUidls(
      ctx.sid,
      ctx.box.id,
      ctx.identity,
      listed.map((u) => u.uid),
    );
    const { fresh, deletable, skipped } = sortListing(ctx, listed, known);
    if (firstListing) ctx.run.counts.skipped += skipped;
    firstListing = false;

    const step = await importFresh(d, ctx, fresh, known, deletable);
    if (step === 'reconnect') {
      ctx.client.close();
      continue;
    }
    if (ctx.box.leaveOnServer) await keepStored(ctx, deletable);
    const batch = ctx.box.leaveOnServer ? [] : deletable.slice(0, DELE_BATCH);
    // In slices, the clock checked between them: without PIPELINING every DELE is a round trip,
    // and a batch must not outrun the budget (what is left is deleted by the next run).
    let sent = 0;
    while (sent < batch.length && ctx.clock() < ctx.deadline) {
      const slice = batch.slice(sent, sent + DELE_SLICE);
      await ctx.client.deleMany(slice, { window: DELE_SLICE });
      sent += slice.length;
    }
    // QUIT commits the DELEs; without it (a cut) the server keeps every message.
    await ctx.client.quit();
    await sendQueuedReplies(d, ctx);
    const moreToDelete = !ctx.box.leaveOnServer && deletable.length > sent;
    if (step === 'out-of-time') return true;
    if (!moreToDelete) return false;
  }
  return ctx.clock() >= ctx.deadline;
}

/**
 * What a box that leaves mail on the server does with what is stored (IMAP mark-read: \Seen),
 * when the session can. A refusal is noted on the run, not a failure: nothing is lost.
 */
async function keepStored(ctx: ImportContext, stored: number[]): Promise<void> {
  if (!ctx.client.keepMany || stored.length === 0 || ctx.clock() >= ctx.deadline) return;
  try {
    await ctx.client.keepMany(stored);
  } catch (error) {
    // A refusal (IMAP NO, Graph 403 for an app without Mail.ReadWrite) is noted on the run, not a
    // failure: every message is stored, and the next run tries again.
    const refused =
      (isSessionError(error) && error.kind === 'server') ||
      (error instanceof GraphError &&
        (error.kind === 'access-denied' || error.kind === 'server' || error.kind === 'throttled'));
    if (!refused) throw error;
    ctx.errors.add({
      kind: 'after-import-failed',
      message: `The server refused to mark imported mail: ${error.message}`.slice(0, 500),
    });
  }
}

/** What to do with each listed message, from its marker. */
function sortListing(ctx: ImportContext, listed: Listed[], known: Map<string, ImportMarker>) {
  const fresh: Listed[] = [];
  const deletable: number[] = [];
  let skipped = 0;
  for (const u of listed) {
    const marker = known.get(u.uid);
    if (!marker || marker.state === 'failed') {
      if (marker && (marker.attempts ?? 0) >= MAX_ATTEMPTS) {
        skipped++;
        continue;
      }
      fresh.push(u);
      continue;
    }
    if (marker.state === 'excluded') {
      // Decided against another cut-off (the date moved or was cleared): decide again.
      if ((marker.excludeBefore ?? ctx.box.excludeBefore) !== ctx.box.excludeBefore) fresh.push(u);
      else skipped++;
      continue;
    }
    if (marker.state === 'quarantined') {
      skipped++;
      continue;
    }
    // Stored before: deleted now unless its size says it is another message under a reused UIDL.
    if (marker.size !== undefined && u.size !== undefined && marker.size !== u.size) {
      fresh.push(u);
      continue;
    }
    skipped++;
    deletable.push(u.id);
  }
  return { fresh, deletable, skipped };
}

type Step = 'done' | 'out-of-time' | 'reconnect';

/** Messages per exclude-before header scan: scanned, then imported, before the next chunk. */
const SCAN_CHUNK = 50;

/**
 * Imports the new messages in server order, chunk by chunk: the dated before the box's cut-off
 * are marked excluded, the others imported; adds to `deletable` what may be deleted.
 */
async function importFresh(
  d: Deps,
  ctx: ImportContext,
  fresh: Listed[],
  known: Map<string, ImportMarker>,
  deletable: number[],
): Promise<Step> {
  for (let start = 0; start < fresh.length; start += SCAN_CHUNK) {
    if (ctx.clock() >= ctx.retrievalDeadline) return 'out-of-time';
    const chunk = fresh.slice(start, start + SCAN_CHUNK);
    let wanted = chunk;
    if (ctx.box.excludeBefore) {
      const scan = await excludedByDate(d, ctx, chunk, ctx.box.excludeBefore);
      if (scan === 'reconnect') return 'reconnect';
      wanted = chunk.filter((u) => !scan.has(u.id));
    }
    const step = await retrieve(d, ctx, wanted, known, deletable);
    await ctx.ports.progress?.(ctx.run);
    if (step !== 'done') return step;
  }
  return 'done';
}

async function retrieve(
  d: Deps,
  ctx: ImportContext,
  wanted: Listed[],
  known: Map<string, ImportMarker>,
  deletable: number[],
): Promise<Step> {
  const { client } = ctx;
  const limit = ctx.ports.inMemoryLimit ?? 1_000_000;
  // A size LIST did not give is treated as large: streamed, never held whole.
  const isLarge = (u: Listed) => (u.size ?? Number.POSITIVE_INFINITY) > limit;
  for (let i = 0; i < wanted.length; ) {
    if (ctx.clock() >= ctx.retrievalDeadline) return 'out-of-time';
    const first = wanted[i]!;
    if (isLarge(first)) {
      i++;
      ctx.current = first.uid;
      const outcome = await takeOne(d, ctx, first, known, async () =>
        storeRaw(d, ctx, first.uid, await client.retrStream(first.id)),
      );
      ctx.current = undefined;
      if (outcome === 'stored') deletable.push(first.id);
      await ctx.ports.progress?.(ctx.run);
      if (outcome === 'reconnect') return 'reconnect';
      continue;
    }
    const batch: Listed[] = [];
    for (; i < wanted.length && !isLarge(wanted[i]!); i++) batch.push(wanted[i]!);
    const step = await retrieveBatch(d, ctx, batch, known, deletable);
    if (step !== 'done') return step;
  }
  return 'done';
}

/**
 * Messages up to the in-memory limit: RETRs pipelined (16 in flight), taken from the server one
 * by one in server order, while up to IMPORT_CONCURRENCY of them are stored, parsed and recorded
 * at once (ImportOrder keeps what depends on order right). Outcomes are settled in server order,
 * so `deletable` (the DELEs) keeps it.
 */
async function retrieveBatch(
  d: Deps,
  ctx: ImportContext,
  batch: Listed[],
  known: Map<string, ImportMarker>,
  deletable: number[],
): Promise<Step> {
  const { client } = ctx;
  let next = 0;
  const fetchFrom = (n: number) =>
    client.retrMany(
      batch.slice(n).map((u) => u.id),
      { window: 16 },
    );
  let messages = fetchFrom(0);
  /** Taken and being imported, oldest first; a task never rejects (its error is its outcome). */
  const inFlight: { u: Listed; task: Promise<{ outcome: Taken } | { error: unknown }> }[] = [];
  let failure: { error: unknown } | undefined;
  const settleOldest = async () => {
    const { u, task } = inFlight.shift()!;
    const result = await task;
    if ('error' in result) {
      // The first failure fails the run; the message it belongs to is the one charged for it.
      if (!failure) {
        failure = result;
        ctx.current = u.uid;
      }
      return;
    }
    if (result.outcome === 'stored') deletable.push(u.id);
    await ctx.ports.progress?.(ctx.run);
  };
  const drain = async () => {
    while (inFlight.length > 0) await settleOldest();
    if (failure) throw failure.error;
  };
  try {
    // Leaving this loop early (budget, error) returns the generator, which drains what is in flight.
    while (next < batch.length && !failure) {
      const u = batch[next]!;
      ctx.current = u.uid;
      let data: Buffer;
      try {
        const r = await messages.next();
        if (r.done) throw new Error(`RETR ${u.id} gave no message`);
        data = r.value.data;
      } catch (error) {
        next++;
        // Charged to this message if it fails the run (fetchFailed rethrows what is not its own).
        const outcome = await fetchFailed(d, ctx, u, known, error);
        ctx.current = undefined;
        if (outcome === 'reconnect') {
          await drain();
          await messages.return(undefined).catch(() => {});
          return 'reconnect';
        }
        // The refused RETR ended the pipelined fetch (after draining what was in flight): go on after it.
        messages = fetchFrom(next);
        continue;
      }
      ctx.current = undefined;
      next++;
      const ticket = ctx.order.enter(createHash('sha256').update(data).digest('hex'));
      inFlight.push({
        u,
        task: takeStored(d, ctx, u, ticket, async () => ({
          ...(await storeRaw(d, ctx, u.uid, data)),
          copy: data,
        })).then(
          (outcome) => ({ outcome }),
          (error: unknown) => ({ error }),
        ),
      });
      while (inFlight.length >= IMPORT_CONCURRENCY) await settleOldest();
      if (ctx.clock() >= ctx.retrievalDeadline && next < batch.length) {
        await drain();
        await messages.return(undefined);
        return 'out-of-time';
      }
    }
    await drain();
  } finally {
    // Whatever ended the loop, no import is left running behind the run's back.
    await Promise.allSettled(inFlight.map((f) => f.task));
  }
  return 'done';
}

type Taken = 'stored' | 'kept' | 'retr-refused' | 'reconnect';

/**
 * Takes one message: fetch (RETR into the blob store), then record. A failure that belongs to
 * the message quarantines it (or counts an attempt) and the run goes on; a failure of our own
 * storage or of the connection fails the run.
 */
async function takeOne(
  d: Deps,
  ctx: ImportContext,
  u: Listed,
  known: Map<string, ImportMarker>,
  fetch: () => Promise<{ rawKey: string; sha256: string; copy?: Buffer }>,
): Promise<Taken> {
  let raw: { rawKey: string; sha256: string; copy?: Buffer };
  try {
    raw = await fetch();
  } catch (error) {
    return fetchFailed(d, ctx, u, known, error);
  }
  return takeStored(d, ctx, u, ctx.order.enter(raw.sha256), async () => raw);
}

/** What a failed RETR means: a refusal or a broken message belongs to the message; else it fails the run. */
async function fetchFailed(
  d: Deps,
  ctx: ImportContext,
  u: Listed,
  known: Map<string, ImportMarker>,
  error: unknown,
): Promise<Taken> {
  if (isRefusalOf(error, 'RETR')) {
    // The server refused this one message (-ERR, NO); the session goes on.
    await recordAttempt(d, ctx, u.uid, `The server refused to send it: ${error.message}`, known);
    return 'retr-refused';
  }
  if (error instanceof Pop3Error && error.code === EMPTY_ANNOUNCED) {
    // The server sends this message broken, and always will: quarantine it (no copy to keep,
    // never deleted) and go on in a new session, since this one is out of step.
    await quarantineUnfetchable(d, ctx, u.uid, error.message);
    return 'reconnect';
  }
  throw error;
}

/**
 * Stores (when `store` does) and records one retrieved message. A failure that belongs to the
 * message quarantines it and the run goes on; a failure of our own storage fails the run.
 */
async function takeStored(
  d: Deps,
  ctx: ImportContext,
  u: Listed,
  ticket: ImportTicket,
  store: () => Promise<{ rawKey: string; sha256: string; copy?: Buffer }>,
): Promise<Taken> {
  try {
    const raw = await store();
    try {
      if (await excludedAfterRetrieval(d, ctx, u.uid, raw)) return 'kept';
      return (await importOne(d, ctx, { uid: u.uid, size: u.size, ...raw }, ticket)) ? 'stored' : 'kept';
    } catch (error) {
      if (isOwnStorageFailure(error) || isSessionError(error)) throw error;
      // Anything else is this message's doing: keep it quarantined with the reason, go on.
      const reason = `It could not be imported: ${error instanceof Error ? error.message : String(error)}`;
      ctx.log.warn('message quarantined', { uidl: u.uid, errorMessage: reason });
      return (await recordQuarantined(d, ctx, { uid: u.uid, size: u.size, ...raw }, reason))
        ? 'stored'
        : 'kept';
    }
  } finally {
    ticket.release();
  }
}

/** Counts a failed attempt at a message; at MAX_ATTEMPTS it is quarantined as such and skipped. */
async function recordAttempt(
  d: Deps,
  ctx: ImportContext,
  uid: string,
  reason: string,
  known?: Map<string, ImportMarker>,
): Promise<void> {
  const markers = known ?? (await d.repos.importMarkers.findUidls(ctx.sid, ctx.box.id, ctx.identity, [uid]));
  const before = markers.get(uid);
  if (before && before.state !== 'failed') return;
  const attempts = (before?.attempts ?? 0) + 1;
  await d.repos.importMarkers.mark(ctx.sid, ctx.box.id, ctx.identity, {
    uidl: uid,
    state: attempts >= MAX_ATTEMPTS ? 'quarantined' : 'failed',
    attempts,
    reason: reason.slice(0, 1_000),
    at: d.now().toISOString(),
  });
  ctx.errors.add({
    kind: attempts >= MAX_ATTEMPTS ? 'quarantined' : 'message-failed',
    message:
      attempts >= MAX_ATTEMPTS
        ? `Message ${uid} failed ${attempts} runs and is skipped from now on (left on the server): ${reason.slice(0, 300)}`
        : `Message ${uid} could not be taken (attempt ${attempts} of ${MAX_ATTEMPTS}): ${reason.slice(0, 300)}`,
  });
  if (attempts >= MAX_ATTEMPTS) ctx.run.counts.quarantined++;
}

/** A message the server cannot send intact: quarantined at once, left on the server. */
async function quarantineUnfetchable(d: Deps, ctx: ImportContext, uid: string, why: string): Promise<void> {
  await d.repos.importMarkers.mark(ctx.sid, ctx.box.id, ctx.identity, {
    uidl: uid,
    state: 'quarantined',
    reason: `The server cannot send this message intact (${why}); it is left on the server.`.slice(0, 1_000),
    at: d.now().toISOString(),
  });
  ctx.run.counts.quarantined++;
  ctx.errors.add({
    kind: 'quarantined',
    message: `Message ${uid} was quarantined: the server cannot send it intact (${why.slice(0, 200)}); it is left on the server.`,
  });
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
  const rawKey = `raw/${ctx.sid}/${ctx.box.id}/${createHash('sha256').update(`${ctx.identity}\n${uid}`).digest('hex').slice(0, 32)}.eml`;
  if (Buffer.isBuffer(body)) {
    try {
      await d.blobs.put(rawKey, body, 'message/rfc822');
    } catch (error) {
      throw new StorageError(error);
    }
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
  let popError: unknown;
  body.on('error', (error) => {
    popError ??= error;
  });
  try {
    await d.blobs.put(
      rawKey,
      pipeline(body, hashing, () => {}),
      'message/rfc822',
    );
  } catch (error) {
    // The connection's failure is the connection's; anything else is the blob store's.
    if (isSessionError(popError)) throw popError;
    if (isSessionError(error)) throw error;
    throw new StorageError(error);
  }
  return { rawKey, sha256: hash.digest('hex') };
}

/**
 * Of `chunk`, the messages dated before the box's cut-off, read from headers only (TOP n 0,
 * pipelined), marked excluded as they are found. A message without a usable Date takes its
 * newest Received: date; without that, it is imported (never excluded on a guess).
 */
async function excludedByDate(
  d: Deps,
  ctx: ImportContext,
  chunk: Listed[],
  excludeBefore: string,
): Promise<Set<number> | 'reconnect'> {
  const cutoff = cutoffInstant(excludeBefore, boxTimeZone(ctx));
  const out = new Set<number>();
  const later = (rest: Listed[]) => {
    for (const u of rest) ctx.judgeAfterRetrieval.add(u.uid);
  };
  // The server says when each message arrived (IMAP INTERNALDATE): that decides, headers only
  // for a message it gives no date for.
  if (ctx.client.receivedAt) {
    const arrived = await ctx.client.receivedAt(chunk.map((u) => u.id));
    const undated: Listed[] = [];
    for (const u of chunk) {
      const t = arrived.get(u.id);
      if (t === undefined) undated.push(u);
      else if (t < cutoff) {
        out.add(u.id);
        await markExcluded(d, ctx, u.uid, excludeBefore);
      }
    }
    if (undated.length === 0) return out;
    chunk = undated;
  }
  // CAPA answered without TOP (RFC 2449), or a TOP refused before: no header pass at all.
  const caps = ctx.client.capabilities;
  if (ctx.topRefused || (caps.raw.length > 0 && !caps.top)) {
    later(chunk);
    return out;
  }
  const heads = ctx.client.topMany(
    chunk.map((u) => u.id),
    0,
    { window: 16 },
  );
  for (const [i, u] of chunk.entries()) {
    let head: Buffer;
    try {
      const r = await heads.next();
      if (r.done) {
        later(chunk.slice(i));
        break;
      }
      head = r.value.data;
    } catch (error) {
      if (isRefusalOf(error, 'TOP')) {
        // No TOP on this server (or not for this message): judged once retrieved instead. A
        // refusal ends the pipelined TOPs, so the rest of the chunk is judged that way too.
        ctx.topRefused = true;
        later(chunk.slice(i));
        break;
      }
      if (error instanceof Pop3Error && error.code === EMPTY_ANNOUNCED) {
        await quarantineUnfetchable(d, ctx, u.uid, error.message);
        return 'reconnect';
      }
      throw error;
    }
    const t = headerDate(head.toString('latin1'));
    if (t === undefined || t >= cutoff) continue;
    out.add(u.id);
    await markExcluded(d, ctx, u.uid, excludeBefore);
  }
  return out;
}

/** Marks a message dated before the cut-off `excluded` (left on the server, judged again when the date moves). */
async function markExcluded(d: Deps, ctx: ImportContext, uid: string, excludeBefore: string) {
  await d.repos.importMarkers.mark(ctx.sid, ctx.box.id, ctx.identity, {
    uidl: uid,
    state: 'excluded',
    excludeBefore,
    at: d.now().toISOString(),
  });
  ctx.run.counts.skipped++;
}

/** The header block of a stored message (at most 256 KB read): from the copy in hand, else the blob store. */
async function storedHead(d: Deps, raw: { rawKey: string; copy?: Buffer }): Promise<string> {
  const MAX = 256 * 1024;
  const cut = (b: Buffer) => {
    const end = b.indexOf('\r\n\r\n');
    return b.subarray(0, end >= 0 ? end : Math.min(b.length, MAX)).toString('latin1');
  };
  if (raw.copy) return cut(raw.copy);
  let stream: Readable;
  try {
    stream = await d.blobs.get(raw.rawKey);
  } catch (error) {
    throw new StorageError(error);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= MAX || chunk.includes('\r\n\r\n')) break;
    }
  } catch (error) {
    throw new StorageError(error);
  } finally {
    stream.destroy();
  }
  return cut(Buffer.concat(chunks));
}

/**
 * For a message TOP could not date: excluded, from the retrieved copy's headers, when dated
 * before the cut-off (its raw copy removed again; the server keeps it). True when excluded.
 */
async function excludedAfterRetrieval(
  d: Deps,
  ctx: ImportContext,
  uid: string,
  raw: { rawKey: string; copy?: Buffer },
): Promise<boolean> {
  const excludeBefore = ctx.box.excludeBefore;
  if (!ctx.judgeAfterRetrieval.delete(uid) || !excludeBefore) return false;
  const t = headerDate(await storedHead(d, raw));
  if (t === undefined || t >= cutoffInstant(excludeBefore, boxTimeZone(ctx))) return false;
  await markExcluded(d, ctx, uid, excludeBefore);
  await d.blobs.delete(raw.rawKey).catch(() => {});
  return true;
}

/** The box's time zone: its schedule's, else the company's (read with the own addresses). */
function boxTimeZone(ctx: ImportContext): string {
  return ctx.box.schedule?.timeZone ?? ctx.companyTimeZone ?? 'UTC';
}

/** Midnight at the start of `day` (YYYY-MM-DD) in `timeZone`, as epoch ms. */
export function cutoffInstant(day: string, timeZone: string): number {
  const utcMidnight = Date.parse(`${day}T00:00:00Z`);
  // The zone's offset at that moment (twice, for a day that starts at a DST change).
  let guess = utcMidnight;
  for (let i = 0; i < 2; i++) guess = utcMidnight - zoneOffsetMs(guess, timeZone);
  return guess;
}

function zoneOffsetMs(at: number, timeZone: string): number {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    }).formatToParts(new Date(at));
  } catch {
    return 0; // an unknown zone name: UTC
  }
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const local = Date.UTC(
    get('year'),
    get('month') - 1,
    get('day'),
    get('hour'),
    get('minute'),
    get('second'),
  );
  return local - Math.floor(at / 1000) * 1000;
}

/** The Date header's instant, else the newest Received: header's date, else undefined. */
export function headerDate(head: string): number | undefined {
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const date = /^date:[ \t]*(.+)$/im.exec(unfolded)?.[1];
  const t = date ? Date.parse(date) : Number.NaN;
  if (!Number.isNaN(t)) return t;
  // Received: headers are prepended as mail travels: the first is the newest; its date follows ';'.
  for (const m of unfolded.matchAll(/^received:[^\n]*;[ \t]*([^\r\n]+)$/gim)) {
    const r = Date.parse(m[1]!.replace(/\s*\([^)]*\)\s*$/, ''));
    if (!Number.isNaN(r)) return r;
  }
  return undefined;
}

export interface Fetched {
  uid: string;
  /** Pushed mail (lib/inbox/push.ts): how it came, and SES's verdicts, recorded on the message. */
  pushed?: { verdicts: NonNullable<Message['verdicts']> };
  /** The LIST size, kept on the marker (see sortListing). */
  size?: number;
  rawKey: string;
  sha256: string;
  /** The stored bytes, when still in memory. */
  copy?: Buffer;
}

/** The UIDL marker of a message recorded under `id` (imported or quarantined: either may be deleted). */
function importedMarkerWrite(d: Deps, ctx: ImportContext, f: Fetched, id: string, now: string) {
  return d.repos.importMarkers.uidlWrite(ctx.sid, ctx.box.id, ctx.identity, {
    uidl: f.uid,
    state: 'imported',
    messageId: id,
    sha256: f.sha256,
    size: f.size,
    at: now,
  });
}

/**
 * Records one stored message (or marks it a duplicate) and sends its auto-reply. Returns true when
 * the message is recorded under its UIDL, so that the server's copy may be deleted.
 */
export async function importOne(
  d: Deps,
  ctx: ImportContext,
  f: Fetched,
  ticket: ImportTicket,
): Promise<boolean> {
  const { sid, box, run } = ctx;
  const now = d.now().toISOString();
  await ticket.sameBytes;

  // The same bytes seen before (another UIDL, or a server that re-numbered): import once.
  const dup = await d.repos.importMarkers.findHash(sid, box.id, f.sha256);
  if (dup) {
    await d.repos.importMarkers.mark(sid, box.id, ctx.identity, {
      uidl: f.uid,
      state: 'duplicate',
      messageId: dup.messageId,
      sha256: f.sha256,
      size: f.size,
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
  // Taken in server order from here on where it matters: a reply files after what it answers.
  await ticket.parsed(parsed?.messageId);
  if (parsed) await ticket.referenced(referencedIds(parsed.inReplyTo, parsed.references));

  // The same email reached another box of the studio (two aliases, two boxes): filed once.
  if (parsed && (await alsoReceived(d, ctx, f, id, parsed))) return true;

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
        ...pushedFields(f),
      }
    : { ...quarantined(id, box.id, f.rawKey, now, parseError), ...pushedFields(f) };

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
      importedMarkerWrite(d, ctx, f, id, now),
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
      message = {
        ...quarantined(
          id,
          box.id,
          f.rawKey,
          now,
          `The message's details are too large to record (${(error as Error).message}); its raw copy is kept.`,
        ),
        ...pushedFields(f),
      };
      built = undefined;
      taskWrites = [];
      await record();
    }
  } catch (error) {
    // Another run marked this UIDL or hash first: it is imported; count it as seen before.
    // The next run, which finds the marker, deletes the server's copy. The parts written for
    // this copy belong to no record: removed.
    if (error instanceof ConditionFailed) {
      run.counts.skipped++;
      if (parsed) await removeParts(d, parsed);
      return false;
    }
    throw isOwnStorageFailure(error) ? new StorageError(error) : error;
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

  // Sent once the POP3 session is over (sendQueuedReplies), so no reply holds the session open.
  if (built?.actions.autoReply && ctx.ports.autoReply) ctx.replies.push({ message, targets: built.targets });
  return true;
}

/**
 * When an inbound message of another box has this Message-ID and content hash: notes this box on
 * it, marks the UIDL a duplicate (no second task or reply) and drops the parts just written.
 */
async function alsoReceived(d: Deps, ctx: ImportContext, f: Fetched, id: string, parsed: ParsedMessage) {
  if (!parsed.messageId) return false;
  const { sid, box } = ctx;
  // Another box, or this one by the other way in (forwarded to it and polled from its server).
  const same = (await d.repos.messages.findByMessageId(sid, parsed.messageId)).find(
    (m) => m.direction === 'in' && m.contentHash === parsed.contentHash,
  );
  if (!same) return false;
  const first = await d.repos.messages.get(sid, same.id);
  if (!first) return false;
  if (first.boxId !== box.id && !(first.alsoReceivedIn ?? []).includes(box.id)) {
    await d.repos.messages.save(sid, { ...first, alsoReceivedIn: [...(first.alsoReceivedIn ?? []), box.id] });
  }
  await d.repos.importMarkers.mark(sid, box.id, ctx.identity, {
    uidl: f.uid,
    state: 'duplicate',
    messageId: first.id,
    sha256: f.sha256,
    size: f.size,
    reason:
      first.boxId === box.id
        ? 'Received again (forwarded and polled, or sent twice); filed once.'
        : `Also received in box ${first.boxId ?? 'unknown'}; filed there.`,
    at: d.now().toISOString(),
  });
  await removeParts(d, parsed);
  ctx.run.counts.skipped++;
  ctx.log.info('also received in another box', { messageId: first.id, firstBox: first.boxId, partsOf: id });
  return true;
}

/** Removes the bodies and attachments a parse wrote (best effort: an orphan costs only storage). */
async function removeParts(d: Deps, parsed: ParsedMessage) {
  const keys = [parsed.textKey, parsed.htmlKey, ...parsed.attachments.map((a) => a.blobKey)];
  await Promise.allSettled(keys.filter((k): k is string => Boolean(k)).map((k) => d.blobs.delete(k)));
}

/** Sends the queued auto-replies, within the budget; each one at most once (the claim). */
export async function sendQueuedReplies(d: Deps, ctx: ImportContext): Promise<void> {
  while (ctx.replies.length > 0) {
    const { message, targets } = ctx.replies.shift()!;
    if (ctx.clock() >= ctx.deadline) {
      ctx.errors.add({
        kind: 'auto-reply-skipped',
        message: `The auto-reply to ${targets.join(', ')} was not sent: the run ran out of time.`,
      });
      continue;
    }
    try {
      if (await sendAutoReply(d, ctx, message, targets)) ctx.run.counts.autoReplies++;
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      ctx.errors.add({
        kind: 'auto-reply-failed',
        message: `The auto-reply to ${targets.join(', ')} failed: ${text}`,
      });
      ctx.log.warn('auto-reply failed', { messageId: message.id, errorMessage: text });
    }
  }
}

/**
 * Records a stored message as quarantined with `reason` (its raw copy kept, reprocessable).
 * Returns true when recorded, so the server's copy may be deleted.
 */
export async function recordQuarantined(
  d: Deps,
  ctx: ImportContext,
  f: Fetched,
  reason: string,
): Promise<boolean> {
  const { sid, box, run } = ctx;
  const now = d.now().toISOString();
  const id = randomUUID();
  const message = { ...quarantined(id, box.id, f.rawKey, now, reason), ...pushedFields(f) };
  try {
    await d.repos.table.transact([
      ...d.repos.messages.createWrites(sid, message),
      importedMarkerWrite(d, ctx, f, id, now),
    ]);
  } catch (error) {
    if (error instanceof ConditionFailed) {
      run.counts.skipped++;
      return false;
    }
    throw new StorageError(error);
  }
  run.counts.quarantined++;
  ctx.errors.add({
    kind: 'quarantined',
    message: `Message ${f.uid} was quarantined: ${reason.slice(0, 300)}`,
  });
  return true;
}

/** What a pushed message's record adds: how it came and SES's verdicts. */
function pushedFields(f: Fetched): Pick<Message, 'intake' | 'verdicts'> {
  return f.pushed ? { intake: 'push', verdicts: f.pushed.verdicts } : {};
}

/** The record of a message kept raw but not filed: listed for an admin, replayable by reprocess. */
export function quarantined(id: string, boxId: string, rawKey: string, now: string, error?: string): Message {
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

/**
 * Our own storage failed (blob store, DynamoDB): the run fails and the next retries. An AWS SDK
 * error or a system error (a refused connection, a full disk) is ours, unless DynamoDB refused
 * the item for its size (the message's doing).
 */
function isOwnStorageFailure(error: unknown): boolean {
  if (error instanceof StorageError) return true;
  if (error instanceof InvalidBlobError || isTooLarge(error) || isSessionError(error)) return false;
  const e = error as { $metadata?: unknown; syscall?: unknown } | undefined;
  return e?.$metadata !== undefined || e?.syscall !== undefined;
}

/** DynamoDB refusing an item or key for its size: the message's fault, not a passing failure. */
export function isTooLarge(error: unknown): boolean {
  return error instanceof Error && error.name === 'ValidationException' && /size|length/i.test(error.message);
}

export async function ownAddresses(
  d: Deps,
  sid: string,
  box: EmailBox,
  ctx?: ImportContext,
): Promise<string[]> {
  const company = await d.repos.companyEmail.get(sid, 'company');
  if (ctx) ctx.companyTimeZone = company?.timeZone;
  const [settings, users, boxes] = await Promise.all([
    d.repos.userEmail.list(sid),
    d.repos.users.list(sid),
    d.repos.emailBoxes.list(sid),
  ]);
  return [
    box.connection.emailAddress,
    company?.emailAddress,
    company?.replyTo,
    ...settings.flatMap((u) => [u.emailAddress, u.replyTo]),
    ...users.map((u) => u.email),
    ...boxes.map((b) => b.connection.emailAddress),
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
  // Mail from the studio itself (a user, the company, any of its boxes) is never answered and
  // creates no task: it is not a client asking.
  const fromOwn =
    parsed.from !== undefined && own.some((a) => addressKey(a) === addressKey(parsed.from!.address));
  const actions = decideActions({
    automatic: automatic !== undefined,
    thread,
    autoCreateTask: box.autoCreateTask && !fromOwn,
    sendAutoReply: box.sendAutoReply && !fromOwn,
    autoReplyFirstEmailOnly: box.autoReplyFirstEmailOnly,
  });
  // Only addresses the send will take: one it refuses must not stop the reply to the others,
  // nor spend anybody's daily slots.
  const targets = autoReplyTargets({
    from: parsed.from?.address,
    replyTo: parsed.replyTo.map((a) => a.address),
    to: parsed.to.map((a) => a.address),
    cc: parsed.cc.map((a) => a.address),
    own,
    toAll: box.autoReplyToAll,
  })
    .filter(isSendableAddress)
    .slice(0, MAX_RECIPIENTS);
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
