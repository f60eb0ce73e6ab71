import { requireAdmin } from '#lib/http/api';
import { getCompany, putCompany } from '#lib/settings/company';
import { companySettingsInput, companySettingsView } from '#lib/settings/schemas';
import { body, ok, type RouteModule } from './common.ts';

const tag = 'Company email settings';

export const companyRoutes: RouteModule = (ctx) => [
  {
    doc: {
      key: 'GET /settings/company/email',
      tag,
      access: 'user',
      summary: 'Read the studio email settings (never the password: `transport.passwordSet`).',
      response: companySettingsView,
    },
    handle: async (req) => ok(await getCompany(ctx, req.caller.studioId)),
  },
  {
    doc: {
      key: 'PUT /settings/company/email',
      tag,
      access: 'admin',
      summary: 'Create or replace the studio email settings.',
      description:
        'Sending method `ses` (managed), `smtp` or `gmail`. A password given is stored in the secret store; leave it out to keep the stored one. Switching to `ses` retires the stored password.',
      request: companySettingsInput,
      response: companySettingsView,
    },
    handle: async (req) => {
      requireAdmin(req.caller);
      const input = body(companySettingsInput, req);
      return ok((await putCompany(ctx, req.caller.studioId, input)).view);
    },
  },
];
