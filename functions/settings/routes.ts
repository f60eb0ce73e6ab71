/**
 * The settings function's routes: declarations only (see lib/http/routes.ts for the shape and how
 * to add one). CDK, the local runner and the OpenAPI document read this table; ./app.ts binds a
 * handler to every key.
 */
import * as z from 'zod';
import { DOCS_FILES, type DocsFile } from '#lib/app/docs';
import * as m from '#lib/domain/model';
import { emptyBody } from '#lib/http/registry';
import { defineRoutes, MAX_PATH_ID_LENGTH, PATH_ID, type RouteSpec } from '#lib/http/routes';
import { BOX_MAIL_STATES } from '#lib/inbox/box-mail';
import { callbackQuery, callbackView, providerParams, startQuery, startView } from '#lib/oauth/schemas';
import { type RefPath, refKinds } from '#lib/settings/ref-kinds';
import {
  boxInput,
  boxView,
  companySettingsInput,
  companySettingsView,
  connectionTestView,
  downloadView,
  effectiveSettingsView,
  lists,
  mergeFieldListView,
  patchSchemas,
  refPatchOf,
  runView,
  scheduleView,
  userSettingsInput,
  userSettingsView,
} from '#lib/settings/schemas';
import { senderIdentityInput, senderIdentityList, senderIdentityView } from '#lib/settings/sender-identities';
import { pageQuery } from '#lib/settings/validation';

/** `?name=true|false`, read as a boolean. */
const flag = (name: string, fallback: 'true' | 'false', description: string) =>
  z
    .enum(['true', 'false'], {
      error: `must be true or false, e.g. ?${name}=${fallback === 'true' ? 'false' : 'true'}.`,
    })
    .default(fallback)
    .transform((v) => v === 'true')
    .describe(description);

const verify = flag(
  'verify',
  'true',
  'Log in to the mail server before saving (default true). `false` saves without testing.',
);
const syncSchedule = flag(
  'syncSchedule',
  'false',
  'Write the schedule to EventBridge Scheduler from these settings even when they did not change (default false). Use it to undo a console edit shown as drift.',
);

/** `?limit=` and `?cursor=` of a paged list. */
export const pageParams = z.object({
  limit: pageQuery.shape.limit.describe('Items per page, 1 to 100 (default 50).'),
  cursor: pageQuery.shape.cursor.describe(
    "The `nextCursor` of the previous page of this list (opaque and signed; another list's, or another studio's, is a 400 naming `cursor`).",
  ),
});

const yesNo = z.enum(['true', 'false']).optional();
const filterId = z.string().min(1, { error: 'must not be empty.' }).max(200);

/** What every PATCH shares: the merge-patch body type and its error statuses. */
const PATCH = { bodyTypes: ['application/merge-patch+json'], errors: [412, 415, 428] } as const;
const PATCH_NOTE =
  'A JSON Merge Patch (RFC 7396, content type `application/merge-patch+json`): name only the fields to change; `null` removes an optional one; nested objects merge the same way; lists are replaced whole. Send `If-Match` with the `ETag` of your last read (its version, quoted): 428 without it, 412 when the record changed since. The patched record is validated as a PUT body (400 names each bad field, nothing changes) and saved the same way.';
/** The description of a PATCH operation: the shared rules, then what is particular to the route. */
const patchDescription = (particular?: string) => [PATCH_NOTE, particular].filter(Boolean).join('\n\n');

const docsFile = z.object({
  file: z.enum(Object.keys(DOCS_FILES) as [DocsFile, ...DocsFile[]], {
    error: `must be one of: ${Object.keys(DOCS_FILES).join(', ')}.`,
  }),
});

const operations = 'Operations';
const company = 'Company email settings';
const userSettings = 'User email settings';
const boxes = 'Email boxes';
const inbox = 'Inbox (read-only)';
const senders = 'Sender identities';

