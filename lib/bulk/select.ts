/**
 * Client selection as the Communication Wizard does it: by group, status, a saved filter's field
 * conditions or explicit ids (all given criteria must hold), then who is skipped and why. Pure
 * apart from the reads it is handed.
 */
import { clientTimelinePk } from '#lib/data/keys';
import type { Item, Table } from '#lib/data/table';
import { type Client, client as clientSchema } from '#lib/domain/model';
import type { BlockEntry, Condition, Selection, SkipReason } from './model.ts';

export interface Candidate {
  clientId: string;
  name?: string;
  address?: string;
}
export interface Chosen extends Candidate {
  address: string;
}
export interface Skipped extends Candidate {
  reason: SkipReason;
  /** Why the address is blocked (unsubscribed, bounced, complained, manual). */
  blockReason?: string;
}

export const fullName = (c: Pick<Client, 'firstName' | 'lastName'>) =>
  [c.firstName, c.lastName].filter((p) => p.trim()).join(' ') || undefined;

export const primaryAddress = (c: Client) => (c.emails.find((e) => e.primary) ?? c.emails[0])?.address;

function fieldValues(c: Client, field: Condition['field']): string[] {
  switch (field) {
    case 'group':
      return c.groups;
    case 'email':
      return c.emails.map((e) => e.address);
    default:
      return [String(c[field] ?? '')];
  }
}

export function matches(c: Client, cond: Condition): boolean {
  const values = fieldValues(c, cond.field).map((v) => v.toLowerCase());
  const want = (cond.value ?? '').toLowerCase();
  const any = (f: (v: string) => boolean) => values.some(f);
  switch (cond.op) {
    case 'equals':
      return any((v) => v === want);
    case 'notEquals':
      return !any((v) => v === want);
    case 'contains':
      return any((v) => v.includes(want));
    case 'startsWith':
      return any((v) => v.startsWith(want));
    case 'isEmpty':
      return !any((v) => v !== '');
    case 'isNotEmpty':
      return any((v) => v !== '');
  }
}

export function selects(c: Client, s: Selection, savedConditions: Condition[]): boolean {
  if (s.groups?.length && !c.groups.some((g) => s.groups?.includes(g))) return false;
  if (s.statuses?.length && !(c.status && s.statuses.includes(c.status))) return false;
  for (const cond of [...savedConditions, ...(s.conditions ?? [])]) if (!matches(c, cond)) return false;
  return true;
}

/** Reads the clients a selection can name: the listed ids, or every client of the studio. */
export async function candidates(
  table: Table,
  sid: string,
  s: Selection,
): Promise<{ found: Client[]; missing: string[] }> {
  if (s.clientIds) {
    const ids = [...new Set(s.clientIds)];
    const items = await table.batchGet<Item>(
      ids.map((id) => ({ PK: clientTimelinePk(sid, id), SK: 'CLIENT' })),
    );
    const byId = new Map(items.map((i) => [String(i.id), clientSchema.parse(i)]));
    return { found: ids.flatMap((id) => byId.get(id) ?? []), missing: ids.filter((id) => !byId.has(id)) };
  }
  const items = await table.queryAll<Item>({
    IndexName: 'GSI1',
    KeyConditionExpression: 'GSI1PK = :pk',
    ExpressionAttributeValues: { ':pk': `ST#${sid}#CLIENTS` },
  });
  return { found: items.map((i) => clientSchema.parse(i)), missing: [] };
}

/**
 * Splits the selected clients into recipients and skipped ones: no address, no marketing
 * consent, a blocked address, or an address an earlier recipient already has.
 */
export function choose(
  clients: Client[],
  missing: string[],
  blocked: Map<string, BlockEntry>,
): { recipients: Chosen[]; skipped: Skipped[] } {
  const recipients: Chosen[] = [];
  const skipped: Skipped[] = missing.map((clientId) => ({ clientId, reason: 'not-found' }));
  const seen = new Set<string>();
  for (const c of clients) {
    const name = fullName(c);
    const address = primaryAddress(c);
    const base = { clientId: c.id, ...(name ? { name } : {}), ...(address ? { address } : {}) };
    if (!address) skipped.push({ ...base, reason: 'no-address' });
    else if (!c.marketingConsent) skipped.push({ ...base, reason: 'no-marketing-consent' });
    else if (blocked.has(address.toLowerCase()))
      skipped.push({ ...base, reason: 'blocked', blockReason: blocked.get(address.toLowerCase())?.reason });
    else if (seen.has(address.toLowerCase())) skipped.push({ ...base, reason: 'duplicate-address' });
    else {
      seen.add(address.toLowerCase());
      recipients.push({ ...base, address });
    }
  }
  return { recipients, skipped };
}
