/**
 * Company (studio) email settings: how the studio sends, from which address, its default
 * signature and time zone. One record per studio; the transport password lives in the secret store.
 */

import type { z } from 'zod';
import type { Stored } from '#lib/data/repositories';
import { ConflictError } from '#lib/domain/errors';
import type { CompanyEmailSettings } from '#lib/domain/model';
import type { SettingsContext } from './context.ts';
import { SettingsMissingError } from './errors.ts';
import { type PatchRequest, patchRecord } from './patch.ts';
import { companySettingsInput, type companySettingsView } from './schemas.ts';
import { saveWithSecret, secretName } from './secrets.ts';
import {
  passwordRefOf,
  transportRecordFrom,
  transportSecretValue,
  transportView,
  transportWantsSecret,
} from './transport.ts';
import { checkRefs } from './usage.ts';
import { Issues } from './validation.ts';

/** Sort key of the studio's single settings record (SK = SETTINGS#company). */
export const COMPANY_SETTINGS_ID = 'company';

type CompanyView = z.infer<typeof companySettingsView>;

export function companyView(s: Stored<CompanyEmailSettings>): CompanyView {
  return { ...s, transport: transportView(s.transport, s.emailAddress) };
}

export async function requireCompany(
  ctx: SettingsContext,
  sid: string,
): Promise<Stored<CompanyEmailSettings>> {
  const found = await ctx.repos.companyEmail.get(sid, COMPANY_SETTINGS_ID);
  if (!found)
    throw new SettingsMissingError(
      'The studio has no email settings yet; an admin sets them with PUT /settings/company/email.',
    );
  return found;
}

export async function getCompany(ctx: SettingsContext, sid: string): Promise<CompanyView> {
  return companyView(await requireCompany(ctx, sid));
}

/** Creates or replaces the company settings; a password given is stored as a secret first. */
export async function putCompany(
  ctx: SettingsContext,
  sid: string,
  input: z.output<typeof companySettingsInput>,
): Promise<{ view: CompanyView; created: boolean }> {
  const { version, transport, ...rest } = input;
  const current = await ctx.repos.companyEmail.get(sid, COMPANY_SETTINGS_ID);
  if (version !== undefined && !current)
    throw new ConflictError(
      'The studio has no email settings yet to replace; leave out "version" to create them.',
    );

  const issues = new Issues();
  const currentRef = passwordRefOf(current?.transport);
  const addresses = { current: current?.emailAddress, next: rest.emailAddress };
  const wantsSecret = transportWantsSecret(transport, current?.transport, issues, 'transport', addresses);
  await checkRefs(ctx.repos, sid, issues, [['defaultSignatureId', 'signatures', input.defaultSignatureId]]);
  issues.throwIfAny();

  const saved = await saveWithSecret(
    ctx.secrets,
    ctx.log,
    {
      currentRef,
      password: transportSecretValue(transport, current?.transport, addresses),
      wantsSecret,
      name: () => secretName(sid, 'company', 'smtp'),
      tags: { studioId: sid, credential: 'company-smtp' },
    },
    (ref) => {
      const record = {
        ...rest,
        transport: transportRecordFrom(transport, ref, current?.transport, addresses),
      };
      return current
        ? ctx.repos.companyEmail.replace(sid, COMPANY_SETTINGS_ID, record, version ?? current.version)
        : ctx.repos.companyEmail.create(sid, COMPANY_SETTINGS_ID, record);
    },
  );
  return { view: companyView(saved), created: !current };
}

/** Changes the fields a merge patch names (If-Match required); the rest stay as stored. */
export async function patchCompany(
  ctx: SettingsContext,
  sid: string,
  req: PatchRequest,
): Promise<CompanyView> {
  const stored = await requireCompany(ctx, sid);
  return patchRecord(req, {
    label: 'the studio email settings',
    stored,
    schema: companySettingsInput,
    save: async (input) => (await putCompany(ctx, sid, input)).view,
  });
}
