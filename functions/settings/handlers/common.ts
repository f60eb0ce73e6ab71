/** What every settings handler module shares: its type and the result helpers. */
import type { ApiResult, Handlers } from '#lib/http/routes';
import type { settingsRoutes } from '../routes.ts';

export type SettingsHandlers = Handlers<typeof settingsRoutes>;
export type SettingsKey = keyof SettingsHandlers;

export const ok = (body: unknown, status = 200): ApiResult => ({ status, body });
export const noContent = (): ApiResult => ({ status: 204 });
