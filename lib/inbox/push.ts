/**
 * Push intake: a message forwarded to a box's receiving address, already stored by whoever
 * received it (SES's S3 action; the inbound SMTP server of `npm start`), imported through the
 * same pipeline as polled mail — store first, per-message isolation, studio-wide dedupe, client
 * matching, threading, task and auto-reply with every loop guard, a run record and an event.
 *
 * Exactly once under an at-least-once queue: the message's marker (`push:<id>`) and content-hash
 * marker are written in the import's one transaction, so a redelivered notice finds them and
 * does nothing; a crash before that transaction leaves nothing recorded, and the redelivery
 * imports it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Transform } from 'node:stream';
import type { Deps } from '#lib/app/deps';
import { type EmailBox, type Run, runCounts } from '#lib/domain/model';
import {
  forwardingConfirmation,
  type InboundNotice,
  localPartOn,
  takesPush,
  verdictQuarantineReason,
} from '#lib/domain/receiving';
import { POLL_EVENT_SOURCE, POLL_FAILED, POLL_SUCCEEDED, PUSH_UNROUTED } from '#lib/events';
import { MAX_EVENT_ERRORS, type PollOutcomeDetail } from './events.ts';
import { StorageError } from './failures.ts';
import {
  errorList,
  type Fetched,
  type ImportContext,
  ImportOrder,
  importOne,
  ownAddresses,
  type PollPorts,
  recordQuarantined,
  sendQueuedReplies,
} from './poll.ts';

/** Where a message that reached no box is kept (never dropped), for an admin to look at. */
export const UNROUTED_PREFIX = 'inbound/unrouted/';

/** The marker namespace of pushed mail (UIDL markers are per mailbox identity; this is one more). */
export const PUSH_IDENTITY = 'push';

export interface PushOutcome {
  /** Per box the notice was routed to: the run that imported it. */
  imported: { studioId: string; boxId: string; run: Run }[];
  /** True when no recipient was a box's: the message was kept under UNROUTED_PREFIX and reported. */
  unrouted: boolean;
}

/**
 * Imports one pushed message for every box among its recipients. Throws only when our own storage
 * fails (the queue then delivers it again); a message that cannot be filed is quarantined.
 */
export async function importPushed(d: Deps, notice: InboundNotice, ports: PollPorts): Promise<PushOutcome> {
  const domain = d.config.receivingDomain;
  const routes = new Map<string, { studioId: string; boxId: string }>();
  for (const recipient of notice.recipients) {
    const local = domain ? localPartOn(recipient, domain) : undefined;
    if (!local) continue;
    const route = await d.repos.emailBoxes.routeOf(local);
    if (route) routes.set(`${route.studioId}/${route.boxId}`, route);
  }
  const boxes: { studioId: string; box: EmailBox }[] = [];
  for (const route of routes.values()) {
    const box = await d.repos.emailBoxes.get(route.studioId, route.boxId);
    if (box && takesPush(box.intake)) boxes.push({ studioId: route.studioId, box });
  }
  if (boxes.length === 0) {
    await keepUnrouted(d, notice);
    return { imported: [], unrouted: true };
  }
  const imported = [];
  for (const { studioId, box } of boxes) {
    imported.push({ studioId, boxId: box.id, run: await importForBox(d, studioId, box, notice, ports) });
  }
  // Every box has its copy (under its studio's prefix) and its markers: the landing copy can go.
  await d.blobs.delete(notice.key).catch((error: unknown) => {
    d.logger.warn('could not delete the landed copy of a pushed message', {
      key: notice.key,
      errorMessage: (error as Error).message,
    });
  });
  return { imported, unrouted: false };
}

/** Copies the landed message under the studio's raw prefix, hashing it on the way. */
async function storeCopy(d: Deps, studioId: string, boxId: string, notice: InboundNotice) {
  const rawKey = `raw/${studioId}/${boxId}/push-${createHash('sha256').update(notice.id).digest('hex').slice(0, 32)}.eml`;
  const hash = createHash('sha256');
  try {
    const source = await d.blobs.get(notice.key);
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    source.on('error', (error) => hashing.destroy(error));
    const { size } = await d.blobs.put(rawKey, source.pipe(hashing), 'message/rfc822');
    return { rawKey, sha256: hash.digest('hex'), size };
  } catch (error) {
    throw new StorageError(error);
  }
}

