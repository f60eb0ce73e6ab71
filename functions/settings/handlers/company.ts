import { getCompany, patchCompany, putCompany } from '#lib/settings/company';
import type { SettingsContext } from '#lib/settings/context';
import { type SettingsHandlers, tagged } from './common.ts';

export const companyHandlers = (
  ctx: SettingsContext,
): Pick<
  SettingsHandlers,
  'GET /settings/company/email' | 'PUT /settings/company/email' | 'PATCH /settings/company/email'
> => ({
  'GET /settings/company/email': async (req) => tagged(await getCompany(ctx, req.caller.studioId)),
  'PUT /settings/company/email': async (req) =>
    tagged((await putCompany(ctx, req.caller.studioId, req.body)).view),
  'PATCH /settings/company/email': async (req) => tagged(await patchCompany(ctx, req.caller.studioId, req)),
});
