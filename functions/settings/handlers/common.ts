/** What every settings handler module shares: its type and the result helpers. */
import type { ApiResult, Handlers } from '#lib/http/routes';
import { etagOf } from '#lib/settings/patch';
import type { settingsRoutes } from '../routes.ts';

export type SettingsHandlers = Handlers<typeof settingsRoutes>;
export type SettingsKey = keyof SettingsHandlers;

export const ok = (body: unknown, status = 200): ApiResult => ({ status, body });
export const noContent = (): ApiResult => ({ status: 204 });
/** A record with its version as `ETag`, for a later PATCH's `If-Match`. */
export const tagged = (record: { version: number }, status = 200): ApiResult => ({
  status,
  body: record,
  headers: { etag: etagOf(record.version) },
});
