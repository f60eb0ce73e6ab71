import { requireAdmin } from '#lib/http/api';
import { getCompany, patchCompany, putCompany } from '#lib/settings/company';
import { companySettingsInput, companySettingsView, patchSchemas } from '#lib/settings/schemas';
import { body, patchDescription, type RouteModule, tagged } from './common.ts';

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
    handle: async (req) => tagged(await getCompany(ctx, req.caller.studioId)),
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
      return tagged((await putCompany(ctx, req.caller.studioId, input)).view);
    },
  },
  {
    doc: {
      key: 'PATCH /settings/company/email',
      tag,
      access: 'admin',
      summary: 'Change some of the studio email settings, keeping the rest (JSON Merge Patch).',
      description: patchDescription(
        'The transport password changes only when the patch names `transport.password`. Switching `transport.method` between Gmail and SMTP needs the new password, as on PUT.',
      ),
      request: patchSchemas.company,
      response: companySettingsView,
    },
    handle: async (req) => {
      requireAdmin(req.caller);
      return tagged(await patchCompany(ctx, req.caller.studioId, req));
    },
  },
];
