/**
 * Stored shapes of every entity, as zod schemas. These are the records the repositories
 * read and write; API input schemas (which carry passwords instead of secret references)
 * live with the handlers. No AWS imports here.
 */
import * as z from 'zod';
import { isMailbox } from './addresses.ts';
import { INTAKE_MODES } from './receiving.ts';

const id = z.string().min(1).max(64);
const verdictStatus = z.enum(['PASS', 'FAIL', 'GRAY', 'PROCESSING_FAILED', 'DISABLED']);
const name = z.string().trim().min(1).max(200);
const email = z.email().max(254);
/** Reference to a secret in the secret store (an ARN in AWS); never the secret itself. */
export const secretRef = z.string().min(1);

export const smtpSecurity = z.enum(['ssl', 'starttls', 'none']);
export type SmtpSecurity = z.infer<typeof smtpSecurity>;

/** OAuth2 providers the sign-in knows (lib/oauth/providers.ts). */
export const oauthProvider = z.enum(['google', 'microsoft']);
export type OAuthProvider = z.infer<typeof oauthProvider>;

/** What the OAuth2 sign-in left on the box (the tokens themselves are in the secret store). */
export const boxOAuth = z.object({
  signedInAt: z.iso.datetime(),
  /** Scopes the provider granted. */
  scope: z.string().max(2000).optional(),
  /** When the refresh token stops working, when the provider or the policy says (Google "Testing" apps: 7 days). */
  refreshExpiresAt: z.iso.datetime().optional(),
  /** The last "sign in again soon" email sent, so it goes once per sign-in. */
  expiryWarnedAt: z.iso.datetime().optional(),
  /** Set when a refresh failed (revoked, expired): the box needs a new sign-in. */
  failedAt: z.iso.datetime().optional(),
  failure: z.string().max(500).optional(),
});
export type BoxOAuth = z.infer<typeof boxOAuth>;

/** How a send transport logs on: a password (SMTP AUTH), or the tokens of an OAuth2 sign-in. */
export const transportAuthentication = z.enum(['password', 'oauth2']);
export type TransportAuthentication = z.infer<typeof transportAuthentication>;

/**
 * How mail leaves the studio. `ses` plays the role of the seed's "StudioPlus Mail". SMTP and Gmail
 * log on with a password, or (`authentication: oauth2`) with XOAUTH2 and the tokens of a sign-in,
 * whose grant is then what `passwordRef` holds (lib/oauth/grant.ts) and whose facts are `oauth`.
 * `graph` sends through Microsoft Graph `sendMail` as the sending address, for Microsoft 365
 * tenants with SMTP AUTH off: app credentials (`tenantId`, `clientId`, the client secret under
 * `passwordRef`) or a sign-in with Microsoft. Fields after `passwordRef` were added later (absent = password).
 */
export const transportRecord = z.discriminatedUnion('method', [
  z.object({ method: z.literal('ses') }),
  z.object({
    method: z.literal('smtp'),
    server: z.string().min(1).max(253),
    port: z.number().int().min(1).max(65535),
    security: smtpSecurity,
    logonName: z.string().max(254).optional(),
    passwordRef: secretRef.optional(),
    authentication: transportAuthentication.optional(),
    provider: oauthProvider.optional(),
    oauth: boxOAuth.optional(),
  }),
  z.object({
    method: z.literal('gmail'),
    passwordRef: secretRef.optional(),
    authentication: transportAuthentication.optional(),
    oauth: boxOAuth.optional(),
  }),
  z.object({
    method: z.literal('graph'),
    authentication: z.enum(['app', 'oauth2']),
    tenantId: z.string().min(1).max(253).optional(),
    clientId: z.string().min(1).max(100).optional(),
    passwordRef: secretRef.optional(),
    oauth: boxOAuth.optional(),
  }),
]);
export type TransportRecord = z.infer<typeof transportRecord>;

export const companyEmailSettings = z.object({
  studioName: name,
  displayName: name,
  emailAddress: email,
  replyTo: email.optional(),
  transport: transportRecord,
  defaultSignatureId: id.optional(),
  /** IANA time zone; default for schedules. */
  timeZone: z.string().default('America/New_York'),
  phone: z.string().max(50).optional(),
  website: z.string().max(200).optional(),
  address: z.string().max(500).optional(),
});
export type CompanyEmailSettings = z.infer<typeof companyEmailSettings>;

