/** Read-only views over what the inbox poller stores: runs, messages, tasks. */
import { z } from 'zod';
import { NotFoundError } from '#lib/domain/errors';
import * as m from '#lib/domain/model';
import type { RouteHandler } from '#lib/http/api';
import { BOX_MAIL_STATES, listBoxMail } from '#lib/inbox/box-mail';
import { downloadLink } from '#lib/inbox/downloads';
import type { QueryParam } from '#lib/settings/openapi';
import { downloadView, lists, runView } from '#lib/settings/schemas';
import { validate } from '#lib/settings/validation';
import { ok, page, pageParams, type RouteModule } from './common.ts';

const tag = 'Inbox (read-only)';

const which = z
  .object({
    unassigned: z.enum(['true', 'false']).optional(),
    quarantined: z.enum(['true', 'false']).optional(),
  })
  .refine((q) => (q.unassigned === 'true') !== (q.quarantined === 'true'), {
    error:
      'say which list: ?unassigned=true (mail matched to no client) or ?quarantined=true (mail that could not be imported).',
    path: ['unassigned'],
  });

const boxMailState = z
  .enum(BOX_MAIL_STATES, { error: `must be one of ${BOX_MAIL_STATES.join(', ')}.` })
  .default('imported');

const attachmentIndex = z.object({
  index: z.coerce
    .number({ error: 'must be the attachment number, counting from 0.' })
    .int({ error: 'must be a whole number, counting from 0.' })
    .min(0, { error: 'counts from 0.' }),
});

const filterId = z.string().min(1, { error: 'must not be empty.' }).max(200);
const taskFilter = z.object({
  clientId: filterId.optional(),
  statusId: filterId.optional(),
  userId: filterId.optional(),
  boxId: filterId.optional(),
});
const taskFilterParams: QueryParam[] = [
  { name: 'clientId', description: "Only this client's tasks.", schema: filterId },
  { name: 'statusId', description: 'Only tasks with this task status.', schema: filterId },
  { name: 'userId', description: 'Only tasks assigned to this user (the assignee).', schema: filterId },
  { name: 'boxId', description: 'Only tasks created from mail of this email box.', schema: filterId },
];

/** A page of what lies under a record of the studio; 404 when the record does not exist. */
function pagedUnder(
  parent: { require(sid: string, id: string): Promise<unknown> },
  list: (sid: string, id: string, limit: number, cursor?: string) => Promise<unknown>,
): RouteHandler {
  return async (req) => {
    const sid = req.caller.studioId;
    const id = req.params.id ?? '';
    const { limit, cursor } = page(req);
    await parent.require(sid, id);
    return ok(await list(sid, id, limit, cursor));
  };
}

