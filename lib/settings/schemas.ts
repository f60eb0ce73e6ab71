/**
 * What the settings API accepts and answers, as zod schemas. Inputs carry passwords and are strict;
 * views carry `passwordSet` instead of a password or its secret reference. The OpenAPI document is
 * generated from the route tables (lib/http/openapi.ts), so every schema used at the edge is registered here.
 */
import * as z from 'zod';
import * as m from '#lib/domain/model';
import { INTAKE_MODES } from '#lib/domain/receiving';
import { GMAIL_SMTP } from '#lib/domain/settings';
import { errorView, requestSchemas, responseSchemas } from '#lib/http/registry';
import {
  clientId,
  emailAddress,
  hhmm,
  hostName,
  isoDate,
  lineText,
  mailboxAddress,
  name,
  oneLine,
  password,
  port,
  refId,
  smtpPort,
  timeZone,
  unlessMissing,
  version,
} from './validation.ts';

export { errorView, requestSchemas, responseSchemas };

const meta = {
  version: z.int().describe('Increases on every save; send it back on PUT to detect concurrent edits.'),
  createdAt: z.string(),
  updatedAt: z.string(),
};
const optionalText = (max: number) =>
  z.string().max(max, { error: `must be at most ${max} characters long.` });

// ── transports ──────────────────────────────────────────────────────────────────────────────────

export const transportInput = z.discriminatedUnion(
  'method',
  [
    z.strictObject({ method: z.literal('ses') }).describe('The managed sending service ("StudioPlus Mail").'),
    z.strictObject({
      method: z.literal('smtp'),
      server: hostName,
      port: smtpPort,
      security: m.smtpSecurity,
      logonName: lineText(254).optional(),
      password: password.optional().describe('Write-only. Omit on PUT to keep the stored one.'),
      authentication: m.transportAuthentication
        .optional()
        .describe(
          'password (default): SMTP AUTH with logonName and password; oauth2: XOAUTH2 as logonName with the tokens of a sign-in (GET /oauth/{provider}/start?settings=…), no password.',
        ),
      provider: m.oauthProvider
        .optional()
        .describe('With authentication oauth2: who signs in (google or microsoft).'),
    }),
    z
      .strictObject({
        method: z.literal('gmail'),
        password: password.optional().describe('The Gmail app password. Write-only.'),
        // Shown in responses; accepted back unchanged so a read-modify-write round trip works.
        server: z
          .literal(GMAIL_SMTP.server, {
            error: 'is always smtp.gmail.com for Gmail; use method smtp for another server.',
          })
          .optional(),
        port: z
          .literal(GMAIL_SMTP.port, { error: 'is always 587 for Gmail; use method smtp for another port.' })
          .optional(),
        security: z.literal(GMAIL_SMTP.security, { error: 'is always "starttls" for Gmail.' }).optional(),
        logonName: lineText(254).optional().describe('Ignored: Gmail logs on with the sending address.'),
        authentication: m.transportAuthentication
          .optional()
          .describe('password (default): the app password; oauth2: a sign-in with Google, no password.'),
      })
      .describe('Gmail: smtp.gmail.com, port 587, STARTTLS, logging on with the sending address.'),
    z
      .strictObject({
        method: z.literal('graph'),
        authentication: z
          .enum(['app', 'oauth2'])
          .optional()
          .describe(
            'app (default): app credentials (tenantId, clientId, password = client secret); oauth2: a sign-in with Microsoft.',
          ),
        tenantId: lineText(253).optional().describe('app: the Directory (tenant) ID or primary domain.'),
        clientId: lineText(100).optional().describe('app: the Application (client) ID.'),
        password: password.optional().describe('app: the client secret (its Value). Write-only.'),
      })
      .describe(
        'Microsoft Graph sendMail as the sending address, for Microsoft 365 tenants with SMTP AUTH turned off. The app needs the Mail.Send permission.',
      ),
  ],
  {
    error: (iss) =>
      iss.code === 'invalid_union' ? 'must be one of: "ses", "smtp", "gmail", "graph".' : undefined,
  },
);
export type TransportInput = z.infer<typeof transportInput>;