export const userEmailSettings = z.object({
  userId: id,
  displayName: name.optional(),
  emailAddress: email.optional(),
  replyTo: email.optional(),
  /** When absent the company's transport is used. */
  transport: transportRecord.optional(),
  defaultSignatureId: id.optional(),
});
export type UserEmailSettings = z.infer<typeof userEmailSettings>;

export const department = z.object({ id, name });
export type Department = z.infer<typeof department>;

export const user = z.object({
  id,
  firstName: name,
  lastName: name,
  email,
  departmentId: id.optional(),
  title: z.string().max(200).optional(),
  phone: z.string().max(50).optional(),
});
export type User = z.infer<typeof user>;

export const signature = z.object({ id, name, html: z.string().max(100_000), text: z.string().max(20_000) });
export type Signature = z.infer<typeof signature>;

/** Task types, task statuses, email types and email statuses share this shape. */
export const lookup = z.object({ id, name, isDefault: z.boolean().default(false) });
export type Lookup = z.infer<typeof lookup>;

export const formLetter = z.object({
  id,
  name,
  kind: z.enum(['form-letter', 'html-email']),
  subject: z.string().min(1).max(998),
  html: z.string().max(500_000).optional(),
  text: z.string().max(200_000).optional(),
  /** Merge fields used by subject, html and text, derived on save. */
  mergeFields: z.array(z.string()).default([]),
  /** Files attached to every email made from this letter (uploaded first: POST /attachments). */
  attachments: z
    .array(
      z.object({
        id,
        filename: z.string().min(1).max(255),
        contentType: z.string().min(1).max(255),
      }),
    )
    .max(20)
    .default([]),
});
export type FormLetter = z.infer<typeof formLetter>;

export const clientEmail = z.object({
  /** A client may have an internationalised address (RFC 6531), as mail from them carries it. */
  address: z.string().trim().max(254).refine(isMailbox),
  label: z.string().max(50).optional(),
  primary: z.boolean().default(false),
});
export const client = z.object({
  id,
  firstName: z.string().trim().max(200).default(''),
  lastName: z.string().trim().max(200).default(''),
  company: z.string().max(200).optional(),
  emails: z.array(clientEmail).max(20).default([]),
  groups: z.array(z.string().min(1).max(100)).max(50).default([]),
  phone: z.string().max(50).optional(),
  /** The client's status in the studio (e.g. `active`, `prospect`); bulk email selects by it. */
  status: z.string().min(1).max(50).optional(),
  /** Whether the client agreed to marketing email; bulk email skips those without (default: none recorded). */
  marketingConsent: z.boolean().default(false),
});
export type Client = z.infer<typeof client>;

export const weekday = z.enum(['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN']);
export type Weekday = z.infer<typeof weekday>;

export const boxSchedule = z.object({
  enabled: z.boolean(),
  /** Local wall-clock times, HH:MM, in `timeZone`. */
  startTime: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/),
  endTime: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/),
  intervalMinutes: z.number().int().min(1).max(1440),
  weekdays: z.array(weekday).min(1),
  timeZone: z.string(),
  notifyEmail: email.optional(),
  notifyOn: z.enum(['failures', 'every-run']).default('failures'),
});
export type BoxSchedule = z.infer<typeof boxSchedule>;

/** How a mailbox logs in: USER/PASS, SPA (NTLM with the Domain), or XOAUTH2 after an OAuth2 sign-in. */
export const boxAuthentication = z.enum(['password', 'ntlm', 'oauth2']);
export type BoxAuthentication = z.infer<typeof boxAuthentication>;

/**
 * What an IMAP box does with a message once it is durably stored (docs/inbox.md): keep it as it is,
 * mark it read (\Seen), move it to `moveToFolder`, or delete it (\Deleted + UID EXPUNGE).
 * keep and mark-read leave mail on the server (`leaveOnServer` true); move and delete do not.
 */
export const AFTER_IMPORT = ['keep', 'mark-read', 'move', 'delete'] as const;
export const afterImport = z.enum(AFTER_IMPORT);
export type AfterImport = z.infer<typeof afterImport>;

