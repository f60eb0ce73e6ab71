/**
 * Which Exchange boxes are read through Microsoft Graph: those saved with `access: "graph"`, and
 * those whose server is Exchange Online's (outlook.office365.com and its kin), where basic
 * authentication for POP3 is off and Graph is the way in.
 */
import type { BoxConnection } from '#lib/domain/model';

const EXCHANGE_ONLINE = /^(outlook\.office365\.com|outlook\.office\.com|graph\.microsoft\.com)$/i;

export function isGraphConnection(c: Pick<BoxConnection, 'type' | 'server' | 'access'>): boolean {
  return c.type === 'exchange' && (c.access === 'graph' || EXCHANGE_ONLINE.test(c.server.trim()));
}
