/**
 * One poll of one email box: the seed's Email Inbox Processor. Store first, then act:
 *   1. RETR streams the raw bytes into the blob store (hashed on the way);
 *   2. the stored copy is parsed (bodies and attachments streamed to the blob store);
 *   3. message, Message-ID lookup, UIDL and content-hash markers and the task are written in one
 *      DynamoDB transaction — the message is imported and marked, or neither;
 *   4. only then: the auto-reply, and DELE (committed by QUIT) when the box does not leave mail
 *      on the server.
 * A connection cut anywhere loses nothing (DELE is uncommitted, the markers say what is done)
 * and duplicates nothing (markers are checked first and written conditionally).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
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
}

export type PollStatus = 'succeeded' | 'partial' | 'failed' | 'busy' | 'skipped';

export interface PollOutcome {
  status: PollStatus;
  run?: Run;
  reason?: string;
  failure?: Failure;
}

const emptyCounts = (): RunCounts => runCounts.parse({});

/** A Transform that hashes what passes through and counts its bytes. */
function hashing() {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex'), size: () => size };
}

export async function pollBox(d: Deps, request: PollRequest, ports: PollPorts): Promise<PollOutcome> {
  const { studioId: sid, boxId } = request;
  const box = await d.repos.emailBoxes.get(sid, boxId);
  if (!box) return { status: 'skipped', reason: `The email box "${boxId}" no longer exists.` };

  if (request.trigger === 'schedule') {
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

  const runId = randomUUID();
  const started = d.now();
  const deadline = started.getTime() + request.budgetMs;
  // The lease outlives the budget by a margin, so a run that overruns still keeps others out.
  if (
    !(await d.repos.boxState.acquireLease(sid, boxId, runId, request.budgetMs + 60_000, started.getTime()))
  ) {
    return { status: 'busy', reason: 'Another poll of this box is running.' };
  }
  const run: Run = {
    id: runId,
    boxId,
    startedAt: started.toISOString(),
    status: 'running',
    trigger: request.trigger,
    counts: emptyCounts(),
    errors: [],
  };
  await d.repos.runs.put(sid, run);
  const log = d.logger.createChild({ persistentLogAttributes: { studioId: sid, boxId, runId } });

  let client: Pop3Client | undefined;
  let failure: Failure | undefined;
  let outOfTime = false;
  try {
    const password = await d.secrets.get(box.connection.passwordRef);
    client = await ports.open(box, password);
    const own = await ownAddresses(d, sid, box);
    outOfTime = await importAll(d, { sid, own, box, client, run, deadline, ports, log });
    // QUIT commits the DELEs; without it (a cut) the server keeps every message.
    await client.quit();
  } catch (error) {
    failure = describeFailure(error, box.connection);
    run.errors.push({ kind: failure.kind, message: failure.message });
    log.warn('poll failed', { kind: failure.kind, errorMessage: failure.message });
    client?.close();
  } finally {
    run.finishedAt = d.now().toISOString();
    run.status = failure ? 'failed' : outOfTime || run.errors.length > 0 ? 'partial' : 'succeeded';
    await d.repos.runs.put(sid, run);
    await d.repos.boxState.recordOutcome(sid, boxId, !failure, failure?.kind);
    await d.repos.boxState.releaseLease(sid, boxId, runId);
  }
  return { status: run.status as PollStatus, run, failure };
}

interface ImportContext {
  sid: string;
  /** The studio's own addresses (box, company, users): never auto-replied to. Read once per run. */
  own: string[];
  box: EmailBox;
  client: Pop3Client;
  run: Run;
  deadline: number;
  ports: PollPorts;
  log: Deps['logger'];
}

/** Imports every new message in server order; returns true when the time budget ran out first. */
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

  const fresh: { id: number; uid: string }[] = [];
  for (const u of uidls) {
    const marker = known.get(u.uid);
    if (!marker) {
      fresh.push(u);
      continue;
    }
    run.counts.skipped++;
    // Imported before but not deleted (the last run was cut before QUIT): delete it now.
    if (!box.leaveOnServer && marker.state !== 'excluded') await client.dele(u.id);
  }

  const excluded = box.excludeBefore
    ? await excludedByDate(client, fresh, box.excludeBefore)
    : new Set<number>();
  const limit = ctx.ports.inMemoryLimit ?? 1_000_000;
  const small = fresh.filter((u) => !excluded.has(u.id) && (sizes.get(u.id) ?? 0) <= limit);
  const large = new Set(
    fresh.filter((u) => !excluded.has(u.id) && (sizes.get(u.id) ?? 0) > limit).map((u) => u.id),
  );

  for (const u of fresh.filter((f) => excluded.has(f.id))) {
    await d.repos.importMarkers.mark(sid, box.id, {
      uidl: u.uid,
      state: 'excluded',
      at: d.now().toISOString(),
    });
    run.counts.skipped++;
  }

  const uidOf = new Map(fresh.map((u) => [u.id, u.uid]));
  // Small messages come pipelined; each large one streams on its own, in server order.
  const order = fresh.filter((u) => !excluded.has(u.id)).map((u) => u.id);
  let smallIter: AsyncGenerator<{ id: number; data: Buffer }> | undefined;
  const smallIds = small.map((u) => u.id);
  let smallIndex = 0;
  const nextSmall = async () => {
    smallIter ??= client.retrMany(smallIds.slice(smallIndex), { window: 16 });
    const r = await smallIter.next();
    return r.done ? undefined : r.value;
  };

  for (const id of order) {
    if (Date.now() >= ctx.deadline) {
      await smallIter?.return(undefined);
      return true;
    }
    const uid = uidOf.get(id) ?? '';
    const rawKey = `raw/${sid}/${box.id}/${createHash('sha256').update(uid).digest('hex').slice(0, 32)}.eml`;
    const h = hashing();
    let copy: Buffer | undefined;
    if (large.has(id)) {
      // Stop the pipelined stream before a large message, so the two never interleave.
      if (smallIter) {
        await smallIter.return(undefined);
        smallIter = undefined;
      }
      const stream = await client.retrStream(id);
      await d.blobs.put(rawKey, stream.pipe(h.stream), 'message/rfc822');
    } else {
      const msg = await nextSmall();
      smallIndex++;
      if (!msg || msg.id !== id)
        throw new Error(`POP3 returned message ${msg?.id} where ${id} was expected.`);
      await d.blobs.put(rawKey, Readable.from([msg.data]).pipe(h.stream), 'message/rfc822');
      copy = msg.data;
    }
    const sha256 = h.digest();
    await importOne(d, ctx, { popId: id, uid, rawKey, sha256, size: h.size(), copy });
  }
  return false;
}

