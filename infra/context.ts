/**
 * The context values a studio sets (cdk.json or `cdk deploy -c key=value`), parsed and checked.
 * Values given with `-c` arrive as strings, values from cdk.json keep their JSON type; both work.
 */
import type { Node } from 'constructs';

export const contextKeys = {
  region: 'studio-mail:region',
  stackName: 'studio-mail:stackName',
  secretPrefix: 'studio-mail:secretPrefix',
  senderIdentity: 'studio-mail:senderIdentity',
  notificationSender: 'studio-mail:notificationSender',
  corsOrigins: 'studio-mail:corsOrigins',
  deletionProtection: 'studio-mail:deletionProtection',
  jwtIssuer: 'studio-mail:jwtIssuer',
  jwtAudience: 'studio-mail:jwtAudience',
  alarmEmail: 'studio-mail:alarmEmail',
  studioClaim: 'studio-mail:studioClaim',
  logLevel: 'studio-mail:logLevel',
  receivingDomain: 'studio-mail:receivingDomain',
} as const;

export interface StudioMailSettings {
  /** Deployment region; falls back to the CLI's profile region. */
  readonly region: string | undefined;
  readonly stackName: string;
  /** Every secret the system writes is named under this prefix; IAM is scoped to it. */
  readonly secretPrefix: string;
  /** SES identity (verified domain or address) the functions may send as. */
  readonly senderIdentity: string;
  /** From address of notification emails (under a verified identity). */
  readonly notificationSender: string;
  readonly corsOrigins: string[];
  readonly deletionProtection: boolean;
  readonly jwtIssuer: string | undefined;
  readonly jwtAudience: string[];
  readonly alarmEmail: string | undefined;
  readonly studioClaim: string;
  readonly logLevel: string;
  /** Push intake: the domain SES receives forwarded mail for (its MX points at SES); unset: polling only. */
  readonly receivingDomain: string | undefined;
}

function text(node: Node, key: string): string | undefined {
  const value: unknown = node.tryGetContext(key);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw new Error(`Context ${key} must be a string, got ${JSON.stringify(value)}`);
  return value.trim() || undefined;
}

function list(node: Node, key: string): string[] {
  const value: unknown = node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return [];
  if (Array.isArray(value)) return value.map(String).filter(Boolean);
  if (typeof value === 'string') {
    const trimmed = value.trim();
    if (trimmed.startsWith('[')) return (JSON.parse(trimmed) as unknown[]).map(String).filter(Boolean);
    return trimmed
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }
  throw new Error(`Context ${key} must be a list or a comma-separated string`);
}

function flag(node: Node, key: string, fallback: boolean): boolean {
  const value: unknown = node.tryGetContext(key);
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new Error(`Context ${key} must be true or false, got ${JSON.stringify(value)}`);
}

function required(node: Node, key: string): string {
  const value = text(node, key);
  if (!value) throw new Error(`Missing context ${key} (set it in cdk.json or pass -c ${key}=...)`);
  return value;
}

export function readSettings(node: Node): StudioMailSettings {
  const secretPrefix = text(node, contextKeys.secretPrefix) ?? 'studio-mail/';
  if (!/^[A-Za-z0-9/_+=.@-]+$/.test(secretPrefix)) {
    throw new Error(`Context ${contextKeys.secretPrefix} has characters Secrets Manager names cannot hold`);
  }
  return {
    region: text(node, contextKeys.region),
    stackName: text(node, contextKeys.stackName) ?? 'StudioMail',
    secretPrefix,
    senderIdentity: required(node, contextKeys.senderIdentity),
    notificationSender: required(node, contextKeys.notificationSender),
    corsOrigins: list(node, contextKeys.corsOrigins),
    deletionProtection: flag(node, contextKeys.deletionProtection, true),
    jwtIssuer: text(node, contextKeys.jwtIssuer),
    jwtAudience: list(node, contextKeys.jwtAudience),
    alarmEmail: text(node, contextKeys.alarmEmail),
    studioClaim: text(node, contextKeys.studioClaim) ?? 'custom:studioId',
    logLevel: text(node, contextKeys.logLevel) ?? 'INFO',
    receivingDomain: text(node, contextKeys.receivingDomain)?.toLowerCase(),
  };
}
