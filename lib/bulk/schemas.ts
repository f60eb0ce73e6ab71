/** What the bulk-email API accepts and answers (zod); registered for the OpenAPI document. */
import * as z from 'zod';
import { requestSchemas, responseSchemas } from '#lib/http/registry';
import {
  blockEntry,
  bulkSettings,
  cap,
  clientFilter,
  condition,
  counts,
  DELIVERY_EVENTS,
  JOB_STATUSES,
  RECIPIENT_STATES,
  recipient,
  SKIP_REASONS,
  selection,
} from './model.ts';

const id = z.string().min(1).max(64);

export const previewInput = z.strictObject({ selection });
requestSchemas.add(previewInput, { id: 'BulkPreviewInput' });

const person = z.object({
  clientId: z.string(),
  name: z.string().optional(),
  address: z.string().optional(),
});
export const previewView = z.object({
  recipients: z.array(person.extend({ address: z.string() })),
  skipped: z.array(
    person.extend({
      reason: z.enum(SKIP_REASONS),
      blockReason: z
        .string()
        .optional()
        .describe('For `blocked`: unsubscribed, bounced, complained or manual.'),
    }),
  ),
});
responseSchemas.add(previewView, { id: 'BulkPreview' });

export const attachmentRef = z.strictObject({
  id,
  filename: z.string().trim().min(1).max(255),
  contentType: z.string().trim().min(1).max(255).default('application/octet-stream'),
});

export const createInput = z
  .strictObject({
    name: z.string().trim().max(200).optional(),
    formLetterId: id.describe('The form letter every email is made from (merge fields filled per client).'),
    recipients: z
      .array(id)
      .min(1)
      .max(50_000)
      .optional()
      .describe('The confirmed client ids (from the preview, after including or excluding people).'),
    selection: selection.optional().describe('Or: a selection, resolved when the job is created.'),
    exclude: z.array(id).max(50_000).optional().describe('Client ids left out of `selection`.'),
    userId: id.optional().describe('Send as this user (admins only); default: the caller.'),
    senderIdentityId: id
      .optional()
      .describe('A verified sender identity (GET /sender-identities) that must cover the From address.'),
    startAt: z.iso.datetime({ offset: true }).optional().describe('Start later (ISO time); default: now.'),
    attachments: z
      .array(attachmentRef)
      .max(20)
      .default([])
      .describe('Uploaded files (POST /attachments) added to every email.'),
  })
  .refine((v) => (v.recipients === undefined) !== (v.selection === undefined), {
    error: 'give either recipients (client ids) or selection, not both.',
    path: ['recipients'],
  });
requestSchemas.add(createInput, { id: 'BulkEmailInput' });
export type CreateInput = z.infer<typeof createInput>;

export const createdView = z.object({
  id: z.string(),
  status: z.enum(JOB_STATUSES),
  total: z.number().int(),
  skipped: z.number().int(),
  startAt: z.string(),
});
responseSchemas.add(createdView, { id: 'BulkEmailCreated' });

export const progressView = z.object({
  id: z.string(),
  name: z.string().optional(),
  status: z.enum(JOB_STATUSES),
  formLetterId: z.string(),
  userId: z.string(),
  createdAt: z.string(),
  startAt: z.string(),
  finishedAt: z.string().optional(),
  pauseReason: z.string().optional(),
  total: z.number().int(),
  counts,
  delivered: z.number().int(),
  waiting: z.number().int().describe('Queued recipients held back until `waitingUntil` by the studio cap.'),
  waitingUntil: z.string().optional(),
  ratePerMinute: z.number().describe('Sends per minute so far.'),
  expectedFinishAt: z.string().optional(),
});
responseSchemas.add(progressView, { id: 'BulkEmailProgress' });

export const jobList = z.object({
  items: z.array(
    progressView
      .omit({ counts: true, delivered: true, waiting: true, ratePerMinute: true })
      .extend({ counts: counts.optional() }),
  ),
  nextCursor: z.string().optional(),
});
responseSchemas.add(jobList, { id: 'BulkEmailList' });

export const recipientView = recipient.omit({ claim: true, claimedAt: true });
export const recipientPage = z.object({ items: z.array(recipientView), nextCursor: z.string().optional() });
responseSchemas.add(recipientPage, { id: 'BulkRecipientPage' });

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100).describe('Items per page.'),
  cursor: z.string().optional().describe('From the previous page.'),
});
export const recipientQuery = pageQuery.extend({
  state: z.enum(RECIPIENT_STATES).optional().describe('Only recipients in this state.'),
});

export const reportView = z.object({
  id: z.string(),
  status: z.enum(JOB_STATUSES),
  total: z.number().int(),
  counts,
  events: z.record(z.enum(DELIVERY_EVENTS), z.number().int()),
  rates: z
    .object({
      delivered: z.number(),
      bounced: z.number(),
      complained: z.number(),
      opened: z.number(),
      clicked: z.number(),
    })
    .describe('Shares of the emails sent.'),
  unsubscribed: z.number().int(),
});
responseSchemas.add(reportView, { id: 'BulkEmailReport' });

export const settingsInput = z.strictObject({
  caps: z.array(cap).max(5).default([]),
  smtpRatePerSecond: bulkSettings.shape.smtpRatePerSecond,
  pauseAfterFailures: bulkSettings.shape.pauseAfterFailures,
  bypassBlocksForTransactional: z.boolean().default(false),
  unsubscribe: z.boolean().default(true),
  tracking: z.boolean().default(false),
});
requestSchemas.add(settingsInput, { id: 'BulkEmailSettingsInput' });
responseSchemas.add(bulkSettings, { id: 'BulkEmailSettings' });

export const filterInput = z.strictObject({
  name: z.string().trim().min(1).max(200),
  conditions: z.array(condition).min(1).max(20),
});
requestSchemas.add(filterInput, { id: 'ClientFilterInput' });
responseSchemas.add(clientFilter, { id: 'ClientFilter' });
export const filterList = z.object({ items: z.array(clientFilter) });

export const blockView = z.object({
  address: z.string(),
  blocked: z.boolean(),
  history: z.array(blockEntry),
});
export const blockPage = z.object({ items: z.array(blockView), nextCursor: z.string().optional() });
responseSchemas.add(blockPage, { id: 'BlockList' });
export const blockQuery = pageQuery.extend({
  all: z.enum(['true', 'false']).default('false').describe('`true` lists reinstated addresses too.'),
});
export const blockInput = z.strictObject({ address: z.email(), detail: z.string().max(500).optional() });
export const reinstateInput = z.strictObject({ reason: z.string().trim().min(1).max(500) });

export const uploadInput = z.strictObject({
  filename: z.string().trim().min(1).max(255),
  contentType: z.string().trim().min(1).max(255).default('application/octet-stream'),
  size: z.number().int().min(1).describe('Bytes; at most 30 MB.'),
});
export const uploadView = z.object({
  id: z.string(),
  filename: z.string(),
  contentType: z.string(),
  uploadUrl: z
    .string()
    .describe("PUT the file's bytes here (with the same Content-Type) before using the id."),
  expiresAt: z.string(),
});
responseSchemas.add(uploadView, { id: 'AttachmentUpload' });