export const transportView = z.discriminatedUnion('method', [
  z.object({ method: z.literal('ses') }),
  z.object({
    method: z.literal('smtp'),
    server: z.string(),
    port: z.int(),
    security: m.smtpSecurity,
    logonName: z.string().optional(),
    passwordSet: z.boolean(),
    authentication: m.transportAuthentication
      .optional()
      .describe('Present as oauth2 for a sign-in; absent: password.'),
    provider: m.oauthProvider.optional(),
    oauth: m.boxOAuth
      .optional()
      .describe('The sign-in (authentication oauth2): when, and whether it stopped working.'),
  }),
  z.object({
    method: z.literal('gmail'),
    server: z.literal(GMAIL_SMTP.server),
    port: z.literal(GMAIL_SMTP.port),
    security: z.literal(GMAIL_SMTP.security),
    logonName: z.string().optional(),
    passwordSet: z.boolean(),
    authentication: m.transportAuthentication
      .optional()
      .describe('Present as oauth2 for a sign-in; absent: password.'),
    oauth: m.boxOAuth.optional(),
  }),
  z.object({
    method: z.literal('graph'),
    authentication: z.enum(['app', 'oauth2']),
    mailbox: z.string().describe('The mailbox Graph sends as: the sending address.'),
    tenantId: z.string().optional(),
    clientId: z.string().optional(),
    passwordSet: z.boolean(),
    oauth: m.boxOAuth.optional(),
  }),
]);
export type TransportView = z.infer<typeof transportView>;
responseSchemas.add(transportView, { id: 'Transport' });

// ── company and user email settings ─────────────────────────────────────────────────────────────

export const companySettingsInput = z.strictObject({
  studioName: name(),
  displayName: name().describe('The name recipients see in "From".'),
  emailAddress: emailAddress.describe("The studio's sending address."),
  replyTo: emailAddress.optional(),
  transport: transportInput,
  defaultSignatureId: refId.optional(),
  timeZone: timeZone.default('America/New_York'),
  phone: lineText(50).optional(),
  website: lineText(200).optional(),
  address: optionalText(500).optional(),
  version: version.optional(),
});
requestSchemas.add(companySettingsInput, { id: 'CompanyEmailSettingsInput' });

export const companySettingsView = m.companyEmailSettings
  .omit({ transport: true })
  .extend({ transport: transportView, ...meta });
responseSchemas.add(companySettingsView, { id: 'CompanyEmailSettings' });

export const userSettingsInput = z.strictObject({
  userId: refId.optional().describe('Ignored when it matches the path; refused otherwise.'),
  displayName: name().optional(),
  emailAddress: emailAddress.optional(),
  replyTo: emailAddress.optional(),
  transport: transportInput.optional().describe("Leave out to send with the company's transport."),
  defaultSignatureId: refId.optional(),
  version: version.optional(),
});
requestSchemas.add(userSettingsInput, { id: 'UserEmailSettingsInput' });

export const userSettingsView = m.userEmailSettings
  .omit({ transport: true })
  .extend({ transport: transportView.optional(), ...meta });
responseSchemas.add(userSettingsView, { id: 'UserEmailSettings' });

const source = z.enum(['user', 'company']);
const sourced = <T extends z.ZodType>(value: T) => z.object({ value, source });
export const effectiveSettingsView = z.object({
  userId: z.string(),
  studioName: z.string(),
  timeZone: z.string(),
  displayName: sourced(z.string()),
  emailAddress: sourced(z.string()),
  replyTo: sourced(z.string()).optional(),
  transport: sourced(transportView),
  signatureId: sourced(z.string()).optional(),
});
responseSchemas.add(effectiveSettingsView, { id: 'EffectiveEmailSettings' });

// ── reference data ──────────────────────────────────────────────────────────────────────────────

const idField = clientId
  .optional()
  .describe('Optional on POST (a UUID is made); must match the path on PUT.');
const withIds = <S extends z.core.$ZodShape>(shape: S) =>
  z.strictObject({ id: idField, ...shape, version: version.optional() });

