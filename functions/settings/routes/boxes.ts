import { requireAdmin } from '#lib/http/api';
import { boxView, createBox, deleteBox, replaceBox, testBox } from '#lib/settings/boxes';
import { ConnectionFailedError } from '#lib/settings/errors';
import { boxInput, boxView as boxViewSchema, connectionTestView, lists } from '#lib/settings/schemas';
import { body, connectionFailed, noContent, ok, type RouteModule, verify, verifyQuery } from './common.ts';

const tag = 'Email boxes';

export const boxRoutes: RouteModule = (ctx) => [
  {
    doc: {
      key: 'GET /email-boxes',
      tag,
      access: 'user',
      summary: 'List the email boxes.',
      response: lists.boxes,
    },
    handle: async (req) =>
      ok({ items: (await ctx.repos.emailBoxes.list(req.caller.studioId)).map((b) => boxView(b)) }),
  },
  {
    doc: {
      key: 'POST /email-boxes',
      tag,
      access: 'admin',
      summary: 'Create an email box; logs in to its POP3 server first unless `?verify=false`.',
      description:
        'A failed login answers 422 `connection_failed` naming the field to fix, and saves nothing. Exchange boxes are stored without a test (the connector comes later); `verification.note` says so.',
      request: boxInput,
      response: boxViewSchema,
      status: 201,
      query: [verifyQuery],
      errors: [422],
    },
    handle: async (req) => {
      requireAdmin(req.caller);
      const input = body(boxInput, req);
      try {
        return ok(await createBox(ctx, req.caller.studioId, input, { verify: verify(req) }), 201);
      } catch (error) {
        if (error instanceof ConnectionFailedError) return connectionFailed(error, req);
        throw error;
      }
    },
  },
  {
    doc: {
      key: 'GET /email-boxes/{id}',
      tag,
      access: 'user',
      summary: 'Read one email box.',
      response: boxViewSchema,
    },
    handle: async (req) =>
      ok(boxView(await ctx.repos.emailBoxes.require(req.caller.studioId, req.params.id ?? ''))),
  },
  {
    doc: {
      key: 'PUT /email-boxes/{id}',
      tag,
      access: 'admin',
      summary:
        'Replace an email box; logs in first (with the stored password when none is given) unless `?verify=false`.',
      description:
        'Leave `connection.password` out to keep the stored one. The box schedule is kept as it is.',
      request: boxInput,
      response: boxViewSchema,
      query: [verifyQuery],
      errors: [422],
    },
    handle: async (req) => {
      requireAdmin(req.caller);
      const input = body(boxInput, req);
      try {
        return ok(
          await replaceBox(ctx, req.caller.studioId, req.params.id ?? '', input, { verify: verify(req) }),
        );
      } catch (error) {
        if (error instanceof ConnectionFailedError) return connectionFailed(error, req);
        throw error;
      }
    },
  },
  {
    doc: {
      key: 'DELETE /email-boxes/{id}',
      tag,
      access: 'admin',
      summary: 'Delete an email box and schedule its stored password for deletion.',
      status: 204,
    },
    handle: async (req) => {
      requireAdmin(req.caller);
      await deleteBox(ctx, req.caller.studioId, req.params.id ?? '');
      return noContent();
    },
  },
  {
    doc: {
      key: 'POST /email-boxes/{id}/test',
      tag,
      access: 'admin',
      summary: 'Log in to the box with the stored password and report what happened.',
      description:
        'Always 200 when the test ran: `ok: true` with the greeting and message count, or `ok: false` with `field` (what to fix), `message` and `serverReply`.',
      response: connectionTestView,
    },
    handle: async (req) => {
      requireAdmin(req.caller);
      return ok(await testBox(ctx, req.caller.studioId, req.params.id ?? ''));
    },
  },
  {
    doc: {
      key: 'GET /email-boxes/{id}/schedule',
      tag,
      access: 'user',
      summary: 'Not implemented yet: box schedules arrive in a later release.',
      status: 501,
    },
    handle: async (req) => ({
      status: 501,
      body: {
        error: {
          code: 'not_implemented',
          message: 'Email box schedules are not available yet.',
          requestId: req.requestId,
        },
      },
    }),
  },
];
