import {
  boxView,
  createBox,
  deleteBox,
  patchBox,
  readBox,
  receivingAddressOf,
  replaceBox,
  testBox,
} from '#lib/settings/boxes';
import type { SettingsContext } from '#lib/settings/context';
import { scheduleView } from '#lib/settings/schedules';
import { noContent, ok, type SettingsHandlers, tagged } from './common.ts';

type Keys =
  | 'GET /email-boxes'
  | 'POST /email-boxes'
  | 'GET /email-boxes/{id}'
  | 'PUT /email-boxes/{id}'
  | 'PATCH /email-boxes/{id}'
  | 'DELETE /email-boxes/{id}'
  | 'POST /email-boxes/{id}/test'
  | 'GET /email-boxes/{id}/schedule';

// A failed mail server login throws ConnectionFailedError: 422 with the field and, in `details`,
// the server's reply, serialised by the edge like every other error.
export const boxHandlers = (ctx: SettingsContext): Pick<SettingsHandlers, Keys> => ({
  'GET /email-boxes': async (req) =>
    ok({
      items: (await ctx.repos.emailBoxes.list(req.caller.studioId)).map((b) =>
        boxView(b, undefined, receivingAddressOf(ctx, req.caller.studioId, b)),
      ),
    }),
  'POST /email-boxes': async (req) =>
    ok(await createBox(ctx, req.caller.studioId, req.body, { verify: req.query.verify }), 201),
  'GET /email-boxes/{id}': async (req) =>
    tagged(await readBox(ctx, req.caller.studioId, req.params.id ?? '')),
  'PUT /email-boxes/{id}': async (req) =>
    ok(
      await replaceBox(ctx, req.caller.studioId, req.params.id ?? '', req.body, {
        verify: req.query.verify,
        syncSchedule: req.query.syncSchedule,
      }),
    ),
  'PATCH /email-boxes/{id}': async (req) =>
    tagged(
      await patchBox(ctx, req.caller.studioId, req.params.id ?? '', req, {
        verify: req.query.verify,
        syncSchedule: req.query.syncSchedule,
      }),
    ),
  'DELETE /email-boxes/{id}': async (req) => {
    await deleteBox(ctx, req.caller.studioId, req.params.id ?? '');
    return noContent();
  },
  'POST /email-boxes/{id}/test': async (req) =>
    ok(await testBox(ctx, req.caller.studioId, req.params.id ?? '')),
  'GET /email-boxes/{id}/schedule': async (req) => {
    const box = await ctx.repos.emailBoxes.require(req.caller.studioId, req.params.id ?? '');
    return ok(await scheduleView(ctx, req.caller.studioId, box));
  },
});