export const departmentInput = withIds({ name: name() });
export const userInput = withIds({
  firstName: name(),
  lastName: name(),
  email: emailAddress,
  departmentId: refId.optional(),
  title: lineText(200).optional(),
  phone: lineText(50).optional(),
});
/**
 * The most a form letter's or a signature's texts may take together, in UTF-8 bytes: below
 * DynamoDB's 400 KB item limit with room for the rest of the record (names, merge fields, keys).
 */
export const MAX_BODY_BYTES = 300_000;

/** Refuses texts over MAX_BODY_BYTES together, naming the largest of them. */
const withinItemLimit =
  (fields: readonly string[]) => (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const sizes = fields.map((f) => [f, Buffer.byteLength(String(value[f] ?? ''), 'utf8')] as const);
    const total = sizes.reduce((sum, [, n]) => sum + n, 0);
    if (total <= MAX_BODY_BYTES) return;
    const [largest] = [...sizes].sort((a, b) => b[1] - a[1])[0] ?? [fields[0]];
    ctx.addIssue({
      code: 'custom',
      path: [largest as string],
      message: `makes the record too large: ${fields.join(', ')} together may take at most ${MAX_BODY_BYTES} bytes (UTF-8); these take ${total}.`,
    });
  };

export const signatureInput = withIds({
  name: name(),
  html: optionalText(100_000).default(''),
  text: optionalText(20_000).default(''),
}).superRefine(withinItemLimit(['html', 'text']));
export const lookupInput = withIds({ name: name(), isDefault: z.boolean().default(false) });
export const formLetterInput = withIds({
  name: name(),
  kind: m.formLetter.shape.kind.default('form-letter'),
  subject: oneLine(
    z
      .string()
      .min(1, { error: 'must not be empty.' })
      .max(998, { error: 'must be at most 998 characters long.' }),
  ),
  // No character limit of their own: the byte limit below is the stricter one.
  html: z.string().optional(),
  text: z.string().optional(),
  attachments: z
    .array(
      z.strictObject({
        id: refId,
        filename: lineText(255),
        contentType: z.string().trim().min(1).max(255).default('application/octet-stream'),
      }),
    )
    .max(20, { error: 'must have at most 20 attachments.' })
    .default([])
    .describe(
      'Uploaded attachments (ids from POST /attachments) attached to every email made from this letter.',
    ),
}).superRefine(withinItemLimit(['subject', 'html', 'text']));
export const clientInput = withIds({
  firstName: lineText(200).default(''),
  lastName: lineText(200).default(''),
  company: lineText(200).optional(),
  emails: z
    .array(
      z.strictObject({
        address: mailboxAddress,
        label: lineText(50).optional(),
        primary: z.boolean().default(false),
      }),
    )
    .max(20, { error: 'must have at most 20 addresses.' })
    .default([]),
  groups: z
    .array(oneLine(z.string().trim().min(1, { error: 'must not be empty.' }).max(100)))
    .max(50, { error: 'must have at most 50 groups.' })
    .default([]),
  phone: lineText(50).optional(),
  status: lineText(50).optional().describe('The client status bulk email can select by.'),
  marketingConsent: z
    .boolean()
    .default(false)
    .describe('The client agreed to marketing email; without it bulk email skips the client.'),
});

const withMeta = <S extends z.ZodObject>(s: S) => s.extend(meta);
export const departmentView = withMeta(m.department);
export const userView = withMeta(m.user);
export const signatureView = withMeta(m.signature);
export const lookupView = withMeta(m.lookup);
export const formLetterView = withMeta(m.formLetter);
export const clientView = withMeta(m.client);

