import type { ApiRequest } from '#lib/http/routes';
import type { SettingsContext } from '#lib/settings/context';
import {
  deleteUserSettings,
  effectiveSettings,
  getUserSettings,
  patchUserSettings,
  putUserSettings,
  targetUser,
} from '#lib/settings/user-settings';
import { noContent, ok, type SettingsHandlers, tagged } from './common.ts';

type Keys =
  | 'GET /users/{id}/email-settings'
  | 'PUT /users/{id}/email-settings'
  | 'PATCH /users/{id}/email-settings'
  | 'DELETE /users/{id}/email-settings'
  | 'GET /users/{id}/email-settings/effective';

export const userSettingsHandlers = (ctx: SettingsContext): Pick<SettingsHandlers, Keys> => {
  // The edge has checked `self` access and turned `me` into the caller's id; this checks the user exists.
  const target = (req: ApiRequest<unknown, unknown>) =>
    targetUser(ctx, req.caller.studioId, req.caller, req.params.id ?? '');
  return {
    'GET /users/{id}/email-settings': async (req) =>
      tagged(await getUserSettings(ctx, req.caller.studioId, await target(req))),
    'PUT /users/{id}/email-settings': async (req) => {
      const userId = await target(req);
      return tagged((await putUserSettings(ctx, req.caller.studioId, userId, req.body)).view);
    },
    'PATCH /users/{id}/email-settings': async (req) => {
      const userId = await target(req);
      return tagged(await patchUserSettings(ctx, req.caller.studioId, userId, req));
    },
    'DELETE /users/{id}/email-settings': async (req) => {
      await deleteUserSettings(ctx, req.caller.studioId, await target(req));
      return noContent();
    },
    'GET /users/{id}/email-settings/effective': async (req) =>
      ok(await effectiveSettings(ctx, req.caller.studioId, await target(req))),
  };
};