/**
 * Messages dated before the box's cut-off, read from headers only (TOP n 0). A message without a
 * usable Date takes the date of its nearest dated neighbour in server order (arrival order).
 */
async function excludedByDate(
  client: Pop3Client,
  fresh: { id: number }[],
  excludeBefore: string,
): Promise<Set<number>> {
  const cutoff = Date.parse(`${excludeBefore}T00:00:00Z`);
  const dates: (number | undefined)[] = [];
  for (const u of fresh) {
    const head = (await client.top(u.id, 0)).toString('latin1');
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
  popId: number;
  uid: string;
  rawKey: string;
  sha256: string;
  size: number;
  /** The stored bytes, when still in memory. */
  copy?: Buffer;
}

async function importOne(d: Deps, ctx: ImportContext, f: Fetched): Promise<void> {
  const { sid, box, client, run } = ctx;
  const now = d.now().toISOString();
  const dele = async () => {
    if (!box.leaveOnServer) await client.dele(f.popId);
  };

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
    await dele();
    return;
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

  const built = parsed ? await classify(d, ctx, parsed) : undefined;
  const message: Message = parsed
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
    : {
        id,
        direction: 'in',
        status: 'quarantined',
        boxId: box.id,
        threadId: id,
        references: [],
        to: [],
        cc: [],
        subject: '',
        date: now,
        snippet: '',
        rawKey: f.rawKey,
        attachments: [],
        error: parseError,
        automatic: false,
      };

  const taskWrites = built?.actions.createTask
    ? [
        d.repos.tasks.createWrite(sid, {
          id: randomUUID(),
          title: `Email from ${parsed?.from?.name || parsed?.from?.address || 'unknown sender'}: ${message.subject || '(no subject)'}`,
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
  try {
    await d.repos.table.transact([
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
  } catch (error) {
    // Another run marked this UIDL or hash first: it is imported; count it as seen before.
    if (error instanceof ConditionFailed) {
      run.counts.skipped++;
      return;
    }
    throw error;
  }
  if (message.status === 'quarantined') {
    run.counts.quarantined++;
    run.errors.push({
      kind: 'quarantined',
      message: `Message ${f.uid} could not be parsed and was quarantined.`,
    });
  } else {
    run.counts.imported++;
  }
  run.counts.tasks += taskWrites.length;
  await dele();

  if (built?.actions.autoReply && ctx.ports.autoReply) {
    try {
      if (await sendAutoReply(d, ctx, message, built.targets)) run.counts.autoReplies++;
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      run.errors.push({
        kind: 'auto-reply-failed',
        message: `The auto-reply to ${built.targets.join(', ')} failed: ${text}`,
      });
      ctx.log.warn('auto-reply failed', { messageId: id, errorMessage: text });
    }
  }
}

async function ownAddresses(d: Deps, sid: string, box: EmailBox): Promise<string[]> {
  const company = await d.repos.companyEmail.get(sid, 'company');
  const users = await d.repos.userEmail.list(sid);
  return [
    box.connection.emailAddress,
    company?.emailAddress,
    company?.replyTo,
    ...users.flatMap((u) => [u.emailAddress, u.replyTo]),
  ].filter((a): a is string => Boolean(a));
}

async function classify(d: Deps, ctx: ImportContext, parsed: ParsedMessage) {
  const { sid, box, own } = ctx;
  const automatic = automaticReason(parsed.headers, parsed.from?.address);
  const thread = await matchThread(referencedIds(parsed.inReplyTo, parsed.references), (mid) =>
    d.repos.messages.findByMessageId(sid, mid),
  );
  let clientId = thread?.clientId;
  if (!clientId && parsed.from?.address) {
    const matches = await d.repos.clients.findByAddress(sid, parsed.from.address);
    // Several clients share an address (a couple): assign only when it is unambiguous.
    if (matches.length === 1) clientId = matches[0];
  }
  const autoRepliesInThread = thread ? await d.repos.autoReplies.countInThread(sid, thread.threadId) : 0;
  const actions = decideActions({
    automatic: automatic !== undefined,
    thread,
    autoCreateTask: box.autoCreateTask,
    sendAutoReply: box.sendAutoReply,
    autoReplyFirstEmailOnly: box.autoReplyFirstEmailOnly,
    autoRepliesInThread,
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
async function sendAutoReply(
  d: Deps,
  ctx: ImportContext,
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
