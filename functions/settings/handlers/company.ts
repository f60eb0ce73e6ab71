import { getCompany, putCompany } from '#lib/settings/company';
import type { SettingsContext } from '#lib/settings/context';
import { ok, type SettingsHandlers } from './common.ts';

export const companyHandlers = (
  ctx: SettingsContext,
): Pick<SettingsHandlers, 'GET /settings/company/email' | 'PUT /settings/company/email'> => ({
  'GET /settings/company/email': async (req) => ok(await getCompany(ctx, req.caller.studioId)),
  'PUT /settings/company/email': async (req) =>
    ok((await putCompany(ctx, req.caller.studioId, req.body)).view),
});
