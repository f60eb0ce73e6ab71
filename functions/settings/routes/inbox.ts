/** Read-only views over what the inbox poller stores: runs, messages, tasks. */
import * as z from 'zod';
import * as m from '#lib/domain/model';
import type { RouteHandler } from '#lib/http/api';
import { lists } from '#lib/settings/schemas';
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
      key: 'GET /tasks',
      tag,
      access: 'user',
      summary: 'Tasks, newest first.',
      response: lists.tasks,
      query: pageParams,
    },
    handle: async (req) => {
      const { limit, cursor } = page(req);
      return ok(await ctx.repos.tasks.list(req.caller.studioId, limit, cursor));
    },
  },
];