/** The five routes of one kind of reference data. */
function crud<P extends RefPath>(path: P) {
  const kind = refKinds[path];
  const label = kind.label;
  const a = /^[aeiou]/.test(label) ? 'an' : 'a';
  const paged = 'paged' in kind && kind.paged;
  const order = 'order' in kind ? kind.order : ' (by id)';
  const tag = 'Reference data';
  return {
    [`GET /${path}`]: {
      tag,
      access: 'user',
      summary: paged ? `List ${label}s, a page at a time${order}.` : `List every ${label}.`,
      response: kind.list,
      ...(paged ? { query: pageParams } : {}),
    },
    [`POST /${path}`]: {
      tag,
      access: 'admin',
      summary: `Create ${a} ${label}.`,
      body: kind.input,
      response: kind.view,
      status: 201,
    },
    [`GET /${path}/{id}`]: { tag, access: 'user', summary: `Read one ${label}.`, response: kind.view },
    [`PUT /${path}/{id}`]: {
      tag,
      access: 'admin',
      summary: `Replace ${a} ${label}; send \`version\` to refuse the save if someone changed it since.`,
      body: kind.input,
      response: kind.view,
    },
    [`PATCH /${path}/{id}`]: {
      tag,
      access: 'admin',
      summary: `Change some fields of ${a} ${label}, keeping the rest (JSON Merge Patch).`,
      description: patchDescription(),
      body: refPatchOf(kind.input, label),
      response: kind.view,
      ...PATCH,
    },
    [`DELETE /${path}/{id}`]: {
      tag,
      access: 'admin',
      summary: `Delete ${a} ${label}; 409 names whatever still uses it.`,
      status: 204,
      errors: [409],
    },
  } as unknown as Record<
    `${'GET' | 'POST'} /${P}` | `${'GET' | 'PUT' | 'PATCH' | 'DELETE'} /${P}/{id}`,
    RouteSpec
  >;
}

/** A path id checked as the edge checks every path id without a schema of its own (routes with more params). */
const messagePathId = z
  .string()
  .min(1, { error: 'must not be empty.' })
  .max(MAX_PATH_ID_LENGTH, {
    error: `is not an id this API gives out (at most ${MAX_PATH_ID_LENGTH} characters).`,
  })
  .regex(PATH_ID, {
    error: 'is not an id this API gives out (visible ASCII characters other than "#").',
  });