export const boxConnection = z.object({
  /** pop3, imap (also Exchange on-premises through its IMAP endpoint, with SPA), or exchange. */
  type: z.enum(['pop3', 'exchange', 'imap']),
  server: z.string().min(1).max(253),
  emailAddress: email,
  /** Exchange, and POP3 with SPA (NTLM). */
  domain: z.string().max(253).optional(),
  userName: z.string().min(1).max(254),
  /**
   * The password, or for an OAuth2 box its token grant (JSON, lib/oauth/grant.ts). Absent only on
   * a push-only box saved without a password (it is never polled).
   */
  passwordRef: secretRef.optional(),
  ssl: z.boolean(),
  /** The seed's "SPA" switch; true exactly when `authentication` is `ntlm`. */
  spa: z.boolean(),
  port: z.number().int().min(1).max(65535),
  /** Absent on boxes saved before SPA and OAuth2 existed: `password`. */
  authentication: boxAuthentication.optional(),
  provider: oauthProvider.optional(),
  oauth: boxOAuth.optional(),
  /**
   * Exchange only: `graph` reads the mailbox through Microsoft Graph (Exchange Online), with app
   * credentials (`tenantId`, `clientId`, the client secret in the box's secret) or an OAuth2
   * sign-in with Microsoft. Absent: Exchange on-premises (its POP3 endpoint).
   */
  access: z.enum(['graph']).optional(),
  /** Graph app credentials: the Microsoft Entra tenant (id or domain) and the app's client id. */
  tenantId: z.string().min(1).max(253).optional(),
  clientId: z.string().min(1).max(100).optional(),
  /** IMAP: the folder read; absent = INBOX. */
  folder: z.string().min(1).max(500).optional(),
  /** IMAP and Graph: what happens to a stored message; absent = keep or delete, as `leaveOnServer` says. */
  afterImport: afterImport.optional(),
  /** With afterImport `move` (IMAP, Graph): the folder imported mail goes to. */
  moveToFolder: z.string().min(1).max(500).optional(),
});
export type BoxConnection = z.infer<typeof boxConnection>;

export const emailBox = z.object({
  id,
  description: name,
  departmentId: id.optional(),
  userId: id.optional(),
  autoCreateTask: z.boolean().default(false),
  taskTypeId: id.optional(),
  taskStatusId: id.optional(),
  emailTypeId: id.optional(),
  emailStatusId: id.optional(),
  sendAutoReply: z.boolean().default(false),
  autoReplyFormLetterId: id.optional(),
  autoReplyToAll: z.boolean().default(false),
  autoReplyFirstEmailOnly: z.boolean().default(false),
  /** ISO date (YYYY-MM-DD); mail dated before it is not imported. */
  excludeBefore: z.iso.date().optional(),
  leaveOnServer: z.boolean().default(true),
  /** Polled on its schedule (the default), pushed (forwarded to its receiving address), or both (lib/domain/receiving.ts). */
  intake: z.enum(INTAKE_MODES).optional(),
  /** The local part of its receiving address, when the studio chose one; else `<box>.<studio>`. */
  receivingLocalPart: z.string().max(64).optional(),
  connection: boxConnection,
  schedule: boxSchedule.optional(),
});
export type EmailBox = z.infer<typeof emailBox>;

/** Per-box run state: the lease that keeps one poll at a time, and failure streaks. */
export const boxState = z.object({
  boxId: id,
  leaseOwner: z.string().optional(),
  leaseExpiresAt: z.number().optional(),
  lastRunAt: z.string().optional(),
  lastSuccessAt: z.string().optional(),
  consecutiveFailures: z.number().int().default(0),
  lastAlertKind: z.string().optional(),
  /**
   * Graph: where the next delta query of the inbox starts (`@odata.deltaLink`, or the
   * `@odata.nextLink` of a first sync cut short), for the mailbox identity and cut-off it was
   * taken with; advanced only once every message it covers is durably handled.
   */
  graphDelta: z
    .object({ identity: z.string(), excludeBefore: z.string().optional(), link: z.string(), at: z.string() })
    .optional(),
  /** Gmail's forwarding confirmation, when one was pushed to the box: shown so an admin can confirm. */
  forwardingConfirmation: z
    .object({
      from: z.string(),
      subject: z.string(),
      receivedAt: z.string(),
      links: z.array(z.string()),
      code: z.string().optional(),
    })
    .optional(),
});
export type BoxState = z.infer<typeof boxState>;