async function importForBox(
  d: Deps,
  sid: string,
  box: EmailBox,
  notice: InboundNotice,
  ports: PollPorts,
): Promise<Run> {
  const now = d.now();
  const run: Run = {
    id: randomUUID(),
    boxId: box.id,
    startedAt: now.toISOString(),
    status: 'running',
    trigger: 'push',
    counts: runCounts.parse({ seen: 1 }),
    errors: [],
  };
  const errors = errorList(run);
  const log = d.logger.createChild({
    persistentLogAttributes: { studioId: sid, boxId: box.id, runId: run.id, pushed: notice.id },
  });
  const clock = ports.clock ?? Date.now;
  const ctx: ImportContext = {
    sid,
    own: [],
    box,
    identity: PUSH_IDENTITY,
    // A pushed message has no POP3 session; importOne never reads it.
    client: undefined as never,
    run,
    errors,
    deadline: clock() + 60_000,
    retrievalDeadline: clock() + 60_000,
    ports,
    log,
    replies: [],
    clock,
    judgeAfterRetrieval: new Set(),
    order: new ImportOrder(),
  };
  const uid = `push:${notice.id}`;
  // Redelivered after it was recorded: nothing to do (the marker is written with the import).
  const marker = (await d.repos.importMarkers.findUidls(sid, box.id, PUSH_IDENTITY, [uid])).get(uid);
  if (marker && marker.state !== 'failed') {
    run.counts.skipped++;
    return finish(d, sid, box, run, errors.total);
  }
  const verdictReason = verdictQuarantineReason(notice.verdicts);
  let filed: Fetched | undefined;
  try {
    const copy = await storeCopy(d, sid, box.id, notice);
    const f: Fetched = { uid, ...copy, pushed: { verdicts: notice.verdicts } };
    ctx.own = await ownAddresses(d, sid, box, ctx);
    if (verdictReason) await recordQuarantined(d, ctx, f, verdictReason);
    else {
      const ticket = ctx.order.enter(f.sha256);
      try {
        await importOne(d, ctx, f, ticket);
      } finally {
        ticket.release();
      }
      filed = f;
    }
  } catch (error) {
    // Our own storage failed: the run is recorded failed and the queue delivers the notice again.
    run.status = 'failed';
    run.errors.push({ kind: 'storage', message: 'The message could not be stored; it will be retried.' });
    await finish(d, sid, box, run, errors.total).catch(() => {});
    throw error;
  }
  // The message is recorded: what follows must not fail the notice (a redelivery would skip it).
  if (filed) {
    await noteForwardingConfirmation(d, sid, box, filed, log).catch((error: unknown) => {
      log.warn('could not check for a forwarding confirmation', { errorMessage: (error as Error).message });
    });
  }
  await sendQueuedReplies(d, ctx);
  return finish(d, sid, box, run, errors.total);
}

/** Gmail's forwarding confirmation: kept on the box state, so the box view shows it to the admin. */
async function noteForwardingConfirmation(
  d: Deps,
  sid: string,
  box: EmailBox,
  f: Fetched,
  log: Deps['logger'],
): Promise<void> {
  const marker = (await d.repos.importMarkers.findUidls(sid, box.id, PUSH_IDENTITY, [f.uid])).get(f.uid);
  const message = marker?.messageId ? await d.repos.messages.get(sid, marker.messageId) : undefined;
  if (!message?.from) return;
  const text = message.textKey
    ? (await d.blobs.getBuffer(message.textKey)).toString('utf8')
    : message.snippet;
  const found = forwardingConfirmation({
    from: message.from.address,
    subject: message.subject,
    text,
    receivedAt: message.date,
  });
  if (!found) return;
  await d.repos.boxState.setForwardingConfirmation(sid, box.id, found);
  log.info('forwarding confirmation received', { messageId: message.id });
}

async function finish(d: Deps, sid: string, box: EmailBox, run: Run, errorCount: number): Promise<Run> {
  if (run.status === 'running') run.status = run.errors.length > 0 ? 'partial' : 'succeeded';
  run.finishedAt = d.now().toISOString();
  await d.repos.runs.put(sid, run);
  const detail: PollOutcomeDetail = {
    studioId: sid,
    boxId: box.id,
    boxDescription: box.description,
    runId: run.id,
    trigger: 'push',
    status: run.status === 'failed' ? 'failed' : run.status === 'partial' ? 'partial' : 'succeeded',
    counts: run.counts,
    errors: run.errors.slice(0, MAX_EVENT_ERRORS),
    errorCount,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
  };
  await d.events.publish([
    {
      source: POLL_EVENT_SOURCE,
      detailType: detail.status === 'failed' ? POLL_FAILED : POLL_SUCCEEDED,
      detail: detail as unknown as Record<string, unknown>,
    },
  ]);
  return run;
}

/** No box takes this message: kept under UNROUTED_PREFIX (never dropped) and reported. */
async function keepUnrouted(d: Deps, notice: InboundNotice): Promise<void> {
  const target = `${UNROUTED_PREFIX}${notice.key.split('/').pop() ?? notice.id}`;
  if (notice.key !== target) {
    try {
      // A redelivered notice finds the copy made last time (its report may have failed).
      if (!(await d.blobs.exists(target)))
        await d.blobs.put(target, await d.blobs.get(notice.key), 'message/rfc822');
      await d.blobs.delete(notice.key);
    } catch (error) {
      throw new StorageError(error);
    }
  }
  d.logger.warn('pushed message for no email box kept', {
    key: target,
    recipients: notice.recipients.length,
  });
  await d.events.publish([
    {
      source: POLL_EVENT_SOURCE,
      detailType: PUSH_UNROUTED,
      detail: { key: target, recipients: notice.recipients, messageId: notice.id },
    },
  ]);
}