export const settingsRoutes = defineRoutes({
  'GET /health': {
    tag: operations,
    access: 'public',
    summary: 'Whether the parts answer (503 if not).',
    errors: [503],
  },
  'GET /openapi.json': {
    tag: operations,
    access: 'public',
    summary: 'This document: every route of every studio-mail function.',
  },
  'GET /docs': {
    tag: operations,
    access: 'public',
    summary: 'This API reference as a page (Swagger UI, text/html), with "Try it out".',
  },
  'GET /docs/{file}': {
    tag: operations,
    access: 'public',
    summary: `A file of the reference page (${Object.keys(DOCS_FILES).join(', ')}), served from the swagger-ui-dist package.`,
    params: docsFile,
  },
  'GET /merge-fields': {
    tag: 'Reference data',
    access: 'user',
    summary: 'List every merge field with what it holds and an example.',
    description:
      'Form letters, signatures and typed emails may use these; saving or sending one with any other `{{…}}` is a 400 that names the nearest known field.',
    response: mergeFieldListView,
  },

  'GET /settings/company/email': {
    tag: company,
    access: 'user',
    summary: 'Read the studio email settings (never the password: `transport.passwordSet`).',
    response: companySettingsView,
  },
  'PUT /settings/company/email': {
    tag: company,
    access: 'admin',
    summary: 'Create or replace the studio email settings.',
    description:
      'Sending method `ses` (managed), `smtp` or `gmail`. A password given is stored in the secret store; leave it out to keep the stored one. Switching to `ses` retires the stored password.',
    body: companySettingsInput,
    response: companySettingsView,
  },
  'PATCH /settings/company/email': {
    tag: company,
    access: 'admin',
    summary: 'Change some of the studio email settings, keeping the rest (JSON Merge Patch).',
    description: patchDescription(
      'The transport password changes only when the patch names `transport.password`. Switching `transport.method` needs `null` for the members the new method has not (or a PUT); between Gmail and SMTP also the new password.',
    ),
    body: patchSchemas.company,
    response: companySettingsView,
    ...PATCH,
  },

  'GET /users/{id}/email-settings': {
    tag: userSettings,
    access: 'self',
    summary: "A user's own overrides of the company email settings.",
    response: userSettingsView,
  },
  'PUT /users/{id}/email-settings': {
    tag: userSettings,
    access: 'self',
    summary: 'Create or replace the user overrides (address, display name, own SMTP/Gmail, signature).',
    body: userSettingsInput,
    response: userSettingsView,
  },
  'PATCH /users/{id}/email-settings': {
    tag: userSettings,
    access: 'self',
    summary: "Change some of a user's email settings, keeping the rest (JSON Merge Patch).",
    description: patchDescription(
      "`transport: null` goes back to the company's transport; the password changes only when the patch names `transport.password`.",
    ),
    body: patchSchemas.userSettings,
    response: userSettingsView,
    ...PATCH,
  },
  'DELETE /users/{id}/email-settings': {
    tag: userSettings,
    access: 'self',
    summary: "Remove the overrides (the company's settings apply again); retires the user's stored password.",
    status: 204,
  },
  'GET /users/{id}/email-settings/effective': {
    tag: userSettings,
    access: 'self',
    summary: 'What the user sends with, each value marked `user` or `company`.',
    response: effectiveSettingsView,
  },

  ...crud('signatures'),
  ...crud('departments'),
  ...crud('users'),
  ...crud('task-types'),
  ...crud('task-statuses'),
  ...crud('email-types'),
  ...crud('email-statuses'),
  ...crud('form-letters'),
  ...crud('clients'),

  'GET /email-boxes': { tag: boxes, access: 'user', summary: 'List the email boxes.', response: lists.boxes },
  'POST /email-boxes': {
    tag: boxes,
    access: 'admin',
    summary: 'Create an email box; logs in to its POP3 server first unless `?verify=false`.',
    description:
      "A failed login answers 422 `connection_failed` naming the field to fix, and saves nothing. Exchange boxes are stored without a test (the connector comes later); `verification.note` says so. A `schedule` creates the box's EventBridge Scheduler schedule first; if Scheduler fails the answer is 502 `schedule_write_failed` and nothing is saved.",
    body: boxInput,
    query: z.object({ verify }),
    response: boxView,
    status: 201,
    errors: [422, 502],
  },
  'GET /email-boxes/{id}': { tag: boxes, access: 'user', summary: 'Read one email box.', response: boxView },
  'PUT /email-boxes/{id}': {
    tag: boxes,
    access: 'admin',
    summary:
      'Replace an email box; logs in first (with the stored password when none is given) unless `?verify=false`.',
    description:
      'Leave `connection.password` out to keep the stored one, and `schedule` out to keep the stored schedule (null removes it). The Scheduler schedule is written only when its settings change (or the box is renamed, or `?syncSchedule=true`), so a save that leaves the schedule alone never overwrites an edit made in the console. 502 `schedule_write_failed` when Scheduler fails; nothing is saved.',
    body: boxInput,
    query: z.object({ verify, syncSchedule }),
    response: boxView,
    errors: [422, 502],
  },
  'PATCH /email-boxes/{id}': {
    tag: boxes,
    access: 'admin',
    summary:
      'Change some of an email box, keeping the rest (JSON Merge Patch); logs in first unless `?verify=false`.',
    description: patchDescription(
      'Nested `connection` and `schedule` merge member by member: `{ "schedule": { "intervalMinutes": 30 } }` changes the interval only, and `"schedule": null` removes the schedule (and its Scheduler schedule). The password changes only when the patch names `connection.password`; the login test uses the stored one otherwise. The Scheduler schedule is written when its settings change, as on PUT.',
    ),
    body: patchSchemas.box,
    bodyTypes: PATCH.bodyTypes,
    query: z.object({ verify, syncSchedule }),
    response: boxView,
    errors: [...PATCH.errors, 422, 502],
  },
  'DELETE /email-boxes/{id}': {
    tag: boxes,
    access: 'admin',
    summary: 'Delete an email box and its poll schedule, and schedule its stored password for deletion.',
    status: 204,
    errors: [502],
  },
  'POST /email-boxes/{id}/test': {
    tag: boxes,
    access: 'admin',
    summary: 'Log in to the box with the stored password and report what happened.',
    description:
      'Always 200 when the test ran: `ok: true` with the greeting and message count, or `ok: false` with `field` (what to fix), `message` and `serverReply`.',
    body: emptyBody,
    response: connectionTestView,
  },
  'GET /email-boxes/{id}/schedule': {
    tag: boxes,
    access: 'user',
    summary:
      'The box schedule: the stored settings next to what EventBridge Scheduler holds, and their drift.',
    description:
      'An admin may edit a schedule in the AWS console (disable it, change its expression or the window in its input). The poller honours such an edit; this view shows it in `drift` instead of overwriting it. `PUT /email-boxes/{id}?syncSchedule=true` writes the stored settings back.',
    response: scheduleView,
    errors: [502],
  },

  'GET /email-boxes/{id}/runs': {
    tag: inbox,
    access: 'user',
    summary: "The box's poll runs, newest first.",
    response: lists.runs,
    query: pageParams,
  },
  'GET /email-boxes/{id}/runs/{runId}': {
    tag: inbox,
    access: 'user',
    summary: 'One poll run, with its live counts while it is `running`.',
    description:
      'Status `running` until the run ends `succeeded`, `partial`, `failed` or `timed out`; a run whose time budget ran out is carried on by a next invocation under the same id, so it stays `running` until the mailbox is drained.',
    response: runView,
  },
  'GET /email-boxes/{id}/messages': {
    tag: inbox,
    access: 'user',
    summary:
      "What became of the box's mail, newest first: `?state=imported` (default), `quarantined`, `excluded` or `duplicate`.",
    description:
      'Imported and quarantined entries carry the message; excluded (dated before the cut-off) and duplicate (the same bytes under another server id) entries carry the server id, and a duplicate the id of the message it repeats.',
    response: lists.boxMail,
    query: pageParams.extend({
      state: z
        .enum(BOX_MAIL_STATES, { error: `must be one of ${BOX_MAIL_STATES.join(', ')}.` })
        .default('imported')
        .describe('imported (default), quarantined, excluded or duplicate.'),
    }),
  },
  'GET /clients/{id}/messages': {
    tag: inbox,
    access: 'user',
    summary: "The client's messages, in and out, newest first.",
    response: lists.messages,
    query: pageParams,
  },
  'GET /messages': {
    tag: inbox,
    access: 'user',
    summary:
      'Messages matched to no client (`?unassigned=true`) or quarantined (`?quarantined=true`), newest first.',
    response: lists.messages,
    query: pageParams.extend({
      unassigned: yesNo.describe('`true` lists mail matched to no client.'),
      quarantined: yesNo.describe('`true` lists mail that could not be imported.'),
    }),
  },
  'GET /messages/{id}': {
    tag: inbox,
    access: 'user',
    summary: 'One message (metadata).',
    response: m.message,
  },
  'GET /messages/{id}/raw': {
    tag: inbox,
    access: 'user',
    summary: "A link (valid 5 minutes) to download the message's raw copy, byte for byte as received.",
    response: downloadView,
  },
  'GET /messages/{id}/body/{part}': {
    tag: inbox,
    access: 'user',
    summary:
      "A link (valid 5 minutes) to download the message's decoded body, `text` or `html`, however large (the record keeps only a snippet).",
    params: z.object({
      id: messagePathId,
      part: z.enum(['text', 'html'], { error: 'must be `text` or `html`.' }),
    }),
    response: downloadView,
  },
  'GET /messages/{id}/attachments/{index}': {
    tag: inbox,
    access: 'user',
    summary: 'A link (valid 5 minutes) to download one attachment; `index` counts from 0 in `attachments`.',
    params: z.object({
      id: messagePathId,
      index: z.coerce
        .number({ error: 'must be the attachment number, counting from 0.' })
        .int({ error: 'must be a whole number, counting from 0.' })
        .min(0, { error: 'counts from 0.' }),
    }),
    response: downloadView,
  },
  'GET /tasks': {
    tag: inbox,
    access: 'user',
    summary: 'Tasks, newest first; filtered by client, status, assignee and box (all given must match).',
    description:
      'A filtered page may hold fewer than `limit` tasks and still carry a `nextCursor` (the filter reads on for at most ten table pages per request).',
    response: lists.tasks,
    query: pageParams.extend({
      clientId: filterId.optional().describe("Only this client's tasks."),
      statusId: filterId.optional().describe('Only tasks with this task status.'),
      userId: filterId.optional().describe('Only tasks assigned to this user (the assignee).'),
      boxId: filterId.optional().describe('Only tasks created from mail of this email box.'),
    }),
  },
  'GET /sender-identities': {
    tag: senders,
    access: 'user',
    summary: "The studio's sender identities with their verification and DKIM status from Amazon SES.",
    response: senderIdentityList,
  },
  'POST /sender-identities': {
    tag: senders,
    access: 'admin',
    summary: 'Add a domain or address the studio sends from through Amazon SES (Easy DKIM).',
    description:
      'Answers 201 with the DNS records to publish (a domain) or says where the verification link went (an address); 200 for one the studio already has, 409 for one another studio holds. Sending through SES is allowed only from addresses a verified identity of the studio covers.',
    body: senderIdentityInput,
    response: senderIdentityView,
    status: 201,
  },
  'GET /sender-identities/{id}': {
    tag: senders,
    access: 'user',
    summary: 'One sender identity, its DNS records and its status from Amazon SES.',
    response: senderIdentityView,
  },
  'DELETE /sender-identities/{id}': {
    tag: senders,
    access: 'admin',
    summary: 'Remove a sender identity; SES sends from it no more.',
    status: 204,
  },
  'POST /sender-identities/{id}/verify': {
    tag: senders,
    access: 'admin',
    summary: 'Check again now, after publishing the DNS records.',
    description:
      'Amazon SES checks DNS by itself; this reads its status at once. With the local adapters (`npm start`) this is the step that marks the identity verified, standing in for the DNS check.',
    body: emptyBody,
    response: senderIdentityView,
  },

  'GET /oauth/{provider}/start': {
    tag: 'OAuth2 sign-in',
    access: 'admin',
    summary:
      'Start signing an email box, or company or user send settings, in with Google or Microsoft (authorization code with PKCE).',
    description:
      "Answers the provider's authorization URL (`?redirect=true`: a 302 to it) for `?boxId=` (an email box) or `?settings=company` / `?settings=user&userId=` (send settings; an admin signs a user's in for them). The state in it is signed, bound to this studio, target and admin, and valid for 10 minutes; the provider sends the browser back to `GET /oauth/{provider}/callback`. The box or transport must have `authentication: oauth2` and this provider. 404 when the provider is not configured.",
    params: providerParams,
    query: startQuery,
    response: startView,
    errors: [404, 502],
  },
  'GET /oauth/{provider}/callback': {
    tag: 'OAuth2 sign-in',
    access: 'public',
    summary: "The provider's redirect back: stores the box's refresh token in the secret store.",
    description:
      'No token: the signed state says which studio and box. A missing, forged, expired or foreign state, a refusal by the provider (`error=access_denied`: consent missing) or a code it will not redeem answers 400 `oauth_callback_refused` with the field. On success the box is tested with its new tokens at the next poll or `POST /email-boxes/{id}/test`.',
    params: providerParams,
    query: callbackQuery,
    response: callbackView,
    errors: [404, 502],
  },
});
