import * as z from 'zod';
import type { ApiRequest } from '#lib/http/api';
import { requireAdmin } from '#lib/http/api';
import { boxView, createBox, deleteBox, replaceBox, testBox } from '#lib/settings/boxes';
import type { QueryParam } from '#lib/settings/openapi';
import { scheduleView } from '#lib/settings/schedules';
import {
  boxInput,
  boxView as boxViewSchema,
  connectionTestView,
  lists,
  scheduleView as scheduleViewSchema,
} from '#lib/settings/schemas';
import { validate } from '#lib/settings/validation';
import {
  answeringConnectionFailure,
  body,
  noContent,
  ok,
  type RouteModule,
  verify,
  verifyQuery,
} from './common.ts';

const syncParam = z
  .enum(['true', 'false'], { error: 'must be true or false, e.g. ?syncSchedule=true.' })
  .default('false');
const syncScheduleQuery: QueryParam = {
  name: 'syncSchedule',
  description:
    'Write the schedule to EventBridge Scheduler from these settings even when they did not change (default false). Use it to undo a console edit shown as drift.',
  schema: syncParam,
};
const syncSchedule = (req: ApiRequest) =>
  validate(z.object({ syncSchedule: syncParam }), req.query).syncSchedule === 'true';

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
        "A failed login answers 422 `connection_failed` naming the field to fix, and saves nothing. Exchange boxes are stored without a test (the connector comes later); `verification.note` says so. A `schedule` creates the box's EventBridge Scheduler schedule first; if Scheduler fails the answer is 502 `schedule_write_failed` and nothing is saved.",
      request: boxInput,
      response: boxViewSchema,
      status: 201,
      query: [verifyQuery],
      errors: [422, 502],
    },
    handle: async (req) => {
      requireAdmin(req.caller);
      const input = body(boxInput, req);
      return answeringConnectionFailure(req, async () =>
        ok(await createBox(ctx, req.caller.studioId, input, { verify: verify(req) }), 201),
      );
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
        'Leave `connection.password` out to keep the stored one, and `schedule` out to keep the stored schedule (null removes it). The Scheduler schedule is written only when its settings change (or the box is renamed, or `?syncSchedule=true`), so a save that leaves the schedule alone never overwrites an edit made in the console. 502 `schedule_write_failed` when Scheduler fails; nothing is saved.',
      request: boxInput,
      response: boxViewSchema,
      query: [verifyQuery, syncScheduleQuery],
      errors: [422, 502],
    },
    handle: async (req) => {
      requireAdmin(req.caller);
      const input = body(boxInput, req);
      return answeringConnectionFailure(req, async () =>
        ok(
          await replaceBox(ctx, req.caller.studioId, req.params.id ?? '', input, {
            verify: verify(req),
            syncSchedule: syncSchedule(req),
          }),
        ),
      );
    },
  },
  {
    doc: {
      key: 'DELETE /email-boxes/{id}',
      tag,
      access: 'admin',
      summary: 'Delete an email box and its poll schedule, and schedule its stored password for deletion.',
      status: 204,
      errors: [502],
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
      summary:
        'The box schedule: the stored settings next to what EventBridge Scheduler holds, and their drift.',
      description:
        'An admin may edit a schedule in the AWS console (disable it, change its expression or the window in its input). The poller honours such an edit; this view shows it in `drift` instead of overwriting it. `PUT /email-boxes/{id}?syncSchedule=true` writes the stored settings back.',
      response: scheduleViewSchema,
      errors: [502],
    },
    handle: async (req) => {
      const box = await ctx.repos.emailBoxes.require(req.caller.studioId, req.params.id ?? '');
      return ok(await scheduleView(ctx, req.caller.studioId, box));
    },
  },
];