export const inboxRoutes: RouteModule = (ctx) => [
  {
    doc: {
      key: 'GET /email-boxes/{id}/runs',
      tag,
      access: 'user',
      summary: "The box's poll runs, newest first.",
      response: lists.runs,
      query: pageParams,
    },
    handle: pagedUnder(ctx.repos.emailBoxes, (sid, id, limit, cursor) =>
      ctx.repos.runs.list(sid, id, limit, cursor),
    ),
  },
  {
    doc: {
      key: 'GET /email-boxes/{id}/runs/{runId}',
      tag,
      access: 'user',
      summary: 'One poll run, with its live counts while it is `running`.',
      description:
        'Status `running` until the run ends `succeeded`, `partial`, `failed` or `timed out`; a run whose time budget ran out is carried on by a next invocation under the same id, so it stays `running` until the mailbox is drained.',
      response: runView,
    },
    handle: async (req) => {
      const sid = req.caller.studioId;
      const boxId = req.params.id ?? '';
      const runId = req.params.runId ?? '';
      await ctx.repos.emailBoxes.require(sid, boxId);
      const run = await ctx.repos.runs.get(sid, boxId, runId);
      if (!run) throw new NotFoundError('run', runId);
      return ok({ run });
    },
  },
  {
    doc: {
      key: 'GET /email-boxes/{id}/messages',
      tag,
      access: 'user',
      summary:
        "What became of the box's mail, newest first: `?state=imported` (default), `quarantined`, `excluded` or `duplicate`.",
      description:
        'Imported and quarantined entries carry the message; excluded (dated before the cut-off) and duplicate (the same bytes under another server id) entries carry the server id, and a duplicate the id of the message it repeats.',
      response: lists.boxMail,
      query: [
        {
          name: 'state',
          description: 'imported (default), quarantined, excluded or duplicate.',
          schema: boxMailState,
        },
        ...pageParams,
      ],
    },
    handle: async (req) => {
      const { state } = validate(z.object({ state: boxMailState }), req.query);
      const { limit, cursor } = page(req);
      return ok(await listBoxMail(ctx.repos, req.caller.studioId, req.params.id ?? '', state, limit, cursor));
    },
  },
  {
    doc: {
      key: 'GET /clients/{id}/messages',
      tag,
      access: 'user',
      summary: "The client's messages, in and out, newest first.",
      response: lists.messages,
      query: pageParams,
    },
    handle: pagedUnder(ctx.repos.clients, (sid, id, limit, cursor) =>
      ctx.repos.messages.listForClient(sid, id, limit, cursor),
    ),
  },
  {
    doc: {
      key: 'GET /messages',
      tag,
      access: 'user',
      summary:
        'Messages matched to no client (`?unassigned=true`) or quarantined (`?quarantined=true`), newest first.',
      response: lists.messages,
      query: [
        {
          name: 'unassigned',
          description: '`true` lists mail matched to no client.',
          schema: z.enum(['true', 'false']),
        },
        {
          name: 'quarantined',
          description: '`true` lists mail that could not be imported.',
          schema: z.enum(['true', 'false']),
        },
        ...pageParams,
      ],
    },
    handle: async (req) => {
      const sid = req.caller.studioId;
      const q = validate(which, req.query);
      const { limit, cursor } = page(req);
      return ok(
        q.unassigned === 'true'
          ? await ctx.repos.messages.listUnassigned(sid, limit, cursor)
          : await ctx.repos.messages.listQuarantined(sid, limit, cursor),
      );
    },
  },
  {
    doc: {
      key: 'GET /messages/{id}',
      tag,
      access: 'user',
      summary: 'One message (metadata).',
      response: m.message,
    },
    handle: async (req) => ok(await ctx.repos.messages.require(req.caller.studioId, req.params.id ?? '')),
  },
  {
    doc: {
      key: 'GET /messages/{id}/raw',
      tag,
      access: 'user',
      summary: "A link (valid 5 minutes) to download the message's raw copy, byte for byte as received.",
      response: downloadView,
    },
    handle: async (req) => ok(await downloadLink(ctx, req.caller.studioId, req.params.id ?? '', 'raw')),
  },
  {
    doc: {
      key: 'GET /messages/{id}/attachments/{index}',
      tag,
      access: 'user',
      summary: 'A link (valid 5 minutes) to download one attachment; `index` counts from 0 in `attachments`.',
      response: downloadView,
    },
    handle: async (req) => {
      const { index } = validate(attachmentIndex, req.params);
      return ok(await downloadLink(ctx, req.caller.studioId, req.params.id ?? '', index));
    },
  },
  {
    doc: {
      key: 'GET /tasks',
      tag,
      access: 'user',
      summary: 'Tasks, newest first; filtered by client, status, assignee and box (all given must match).',
      description:
        'A filtered page may hold fewer than `limit` tasks and still carry a `nextCursor` (the filter reads on for at most ten table pages per request).',
      response: lists.tasks,
      query: [...taskFilterParams, ...pageParams],
    },
    handle: async (req) => {
      const { limit, cursor } = page(req);
      const filter = validate(taskFilter, req.query);
      return ok(await ctx.repos.tasks.list(req.caller.studioId, limit, cursor, filter));
    },
  },
];
