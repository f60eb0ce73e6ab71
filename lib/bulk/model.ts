/**
 * Bulk email (the Communication Wizard): the stored shapes of a job, its recipients and the
 * studio's bulk settings, and the one list of recipient states and skip reasons. No AWS here.
 */
import * as z from 'zod';

const id = z.string().min(1).max(64);

/**
 * A recipient's life: `queued` → `sending` (claimed by one worker) → `sent` | `failed`; `skipped`
 * before it was ever queued; `cancelled` when the job was cancelled first; `unknown` when a worker
 * died between claiming and recording (the message may or may not have left; never re-sent).
 */
export const RECIPIENT_STATES = [
  'queued',
  'sending',
  'sent',
  'failed',
  'skipped',
  'cancelled',
  'unknown',
] as const;
export type RecipientState = (typeof RECIPIENT_STATES)[number];

export const SKIP_REASONS = [
  'no-address',
  'no-marketing-consent',
  'blocked',
  'duplicate-address',
  'not-found',
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/**
 * `preparing`: accepted, its recipients being written from the stored list (sending may already
 * start, batch by batch); then `scheduled` (a later start) or `running`.
 */
export const JOB_STATUSES = [
  'preparing',
  'scheduled',
  'running',
  'paused',
  'cancelled',
  'completed',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Events a provider (SES) or the tracking endpoints report after a message left. */
export const DELIVERY_EVENTS = [
  'delivered',
  'bounced',
  'complained',
  'opened',
  'clicked',
  'unsubscribed',
] as const;
export type DeliveryEvent = (typeof DELIVERY_EVENTS)[number];

export const condition = z.strictObject({
  field: z.enum(['firstName', 'lastName', 'company', 'status', 'group', 'email', 'phone']),
  op: z.enum(['equals', 'notEquals', 'contains', 'startsWith', 'isEmpty', 'isNotEmpty']),
  value: z.string().max(200).optional(),
});
export type Condition = z.infer<typeof condition>;

/** Which clients a job goes to: every given criterion must hold (groups: any of them). */
export const selection = z
  .strictObject({
    groups: z
      .array(z.string().min(1).max(100))
      .max(50)
      .optional()
      .describe('Clients in any of these groups.'),
    statuses: z
      .array(z.string().min(1).max(50))
      .max(50)
      .optional()
      .describe('Clients with one of these statuses.'),
    filterId: id.optional().describe('A saved client filter (PUT /client-filters/{id}).'),
    conditions: z.array(condition).max(20).optional().describe('Field conditions, all of which must hold.'),
    clientIds: z
      .array(id)
      .max(50_000)
      .optional()
      .describe('Exactly these clients (with the other criteria, if any).'),
  })
  .refine((s) => Object.values(s).some((v) => v !== undefined), {
    error: 'name at least one of groups, statuses, filterId, conditions or clientIds.',
  });
export type Selection = z.infer<typeof selection>;

export const clientFilter = z.object({
  id,
  name: z.string().trim().min(1).max(200),
  conditions: z.array(condition).max(20),
});
export type ClientFilter = z.infer<typeof clientFilter>;

export const counts = z.object({
  queued: z.number().int().default(0),
  sending: z.number().int().default(0),
  sent: z.number().int().default(0),
  failed: z.number().int().default(0),
  skipped: z.number().int().default(0),
  cancelled: z.number().int().default(0),
  unknown: z.number().int().default(0),
});
export type Counts = z.infer<typeof counts>;

export const job = z.object({
  id,
  name: z.string().max(200).optional(),
  status: z.enum(JOB_STATUSES),
  formLetterId: id,
  /** The user the mail goes out as (their effective settings and signature). */
  userId: id,
  senderIdentityId: id.optional(),
  /** ISO time the job was asked to start at (now, or a scheduled time). */
  startAt: z.string(),
  createdAt: z.string(),
  createdBy: id,
  finishedAt: z.string().optional(),
  /** Why the job paused itself (a run of failures) or who paused it. */
  pauseReason: z.string().optional(),
  /** Recipients still queued wait for the cap's next period until this time. */
  waitingUntil: z.string().optional(),
  /** Consecutive failed recipients, across batches. */
  failStreak: z.number().int().default(0),
  total: z.number().int(),
  batches: z.number().int(),
  attachments: z.array(z.object({ id, filename: z.string(), contentType: z.string() })).default([]),
  /** Base URL of the public API the job's links point to (from the request that created it). */
  publicUrl: z.string().optional(),
  /** Where the confirmed recipient list is kept until every batch is written (blob key). */
  recipientsKey: z.string().optional(),
  /** Every batch is written (the preparation has finished). */
  prepared: z.boolean().optional(),
});
export type Job = z.infer<typeof job>;

export const recipient = z.object({
  /** Sort key inside the job: batch and position. */
  key: z.string(),
  batch: z.number().int(),
  clientId: id,
  address: z.string(),
  name: z.string().optional(),
  state: z.enum(RECIPIENT_STATES),
  skipReason: z.enum(SKIP_REASONS).optional(),
  /** The claim of the worker sending it (state `sending`). */
  claim: z.string().optional(),
  claimedAt: z.number().optional(),
  attempts: z.number().int().default(0),
  messageId: z.string().optional(),
  /** Id of the message record on the client. */
  recordId: z.string().optional(),
  sentAt: z.string().optional(),
  /** The server's words for a failure. */
  error: z.string().optional(),
  events: z.partialRecord(z.enum(DELIVERY_EVENTS), z.string()).default({}),
  /** What the last bounce or complaint said (SES's words), kept with the events. */
  eventDetail: z.string().optional(),
  /** The client's merge fields when the job was created (jobs from before: read from the client). */
  merge: z
    .object({
      firstName: z.string().optional(),
      lastName: z.string().optional(),
      company: z.string().optional(),
      phone: z.string().optional(),
    })
    .optional(),
});
export type Recipient = z.infer<typeof recipient>;

/** The client fields a bulk email's merge fields use. */
export function mergeSnapshot(c: {
  firstName?: string | undefined;
  lastName?: string | undefined;
  company?: string | undefined;
  phone?: string | undefined;
}): NonNullable<Recipient['merge']> {
  const out: NonNullable<Recipient['merge']> = {};
  if (c.firstName) out.firstName = c.firstName;
  if (c.lastName) out.lastName = c.lastName;
  if (c.company) out.company = c.company;
  if (c.phone) out.phone = c.phone;
  return out;
}

/** A per-period cap of the studio, e.g. 500 per 24 hours, shared by bulk jobs and single sends. */
export const cap = z.strictObject({
  count: z.number().int().min(1).max(10_000_000),
  periodMinutes: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60),
});
export type Cap = z.infer<typeof cap>;

export const bulkSettings = z.object({
  /** The studio's caps ("500 per 24 hours"); none by default. */
  caps: z.array(cap).max(5).default([]),
  /** SMTP and Gmail: messages per second at most (SES reads its own rate from the account). */
  smtpRatePerSecond: z.number().min(0.01).max(10_000).default(5),
  /** A job pauses itself after this many failed recipients in a row. */
  pauseAfterFailures: z.number().int().min(1).max(1000).default(10),
  /** Single (transactional) emails still go to blocked addresses. */
  bypassBlocksForTransactional: z.boolean().default(false),
  /** One-click unsubscribe headers and the `{{unsubscribe.url}}` link in bulk email. */
  unsubscribe: z.boolean().default(true),
  /** SMTP only: an open pixel and click redirects (SES reports its own). Off by default. */
  tracking: z.boolean().default(false),
});
export type BulkSettings = z.infer<typeof bulkSettings>;

export const blockEntry = z.object({
  address: z.string(),
  reason: z.enum(['unsubscribed', 'bounced', 'complained', 'manual']),
  at: z.string(),
  detail: z.string().optional(),
  jobId: z.string().optional(),
  /** Set when reinstated: the address is not blocked any more, the history stays. */
  reinstated: z.object({ by: z.string(), reason: z.string(), at: z.string() }).optional(),
});
export type BlockEntry = z.infer<typeof blockEntry>;

/** One queue message: prepare a job (write its batches), start it (enqueue its batches), or send one batch of it. */
export type BulkMessage =
  | { kind: 'prepare'; studioId: string; jobId: string }
  | { kind: 'start'; studioId: string; jobId: string }
  | { kind: 'batch'; studioId: string; jobId: string; batch: number };

export function parseBulkMessage(value: unknown): BulkMessage {
  const m = value as Partial<BulkMessage> & { batch?: unknown };
  if (
    !m ||
    typeof m.studioId !== 'string' ||
    typeof m.jobId !== 'string' ||
    (m.kind !== 'start' && m.kind !== 'prepare' && (m.kind !== 'batch' || typeof m.batch !== 'number'))
  )
    throw new Error('Not a bulk-email queue message (kind, studioId, jobId, batch).');
  return m as BulkMessage;
}
