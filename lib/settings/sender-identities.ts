/**
 * Sender identities per studio (see lib/send/identity.ts for the sending side). Creating one
 * asks SES (or its local twin) for the identity with Easy DKIM and answers with the DNS records
 * to publish; reads show SES's verification and DKIM status. An identity belongs to exactly one
 * studio (an owner claim in the table), since one SES account serves them all.
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { ConflictError, NotFoundError } from '#lib/domain/errors';
import type { SenderIdentity } from '#lib/domain/model';
import { requestSchemas, responseSchemas } from '#lib/http/registry';
import type { IdentityStatus } from '#lib/ports/index';
import type { SettingsContext } from './context.ts';

const DOMAIN = /^(?=.{3,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

export const senderIdentityInput = z.strictObject({
  identity: z
    .string({ error: 'is required: a domain (lumen.test) or an address (hello@lumen.test).' })
    .trim()
    .toLowerCase()
    .max(254, { error: 'must be at most 254 characters.' })
    .refine(
      (v) =>
        v.includes('@')
          ? z.email().safeParse(v).success && DOMAIN.test(v.slice(v.lastIndexOf('@') + 1))
          : DOMAIN.test(v),
      { error: 'must be a domain (lumen.test) or an email address (hello@lumen.test).' },
    ),
});

const dnsRecord = z.object({ type: z.literal('CNAME'), name: z.string(), value: z.string() });
export const senderIdentityView = z.object({
  id: z.string(),
  identity: z.string(),
  type: z.enum(['domain', 'address']),
  verified: z.boolean(),
  dkimStatus: z.string(),
  /** What to publish: Easy DKIM CNAMEs for a domain; none for an address (SES emails a link). */
  dnsRecords: z.array(dnsRecord),
  instructions: z.string(),
});
export type SenderIdentityView = z.infer<typeof senderIdentityView>;
export const senderIdentityList = z.object({ items: z.array(senderIdentityView) });
requestSchemas.add(senderIdentityInput, { id: 'SenderIdentityInput' });
responseSchemas.add(dnsRecord, { id: 'DnsRecord' });
responseSchemas.add(senderIdentityView, { id: 'SenderIdentity' });
responseSchemas.add(senderIdentityList, { id: 'SenderIdentityList' });

/** A stable id from the identity: short, safe in a path, the same on a retried create. */
export function senderIdentityId(identity: string): string {
  return `si-${createHash('sha256').update(identity).digest('hex').slice(0, 16)}`;
}

function view(record: SenderIdentity, status: IdentityStatus | undefined): SenderIdentityView {
  const domain = record.identity.slice(record.identity.lastIndexOf('@') + 1);
  const dnsRecords =
    record.type === 'domain'
      ? (status?.dkimTokens ?? []).map((t) => ({
          type: 'CNAME' as const,
          name: `${t}._domainkey.${domain}`,
          value: `${t}.dkim.amazonses.com`,
        }))
      : [];
  const verified = status?.verified ?? false;
  const instructions = verified
    ? `Verified: mail from ${record.type === 'domain' ? `any address at ${domain}` : record.identity} may go out through Amazon SES.`
    : record.type === 'domain'
      ? `Publish the ${dnsRecords.length} CNAME records at your DNS provider; Amazon SES verifies the domain once it sees them (usually within an hour).`
      : `Amazon SES has emailed a verification link to ${record.identity}; open it to verify the address.`;
  return {
    id: record.id,
    identity: record.identity,
    type: record.type,
    verified,
    dkimStatus: status?.dkimStatus ?? 'NOT_STARTED',
    dnsRecords,
    instructions,
  };
}

/** Keeps the stored "verified" (the send path's cache) in step with what SES said. */
async function remember(
  ctx: SettingsContext,
  sid: string,
  record: SenderIdentity & { version: number },
  status: IdentityStatus | undefined,
) {
  const verified = status?.verified ?? false;
  if (verified === record.verified && (!status || status.arn === record.arn)) return;
  const { id, identity, type } = record;
  await ctx.repos.senderIdentities
    .replace(sid, id, { id, identity, type, verified, arn: status?.arn ?? record.arn }, record.version)
    .catch(() => {}); // a concurrent update wrote the same answer
}

export async function createSenderIdentity(
  ctx: SettingsContext,
  sid: string,
  input: z.output<typeof senderIdentityInput>,
): Promise<{ view: SenderIdentityView; created: boolean }> {
  const identity = input.identity;
  const id = senderIdentityId(identity);
  const owner = await ctx.repos.senderIdentities.ownerOf(identity);
  if (owner && owner !== sid)
    throw new ConflictError(
      `The sender identity "${identity}" is registered to another account here; ask support if it is yours.`,
    );
  if (owner === sid) {
    const existing = await ctx.repos.senderIdentities.require(sid, id);
    return { view: view(existing, await ctx.identities.get(identity)), created: false };
  }
  const status = await ctx.identities.create(identity);
  const record = await ctx.repos.senderIdentities.createClaimed(sid, {
    id,
    identity,
    type: identity.includes('@') ? 'address' : 'domain',
    verified: status.verified,
    arn: status.arn,
  });
  ctx.log.info('sender identity created', { id, type: record.type });
  return { view: view(record, status), created: true };
}

export async function listSenderIdentities(ctx: SettingsContext, sid: string) {
  const records = await ctx.repos.senderIdentities.list(sid);
  const items = await Promise.all(
    records.map(async (r) => {
      const status = await ctx.identities.get(r.identity);
      await remember(ctx, sid, r, status);
      return view(r, status);
    }),
  );
  return { items };
}

export async function getSenderIdentity(ctx: SettingsContext, sid: string, id: string) {
  const record = await ctx.repos.senderIdentities.require(sid, id);
  const status = await ctx.identities.get(record.identity);
  await remember(ctx, sid, record, status);
  return view(record, status);
}

/** "I have published the records": SES is asked again (the local twin verifies at this point). */
export async function recheckSenderIdentity(ctx: SettingsContext, sid: string, id: string) {
  const record = await ctx.repos.senderIdentities.require(sid, id);
  const status = await ctx.identities.recheck(record.identity);
  await remember(ctx, sid, record, status);
  return view(record, status);
}

/** Removes the studio's claim first (sending stops at once), then the SES identity. */
export async function deleteSenderIdentity(ctx: SettingsContext, sid: string, id: string): Promise<void> {
  const record = await ctx.repos.senderIdentities.get(sid, id);
  if (!record) throw new NotFoundError('sender identity', id);
  await ctx.repos.senderIdentities.deleteClaimed(sid, record);
  try {
    await ctx.identities.delete(record.identity);
  } catch (error) {
    // No studio owns it any more, so nothing can send as it; the SES entry is only clutter.
    ctx.log.warn('SES identity not deleted', { id, errorMessage: String(error) });
  }
}
