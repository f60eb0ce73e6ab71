/**
 * Rules for incoming mail: what is automatic (never auto-replied to, never a task), who an
 * auto-reply goes to, and how a message joins a thread. Pure; the inbox poller feeds it headers.
 */
import { addressKey } from './addresses.ts';

/** Header lookup, case-insensitive; several values joined by ", ". */
export type Headers = (name: string) => string | undefined;

export function headersFrom(map: Map<string, unknown> | Record<string, unknown>): Headers {
  const entries = map instanceof Map ? [...map.entries()] : Object.entries(map);
  const lower = new Map(entries.map(([k, v]) => [k.toLowerCase(), v]));
  return (name) => {
    const v = lower.get(name.toLowerCase());
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return v.map(headerText).join(', ');
    return headerText(v);
  };
}

function headerText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    // mailparser gives structured values for some headers.
    const o = v as { value?: unknown; text?: unknown };
    if (typeof o.text === 'string') return o.text;
    if (typeof o.value === 'string') {
      const params = (v as { params?: Record<string, string> }).params ?? {};
      return [o.value, ...Object.entries(params).map(([k, p]) => `${k}=${p}`)].join('; ');
    }
  }
  return String(v);
}

const SYSTEM_SENDERS =
  /^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?|listserv|majordomo)([+.-].*)?$/i;

/**
 * Why a message must not get an auto-reply or a task (RFC 3834 and common practice), or undefined
 * for mail a person wrote.
 */
export function automaticReason(h: Headers, fromAddress: string | undefined): string | undefined {
  const autoSubmitted = h('auto-submitted')?.trim().toLowerCase();
  if (autoSubmitted && autoSubmitted !== 'no') return `Auto-Submitted: ${autoSubmitted}`;
  const precedence = h('precedence')?.trim().toLowerCase();
  if (precedence && ['bulk', 'list', 'junk', 'auto_reply'].includes(precedence))
    return `Precedence: ${precedence}`;
  for (const name of ['x-autoreply', 'x-autorespond', 'x-autoresponder', 'x-auto-reply']) {
    if (h(name) !== undefined) return `${name} present`;
  }
  const suppress = h('x-auto-response-suppress')?.toLowerCase() ?? '';
  if (/\b(all|autoreply|oof)\b/.test(suppress)) return `X-Auto-Response-Suppress: ${suppress}`;
  if (h('list-id') !== undefined || h('list-unsubscribe') !== undefined) return 'mailing list';
  if (h('feedback-type') !== undefined) return 'feedback report';
  const returnPath = h('return-path')?.trim();
  if (returnPath !== undefined && /^<\s*>$/.test(returnPath)) return 'empty Return-Path (a bounce)';
  const contentType = h('content-type')?.toLowerCase() ?? '';
  if (contentType.startsWith('multipart/report')) return 'delivery or read report';
  const local = fromAddress?.split('@')[0] ?? '';
  if (!fromAddress) return 'no sender address';
  if (SYSTEM_SENDERS.test(local)) return `system sender ${fromAddress}`;
  return undefined;
}

export interface ReplyTargetsInput {
  from: string | undefined;
  replyTo: string[];
  to: string[];
  cc: string[];
  /** The studio's own addresses (box, company, users): never auto-replied to. */
  own: string[];
  toAll: boolean;
}

/** Addresses an auto-reply goes to: the sender (Reply-To if given), or everyone on To and CC too. */
export function autoReplyTargets(input: ReplyTargetsInput): string[] {
  const own = new Set(input.own.map(addressKey));
  const sender = input.replyTo.length > 0 ? input.replyTo : input.from ? [input.from] : [];
  const candidates = input.toAll ? [...sender, ...input.to, ...input.cc] : sender;
  const seen = new Set<string>();
  const out: string[] = [];
  for (const address of candidates) {
    const key = addressKey(address);
    if (!key || own.has(key) || seen.has(key)) continue;
    const local = key.split('@')[0] ?? '';
    if (SYSTEM_SENDERS.test(local)) continue;
    seen.add(key);
    out.push(address.trim());
  }
  return out;
}

/** A message we already know, as found by its Message-ID. */
export interface KnownMessage {
  id: string;
  threadId: string;
  clientId?: string;
  direction: 'in' | 'out';
}

export interface ThreadMatch {
  threadId: string;
  clientId?: string;
  /** True when the message answers one we sent. */
  repliesToOurs: boolean;
}

/** Referenced Message-IDs looked up to thread a message (one query each): the nearest ones. */
export const MAX_THREAD_LOOKUPS = 20;

/** Message-IDs a message refers to, nearest first: In-Reply-To, then References from the end. */
export function referencedIds(inReplyTo: string | undefined, references: string[]): string[] {
  const ids = [...(inReplyTo ? extractIds(inReplyTo) : []), ...references.flatMap(extractIds).reverse()];
  return [...new Set(ids)].slice(0, MAX_THREAD_LOOKUPS);
}

/** Longer than a header line may be (RFC 5322): not a Message-ID, and too long for a table key. */
const MAX_ID_LENGTH = 998;

export function extractIds(text: string): string[] {
  return (text.match(/<[^<>\s]+>/g) ?? []).filter((id) => id.length <= MAX_ID_LENGTH);
}

/**
 * Finds the thread a message joins: the first referenced Message-ID we know. A reply joins that
 * thread and its client even when it comes from another address.
 */
export async function matchThread(
  ids: string[],
  lookup: (messageId: string) => Promise<KnownMessage[]>,
): Promise<ThreadMatch | undefined> {
  for (const id of ids) {
    const known = await lookup(id);
    if (known.length === 0) continue;
    // Prefer what we sent (it is certainly ours), then anything that names a client.
    const best =
      known.find((k) => k.direction === 'out') ?? known.find((k) => k.clientId !== undefined) ?? known[0];
    if (!best) continue;
    return {
      threadId: best.threadId,
      clientId: best.clientId,
      repliesToOurs: known.some((k) => k.direction === 'out'),
    };
  }
  return undefined;
}

export interface ActionInput {
  automatic: boolean;
  thread: ThreadMatch | undefined;
  autoCreateTask: boolean;
  sendAutoReply: boolean;
  /** Only a message that starts a new thread gets an auto-reply. */
  autoReplyFirstEmailOnly: boolean;
}

/** Whether an imported message gets a task and an auto-reply. */
export function decideActions(input: ActionInput): {
  createTask: boolean;
  autoReply: boolean;
  why: string[];
} {
  const why: string[] = [];
  const isNew = input.thread === undefined;
  const createTask = input.autoCreateTask && !input.automatic && isNew;
  if (input.autoCreateTask && !createTask) {
    why.push(input.automatic ? 'no task: automatic message' : 'no task: reply in a known thread');
  }
  let autoReply = input.sendAutoReply && !input.automatic;
  if (input.sendAutoReply && input.automatic) why.push('no auto-reply: automatic message');
  if (autoReply && input.autoReplyFirstEmailOnly && !isNew) {
    autoReply = false;
    why.push('no auto-reply: only the first email of a thread gets one');
  }
  return { createTask, autoReply, why };
}
