import type { ApiRequest } from '#lib/http/api';
import {
  effectiveSettingsView,
  patchSchemas,
  userSettingsInput,
  userSettingsView,
} from '#lib/settings/schemas';
import {
  deleteUserSettings,
  effectiveSettings,
  getUserSettings,
  patchUserSettings,
  putUserSettings,
  targetUser,
} from '#lib/settings/user-settings';
import { body, noContent, ok, patchDescription, type RouteModule, tagged } from './common.ts';

const tag = 'User email settings';

export const userSettingsRoutes: RouteModule = (ctx) => {
  const target = (req: ApiRequest) => targetUser(ctx, req.caller.studioId, req.caller, req.params.id ?? '');
  return [
    {
      doc: {
        key: 'GET /users/{id}/email-settings',
        tag,
        access: 'self',
        summary: "A user's own overrides of the company email settings.",
        response: userSettingsView,
      },
      handle: async (req) => tagged(await getUserSettings(ctx, req.caller.studioId, await target(req))),
    },
    {
      doc: {
        key: 'PUT /users/{id}/email-settings',
        tag,
        access: 'self',
        summary: 'Create or replace the user overrides (address, display name, own SMTP/Gmail, signature).',
        request: userSettingsInput,
        response: userSettingsView,
      },
      handle: async (req) => {
        const userId = await target(req);
        const input = body(userSettingsInput, req);
        return tagged((await putUserSettings(ctx, req.caller.studioId, userId, input)).view);
      },
    },
    {
      doc: {
        key: 'PATCH /users/{id}/email-settings',
        tag,
        access: 'self',
        summary: "Change some of a user's email settings, keeping the rest (JSON Merge Patch).",
        description: patchDescription(
          "`transport: null` goes back to the company's transport; the password changes only when the patch names `transport.password`.",
        ),
        request: patchSchemas.userSettings,
        response: userSettingsView,
      },
      handle: async (req) => {
        const userId = await target(req);
        return tagged(await patchUserSettings(ctx, req.caller.studioId, userId, req));
      },
    },
    {
      doc: {
        key: 'DELETE /users/{id}/email-settings',
        tag,
        access: 'self',
        summary:
          "Remove the overrides (the company's settings apply again); retires the user's stored password.",
        status: 204,
      },
      handle: async (req) => {
        await deleteUserSettings(ctx, req.caller.studioId, await target(req));
        return noContent();
      },
    },
    {
      doc: {
        key: 'GET /users/{id}/email-settings/effective',
        tag,
        access: 'self',
        summary: 'What the user sends with, each value marked `user` or `company`.',
        response: effectiveSettingsView,
      },
      handle: async (req) => ok(await effectiveSettings(ctx, req.caller.studioId, await target(req))),
    },
  ];
};