export const address = z.object({ address: z.string(), name: z.string().optional() });
export type Address = z.infer<typeof address>;

export const attachmentMeta = z.object({
  filename: z.string().optional(),
  contentType: z.string(),
  size: z.number().int(),
  blobKey: z.string(),
});

export const message = z.object({
  id,
  direction: z.enum(['in', 'out']),
  status: z.enum(['imported', 'quarantined', 'sent', 'failed', 'queued']),
  boxId: id.optional(),
  clientId: id.optional(),
  threadId: z.string(),
  messageId: z.string().optional(),
  /** The Message-ID the provider gave the message when it replaced ours (SES); replies quote it. */
  providerMessageId: z.string().optional(),
  inReplyTo: z.string().optional(),
  references: z.array(z.string()).default([]),
  from: address.optional(),
  to: z.array(address).default([]),
  cc: z.array(address).default([]),
  subject: z.string().default(''),
  date: z.string(),
  snippet: z.string().max(500).default(''),
  rawKey: z.string(),
  textKey: z.string().optional(),
  htmlKey: z.string().optional(),
  attachments: z.array(attachmentMeta).default([]),
  departmentId: id.optional(),
  userId: id.optional(),
  emailTypeId: id.optional(),
  emailStatusId: id.optional(),
  error: z.string().optional(),
  automatic: z.boolean().default(false),
  sentBy: id.optional(),
  /** Hash of what the sender wrote (sender, subject, date, bodies, attachment sizes): finds the same email in another box. */
  contentHash: z.string().optional(),
  /** Other boxes the same email reached (same Message-ID and content hash): filed once, here. */
  alsoReceivedIn: z.array(id).optional(),
  /** How it arrived: polled from the server, or pushed to the box's receiving address. */
  intake: z.enum(['poll', 'push']).optional(),
  /** SES's receipt verdicts, for pushed mail. */
  verdicts: z
    .object({
      spam: verdictStatus.optional(),
      virus: verdictStatus.optional(),
      spf: verdictStatus.optional(),
      dkim: verdictStatus.optional(),
      dmarc: verdictStatus.optional(),
    })
    .optional(),
});
export type Message = z.infer<typeof message>;

export const task = z.object({
  id,
  title: z.string(),
  typeId: id.optional(),
  statusId: id.optional(),
  departmentId: id.optional(),
  userId: id.optional(),
  clientId: id.optional(),
  messageId: id.optional(),
  boxId: id.optional(),
});
export type Task = z.infer<typeof task>;

export const runCounts = z.object({
  seen: z.number().int().default(0),
  imported: z.number().int().default(0),
  skipped: z.number().int().default(0),
  quarantined: z.number().int().default(0),
  tasks: z.number().int().default(0),
  autoReplies: z.number().int().default(0),
});
export type RunCounts = z.infer<typeof runCounts>;

export const run = z.object({
  id,
  boxId: id,
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  /** `timed out`: found still `running` past its deadline by a later run (the Lambda was killed). */
  status: z.enum(['running', 'succeeded', 'failed', 'partial', 'timed out']),
  /** When the run must be over (its Lambda's timeout); a later run closes it as `timed out` after. */
  deadlineAt: z.string().optional(),
  trigger: z.enum(['schedule', 'manual', 'push']).default('manual'),
  counts: runCounts,
  errors: z.array(z.object({ kind: z.string(), message: z.string() })).default([]),
});
export type Run = z.infer<typeof run>;

/**
 * A sender identity of a studio: a domain or an address the studio may send from through SES
 * once SES has verified it. `verified` is the last status seen; sending re-reads SES when false.
 */
export const senderIdentity = z.object({
  id,
  /** Lower-case domain (`lumen.test`) or address (`hello@lumen.test`). */
  identity: z.string().min(3).max(254),
  type: z.enum(['domain', 'address']),
  verified: z.boolean(),
  arn: z.string().min(1),
});
export type SenderIdentity = z.infer<typeof senderIdentity>;

/** Whether `identity` lets `address` be the From address (the address itself, or its domain). */
export function identityCovers(identity: string, address: string): boolean {
  const a = address.trim().toLowerCase();
  const i = identity.toLowerCase();
  return i.includes('@') ? a === i : a.slice(a.lastIndexOf('@') + 1) === i;
}
