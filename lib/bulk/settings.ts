/** The studio's bulk-email settings and saved client filters, in the studio partition. */
import { RefRepository } from '#lib/data/repositories';
import type { Table } from '#lib/data/table';
import { type BulkSettings, bulkSettings, clientFilter } from './model.ts';

export function settingsRepository(table: Table) {
  return new RefRepository(table, 'BULKSETTINGS', bulkSettings, 'bulk email settings');
}

export function filterRepository(table: Table) {
  return new RefRepository(table, 'CLIENTFILTER', clientFilter, 'client filter');
}

/** The stored settings, or the defaults (no caps, 5 per second over SMTP, unsubscribe on). */
export async function readSettings(table: Table, sid: string): Promise<BulkSettings> {
  const stored = await settingsRepository(table).get(sid, 'bulk');
  if (!stored) return bulkSettings.parse({});
  const { version: _v, createdAt: _c, updatedAt: _u, ...rest } = stored;
  return bulkSettings.parse(rest);
}
