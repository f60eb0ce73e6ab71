import type { ApiRequest } from '#lib/http/routes';
import type { SettingsContext } from '#lib/settings/context';
import {
  deleteUserSettings,
  effectiveSettings,
  getUserSettings,
  putUserSettings,
  targetUser,
} from '#lib/settings/user-settings';
import { noContent, ok, type SettingsHandlers } from './common.ts';

type Keys =
  | 'GET /users/{id}/email-settings'
  | 'PUT /users/{id}/email-settings'
  | 'DELETE /users/{id}/email-settings'
  | 'GET /users/{id}/email-settings/effective';

export const userSettingsHandlers = (ctx: SettingsContext): Pick<SettingsHandlers, Keys> => {
  // The edge has checked `self` access and turned `me` into the caller's id; this checks the user exists.
  const target = (req: ApiRequest<unknown, unknown>) =>
    targetUser(ctx, req.caller.studioId, req.caller, req.params.id ?? '');
  return {
    'GET /users/{id}/email-settings': async (req) =>
      ok(await getUserSettings(ctx, req.caller.studioId, await target(req))),
    'PUT /users/{id}/email-settings': async (req) => {
      const userId = await target(req);
      return ok((await putUserSettings(ctx, req.caller.studioId, userId, req.body)).view);
    },
    'DELETE /users/{id}/email-settings': async (req) => {
      await deleteUserSettings(ctx, req.caller.studioId, await target(req));
      return noContent();
    },
    'GET /users/{id}/email-settings/effective': async (req) =>
      ok(await effectiveSettings(ctx, req.caller.studioId, await target(req))),
  };
};