requestSchemas.add(departmentInput, { id: 'DepartmentInput' });
requestSchemas.add(userInput, {
  id: 'UserInput',
  description: 'A person; `id` is their sign-in subject (JWT sub).',
});
requestSchemas.add(signatureInput, { id: 'SignatureInput' });
requestSchemas.add(lookupInput, {
  id: 'LookupInput',
  description: 'Task type, task status, email type or email status.',
});
requestSchemas.add(formLetterInput, { id: 'FormLetterInput' });
requestSchemas.add(clientInput, { id: 'ClientInput' });
responseSchemas.add(departmentView, { id: 'Department' });
responseSchemas.add(userView, { id: 'User' });
responseSchemas.add(signatureView, { id: 'Signature' });
responseSchemas.add(lookupView, { id: 'Lookup' });
responseSchemas.add(formLetterView, { id: 'FormLetter' });
responseSchemas.add(clientView, { id: 'Client' });

// ── email boxes ─────────────────────────────────────────────────────────────────────────────────

export const boxConnectionInput = z.strictObject({
  type: m.boxConnection.shape.type.default('pop3'),
  server: hostName,
  emailAddress,
  domain: lineText(253)
    .optional()
    .describe('The Windows domain: required for Exchange; for POP3 only with SPA (authentication ntlm).'),
  userName: oneLine(
    z
      .string()
      .min(1, { error: 'must not be empty: give the log-on name, often the full email address.' })
      .max(254, { error: 'must be at most 254 characters long.' }),
  ),
  password: password.optional().describe('Write-only. Required on POST; omit on PUT to keep the stored one.'),
  ssl: z.boolean().default(true),
  spa: z
    .boolean()
    .default(false)
    .describe(
      'Secure Password Authentication: log in with NTLM (AUTH NTLM) and the Domain. Same as authentication "ntlm".',
    ),
  port: port.optional().describe('Default: POP3 995 with SSL, 110 without; IMAP 993 with SSL, 143 without.'),
  authentication: m.boxAuthentication
    .optional()
    .describe(
      'password: USER/PASS; ntlm: SPA (NTLMv2 with the Domain); oauth2: XOAUTH2 with the tokens of a sign-in (GET /oauth/{provider}/start), no password. Default: ntlm when spa is on, else password.',
    ),
  provider: m.oauthProvider
    .optional()
    .describe('OAuth2 only, and required there: google (Gmail) or microsoft (Microsoft 365).'),
  access: m.boxConnection.shape.access.describe(
    'Exchange only: graph reads Exchange Online through Microsoft Graph (also implied by server outlook.office365.com). Absent: Exchange on-premises.',
  ),
  tenantId: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/, {
      error: 'must be the Directory (tenant) ID, a GUID, or the tenant domain, e.g. contoso.onmicrosoft.com.',
    })
    .optional()
    .describe('Graph with app credentials: the Microsoft Entra tenant (Directory ID or domain).'),
  clientId: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9-]{1,100}$/, { error: 'must be the Application (client) ID of the app registration.' })
    .optional()
    .describe('Graph with app credentials: the Application (client) ID; its client secret is the password.'),
  folder: lineText(500)
    .optional()
    .describe('IMAP only: the folder read, as the server names it (e.g. INBOX/Clients). Default INBOX.'),
  afterImport: m.afterImport
    .optional()
    .describe(
      'IMAP and Microsoft Graph: what happens to a message once it is stored. keep: left as it is; mark-read: flagged \\Seen (Graph: isRead); move: moved to moveToFolder; delete: deleted (IMAP: \\Deleted + UID EXPUNGE). Default: keep when leaveOnServer is on, else delete. keep and mark-read leave mail on the server, so leaveOnServer is stored as true for them and false for move and delete.',
    ),
  moveToFolder: lineText(500)
    .optional()
    .describe(
      'With afterImport move (IMAP, Graph), and required there: the folder imported mail is moved to (Graph: its display name, top level or under Inbox).',
    ),
});
export type BoxConnectionInput = z.infer<typeof boxConnectionInput>;

const INTERVAL_MESSAGE =
  'must be a whole number of minutes from 1 to 1440 (1440 = once a day, at the start time).';

