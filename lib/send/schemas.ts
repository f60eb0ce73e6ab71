/**
 * Request bodies of the send function. Objects are strict, so a typo such as `formLeterId` is
 * refused instead of being ignored (which could send the wrong email).
 */
import * as z from 'zod';
import { requestSchemas, responseSchemas } from '#lib/http/registry';
import { oneLine } from '#lib/http/validate';

/**
 * RFC 5322 msg-id, ASCII only: `<` dot-atom-text `@` (dot-atom-text / no-fold-literal) `>`.
 * In-Reply-To and References carry nothing else, so no 8-bit byte or line break reaches a header.
 */
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const DOT_ATOM = `${ATEXT}(?:\\.${ATEXT})*`;
const MSG_ID = new RegExp(`^<${DOT_ATOM}@(?:${DOT_ATOM}|\\[[\\x21-\\x5a\\x5e-\\x7e]*\\])>$`);
export const isMsgId = (value: string): boolean => value.length <= 998 && MSG_ID.test(value);

const id = z
  .string()
  .min(1, { error: 'must not be empty.' })
  .max(64, { error: 'is not an id this API gives out (at most 64 characters).' });
const email = z
  .email({ error: 'must be an email address such as name@example.com.' })
  .max(254, { error: 'must be at most 254 characters long.' });

/** `"ann@example.com"` or `{ "address": "ann@example.com", "name": "Ann Lee" }`. */
export const recipient = z.union(
  [
    email,
    z.strictObject({
      address: email,
      name: oneLine(z.string().trim().max(200, { error: 'must be at most 200 characters long.' })).optional(),
    }),
  ],
  { error: 'must be an email address, or an object with "address" and an optional "name".' },
);
/** Recipients per field (to, cc, bcc) one send takes. */
export const MAX_RECIPIENTS = 50;

/** Whether the send API takes `address` as a recipient (the auto-reply asks before it claims). */
export function isSendableAddress(address: string): boolean {
  return email.safeParse(address).success;
}

const recipients = (max: number) =>
  z
    .array(recipient)
    .max(max, { error: `must have at most ${max} addresses.` })
    .optional();

export const sendEmailInput = z
  .strictObject({
    clientId: id.optional(),
    to: recipients(MAX_RECIPIENTS),
    cc: recipients(MAX_RECIPIENTS),
    bcc: recipients(MAX_RECIPIENTS),
    formLetterId: id.optional(),
    subject: z
      .string()
      .trim()
      .min(1, { error: 'must not be empty.' })
      .max(998, { error: 'must be at most 998 characters long.' })
      .optional(),
    html: z.string().max(500_000, { error: 'must be at most 500000 characters long.' }).optional(),
    text: z.string().max(200_000, { error: 'must be at most 200000 characters long.' }).optional(),
    /** Another signature than the default, or null for none. */
    signatureId: id.nullable().optional(),
    /** The message this answers: its id in this system, or its Message-ID header (`<…@…>`). */
    inReplyTo: z
      .string()
      .min(1)
      .max(998, { error: 'must be at most 998 characters long.' })
      .refine((v) => (v.trimStart().startsWith('<') ? isMsgId(v.trim()) : !/[^\x21-\x7e]/.test(v)), {
        error:
          'must be the id of a message here, or its Message-ID written <left@right> in plain ASCII (RFC 5322), without spaces or line breaks.',
      })
      .optional(),
    /** Uploaded files (POST /attachments), besides a form letter's automatic ones. */
    attachments: z
      .array(
        z.strictObject({
          id,
          filename: z.string().trim().min(1).max(255),
          contentType: z.string().trim().min(1).max(255).default('application/octet-stream'),
        }),
      )
      .max(20, { error: 'must have at most 20 attachments.' })
      .optional(),
  })
  .superRefine((v, ctx) => {
    if (!v.clientId && (!v.to || v.to.length === 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['to'],
        message: 'is required unless clientId is given: say who the email goes to.',
      });
    }
    if (v.formLetterId) {
      for (const k of ['subject', 'html', 'text'] as const) {
        if (v[k] !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [k],
            message: 'must be left out with formLetterId: the form letter supplies subject and body.',
          });
        }
      }
      return;
    }
    if (v.subject === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['subject'],
        message: 'is required unless formLetterId is given.',
      });
    }
    if (v.html === undefined && v.text === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['text'],
        message: 'or html is required unless formLetterId is given: the email needs a body.',
      });
    }
  });
export type SendEmailInput = z.output<typeof sendEmailInput>;

export const testEmailInput = z.strictObject({
  /** Where the test goes; the sender's own address when left out. */
  to: email.optional(),
});
export type TestEmailInput = z.output<typeof testEmailInput>;

// ── responses (documentation: the OpenAPI document is generated from these) ──────────────────

const diagnosis = z.object({
  field: z.string().describe('The settings field to look at, e.g. `transport.port`.'),
  settings: z.enum(['company', 'user']).describe('Whose settings hold that field.'),
  kind: z.string(),
  problem: z.string(),
  advice: z.string(),
  serverCode: z.number().optional(),
  serverReply: z.string().optional(),
  retryable: z.boolean().describe('Whether the same message might go through later unchanged.'),
});

export const deliveryView = z.union([
  z.object({
    ok: z.literal(true),
    id: z.string(),
    threadId: z.string(),
    clientId: z.string().optional(),
    messageId: z.string(),
    providerMessageId: z.string().optional(),
    accepted: z.array(z.string()),
    rejected: z.array(z.string()),
    response: z.string().optional(),
    attempts: z.number(),
    recorded: z.boolean(),
  }),
  z.object({ ok: z.literal(false), diagnosis }).passthrough(),
]);

const transportSummary = z.record(z.string(), z.union([z.string(), z.number()]));
export const testResultView = z.union([
  z.object({
    ok: z.literal(true),
    messageId: z.string(),
    providerMessageId: z.string().optional(),
    response: z.string().optional(),
    from: z.string(),
    to: z.string(),
    transport: transportSummary,
    attempts: z.number(),
  }),
  z.object({
    ok: z.literal(false),
    diagnosis,
    from: z.string(),
    to: z.string(),
    transport: transportSummary,
  }),
]);

const address = z.unknown().describe('An address as sent: text or `{ address, name }`.');
export const previewView = z.object({
  from: address,
  replyTo: address.optional(),
  to: z.array(address),
  cc: z.array(address).optional(),
  bcc: z.array(address).optional(),
  subject: z.string(),
  html: z.string().optional(),
  text: z.string().optional(),
  clientId: z.string().optional(),
  signatureId: z.string().optional(),
  mergeFields: z.array(z.string()).optional(),
  inReplyTo: z.string().optional(),
  references: z.array(z.string()).optional(),
  transport: z.string(),
});

requestSchemas.add(sendEmailInput, { id: 'SendEmailInput' });
requestSchemas.add(testEmailInput, { id: 'TestEmailInput' });
responseSchemas.add(deliveryView, { id: 'Delivery' });
responseSchemas.add(testResultView, { id: 'TestEmailResult' });
responseSchemas.add(previewView, { id: 'EmailPreview' });