/** The seed's Email Inbox Processor settings for one box. */
export const scheduleInput = z
  .strictObject({
    enabled: z.boolean().default(true).describe('false keeps the settings with the schedule DISABLED.'),
    startTime: hhmm.describe('First run, local time HH:MM.'),
    endTime: hhmm.describe(
      'Last possible run, local time HH:MM. Before startTime means the window runs past midnight (22:00–02:00); equal to startTime is refused.',
    ),
    intervalMinutes: z
      .int({ error: unlessMissing(INTERVAL_MESSAGE) })
      .min(1, { error: INTERVAL_MESSAGE })
      .max(1440, { error: INTERVAL_MESSAGE })
      .describe('How often, counted from startTime.'),
    weekdays: z
      .array(m.weekday)
      .min(1, { error: 'must list at least one day, e.g. ["MON", "WED", "FRI"].' })
      .describe('Days on which the window opens.'),
    timeZone: timeZone
      .optional()
      .describe(
        "IANA zone of the times. Default: the company's time zone (company email settings), else UTC.",
      ),
    notifyEmail: emailAddress
      .optional()
      .describe('Who is told about failures (and, with every-run, successes).'),
    notifyOn: z
      .enum(['failures', 'every-run'])
      .default('failures')
      .describe(
        'failures: a failure, a reminder while it lasts, and "works again"; every-run: also a summary of each scheduled run.',
      ),
  })
  .describe('When the inbox processor polls this box, and whom it tells.');
export type ScheduleInput = z.infer<typeof scheduleInput>;

export const boxInput = withIds({
  description: name(),
  departmentId: refId.optional(),
  userId: refId.optional(),
  autoCreateTask: z.boolean().default(false),
  taskTypeId: refId.optional(),
  taskStatusId: refId.optional(),
  emailTypeId: refId.optional(),
  emailStatusId: refId.optional(),
  sendAutoReply: z.boolean().default(false),
  autoReplyFormLetterId: refId.optional(),
  autoReplyToAll: z.boolean().default(false).describe('Reply to everyone in To and Cc.'),
  autoReplyFirstEmailOnly: z.boolean().default(false),
  excludeBefore: isoDate.optional(),
  leaveOnServer: z
    .boolean()
    .optional()
    .describe(
      'Leave imported mail on the server (default true). For IMAP and Graph boxes afterImport says how (keep, mark-read) or what instead (move, delete); the two must agree.',
    ),
  intake: z
    .enum(INTAKE_MODES)
    .default('poll')
    .describe(
      'poll: the server is polled on the schedule; push: mail forwarded to the receivingAddress is imported within seconds (no polling); both: either way, imported once.',
    ),
  receivingLocalPart: z
    .string()
    .trim()
    .toLowerCase()
    .optional()
    .describe(
      'The local part of the receivingAddress, when the studio chooses one; default `<box>.<studio>`.',
    ),
  connection: boxConnectionInput,
  schedule: scheduleInput
    .nullable()
    .optional()
    .describe('Leave out on PUT to keep the stored schedule; null removes it (and its Scheduler schedule).'),
});
export type BoxInput = z.infer<typeof boxInput>;
requestSchemas.add(boxInput, { id: 'EmailBoxInput' });

export const verificationView = z.object({
  tested: z.boolean(),
  ok: z.boolean().optional(),
  note: z.string().optional(),
  greeting: z.string().optional(),
  messageCount: z.int().optional(),
});

export const boxView = m.emailBox.omit({ connection: true }).extend({
  connection: m.boxConnection.omit({ passwordRef: true }).extend({
    passwordSet: z
      .boolean()
      .describe('A password is stored (OAuth2: the sign-in is done and its tokens are stored).'),
  }),
  ...meta,
  verification: verificationView.optional().describe('Present on POST and PUT: what the save checked.'),
  receivingAddress: z
    .string()
    .optional()
    .describe('Where to forward the mailbox for push intake (push or both); absent for poll-only boxes.'),
  forwardingConfirmation: m.boxState.shape.forwardingConfirmation.describe(
    "Gmail's forwarding confirmation, when it arrived at the receivingAddress: open a link (or enter the code) to confirm the forward.",
  ),
});
export type BoxView = z.infer<typeof boxView>;
responseSchemas.add(boxView, { id: 'EmailBox' });

export const connectionTestView = z.object({
  ok: z.boolean(),
  boxId: z.string(),
  server: z.string(),
  port: z.int(),
  ssl: z.boolean(),
  field: z.string().optional().describe('On failure: the field to fix, e.g. connection.password.'),
  message: z.string(),
  kind: z.string().optional(),
  serverReply: z.string().optional().describe("The mail server's own words, when it gave any."),
  greeting: z.string().optional(),
  messageCount: z.int().optional(),
  ms: z.int(),
});
export type ConnectionTestView = z.infer<typeof connectionTestView>;
responseSchemas.add(connectionTestView, { id: 'ConnectionTestResult' });

const windowView = z.object({
  startTime: z.string(),
  endTime: z.string(),
  intervalMinutes: z.int(),
  weekdays: z.array(z.string()),
  timeZone: z.string(),
});

export const scheduleView = z.object({
  stored: m.boxSchedule
    .extend({ name: z.string(), expression: z.string() })
    .nullable()
    .describe('The schedule settings of the box, with the Scheduler name and expression they deploy as.'),
  deployed: z
    .object({
      name: z.string(),
      enabled: z.boolean(),
      expression: z.string(),
      timeZone: z.string(),
      description: z.string().optional(),
      window: windowView.optional().describe('The window in the target input; the poller honours this one.'),
      input: z.record(z.string(), z.unknown()),
    })
    .nullable()
    .describe('What EventBridge Scheduler holds now (null: no schedule).'),
  drift: z
    .array(z.object({ field: z.string(), stored: z.unknown(), deployed: z.unknown() }))
    .describe(
      'Where the deployed schedule differs from the settings (an edit in the console). Empty when in step.',
    ),
});
export type ScheduleView = z.infer<typeof scheduleView>;
responseSchemas.add(scheduleView, { id: 'EmailBoxSchedule' });

// ── read-only inbox data ────────────────────────────────────────────────────────────────────────

export const taskView = m.task.extend({ createdAt: z.string() });
responseSchemas.add(m.message, { id: 'Message' });
responseSchemas.add(taskView, { id: 'Task' });
responseSchemas.add(m.run, { id: 'Run' });

// ── envelopes ───────────────────────────────────────────────────────────────────────────────────

/** `{ items, nextCursor? }` around an item schema, registered as `id`. */
export function listOf<T extends z.ZodType>(item: T, id: string, paged = false) {
  const list = z.object({
    items: z.array(item),
    ...(paged
      ? { nextCursor: z.string().optional().describe('Pass back as ?cursor= for the next page.') }
      : {}),
  });
  responseSchemas.add(list, { id });
  return list;
}

/** The answer of POST /email-boxes/{id}/poll (202). */
export const pollStarted = z.object({
  runId: z.string().describe('Follow the run with GET /email-boxes/{id}/runs/{runId}.'),
  run: m.run,
});
responseSchemas.add(pollStarted, { id: 'PollStarted' });

/** The answer of GET /email-boxes/{id}/runs/{runId}. */
export const runView = z.object({ run: m.run });
responseSchemas.add(runView, { id: 'RunOne' });

/** A short-lived link to a message's raw copy or one of its attachments. */
export const downloadView = z.object({
  url: z.string().describe('GET it (no token) before `expiresAt`; it answers the exact bytes.'),
  expiresAt: z.string(),
  filename: z.string(),
  contentType: z.string(),
  size: z.number().int().optional(),
});
responseSchemas.add(downloadView, { id: 'DownloadLink' });

export const boxMailEntry = z.object({
  state: z.enum(['imported', 'quarantined', 'excluded', 'duplicate']),
  date: z.string().describe('The message date; for excluded and duplicate mail, when it was marked.'),
  uidl: z
    .string()
    .optional()
    .describe(
      "The mail server's id of excluded and duplicate mail, and of quarantined mail without a message record.",
    ),
  message: m.message.optional().describe('Imported and quarantined mail.'),
  duplicateOf: z.string().optional().describe('The id of the message a duplicate repeats.'),
  reason: z
    .string()
    .optional()
    .describe(
      'Why mail quarantined without a message record (it failed three runs, or the server cannot send it) is.',
    ),
});
responseSchemas.add(boxMailEntry, { id: 'BoxMailEntry' });

export const lists = {
  departments: listOf(departmentView, 'DepartmentList'),
  users: listOf(userView, 'UserList'),
  signatures: listOf(signatureView, 'SignaturePage', true),
  lookups: listOf(lookupView, 'LookupList'),
  formLetters: listOf(formLetterView, 'FormLetterPage', true),
  clients: listOf(clientView, 'ClientPage', true),
  boxes: listOf(boxView, 'EmailBoxList'),
  messages: listOf(m.message, 'MessagePage', true),
  tasks: listOf(taskView, 'TaskPage', true),
  runs: listOf(m.run, 'RunPage', true),
  boxMail: listOf(boxMailEntry, 'BoxMailPage', true),
};

// ── merge fields ────────────────────────────────────────────────────────────────────────────────

export const mergeFieldListView = z.object({
  items: z.array(
    z.object({
      name: z.string().describe('Write it as `{{name}}`, or `{{name|fallback}}` for missing data.'),
      description: z.string(),
      example: z.string(),
    }),
  ),
});
responseSchemas.add(mergeFieldListView, { id: 'MergeFieldList' });

// ── PATCH bodies ────────────────────────────────────────────────────────────────────────────────

type Def = { type: string; innerType?: z.ZodType };
const defOf = (f: z.ZodType) => (f as unknown as { def: Def }).def;

/** The schema without optional/nullable/default wrappers: a patch must not fill in defaults. */
function bare(f: z.ZodType): z.ZodType {
  const def = defOf(f);
  return ['optional', 'nullable', 'default'].includes(def.type) && def.innerType ? bare(def.innerType) : f;
}

const nestedPatch = z
  .record(z.string(), z.unknown())
  .describe(
    'Merged member by member into the stored object (JSON Merge Patch): name only the members that change; the PUT body shows them all.',
  );

/**
 * The body of a JSON Merge Patch of `input` (content type application/merge-patch+json): each
 * member optional, `null` on an optional one removes it, no defaults filled in; a nested object
 * (transport, connection, schedule) is checked only as an object here, because the server merges
 * it into the stored one and validates the result with `input` itself (lib/settings/patch.ts).
 */
function mergePatchOf(input: z.ZodObject, id: string, what: string) {
  const shape = Object.fromEntries(
    Object.entries(input.shape as Record<string, z.ZodType>)
      .filter(([key]) => key !== 'version')
      .map(([key, field]) => {
        const inner = bare(field);
        const type = defOf(inner).type;
        const value = type === 'object' || type === 'union' ? nestedPatch : inner;
        const removable = field.safeParse(undefined).success;
        return [key, (removable ? value.nullable() : value).optional()];
      }),
  );
  const patch = z.strictObject(shape);
  requestSchemas.add(patch, {
    id,
    description: `JSON Merge Patch (RFC 7396) of ${what}: name only what changes; null removes an optional field; nested objects merge the same way, lists are replaced whole. A password changes only when the patch names it. The result must be valid as a PUT body.`,
  });
  return patch;
}

export const patchSchemas = {
  company: mergePatchOf(companySettingsInput, 'CompanyEmailSettingsPatch', 'the company email settings'),
  userSettings: mergePatchOf(userSettingsInput, 'UserEmailSettingsPatch', "a user's email settings"),
  box: mergePatchOf(boxInput, 'EmailBoxPatch', 'an email box'),
};

/** The patch schema of a reference-data input, registered once per input. */
const refPatches = new Map<z.ZodType, z.ZodObject>();
export function refPatchOf(input: z.ZodType, label: string): z.ZodObject {
  let patch = refPatches.get(input);
  if (!patch) {
    const id = `${requestSchemas.get(input)?.id?.replace(/Input$/, '') ?? label}Patch`;
    patch = mergePatchOf(input as z.ZodObject, id, `a ${label}`);
    refPatches.set(input, patch);
  }
  return patch;
}
