/**
 * Outbound mail connections (POP3, SMTP, the port probe) go only to public addresses unless the
 * deployment says otherwise (`ALLOW_PRIVATE_MAIL_HOSTS`): a server name a user typed must not
 * reach the Lambda's own network, loopback or the instance metadata service (SSRF). The name is
 * resolved once, every address is checked, and the connection goes to the checked address; the
 * original name stays the TLS server name, so certificates are still checked against it.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Name → addresses. Tests inject one; the default asks the system resolver (getaddrinfo). */
export type Resolve = (host: string) => Promise<ResolvedAddress[]>;

export interface MailHostPolicy {
  /** True on a developer's machine and in tests (local servers); always false when deployed. */
  allowPrivate: boolean;
  resolve?: Resolve;
}

export const systemResolve: Resolve = async (host) => {
  const all = await dnsLookup(host, { all: true, verbatim: true });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/** A server name that resolves to an address outbound mail connections may not use. */
export class MailHostRefusedError extends Error {
  override readonly name = 'MailHostRefusedError';
  /** Node's socket errors carry a code; this one is ours. */
  readonly code = 'EPRIVATEHOST';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly range: string,
  ) {
    super(
      `The server ${host} resolves to ${address} (${range}), which mail connections from here may not use.`,
    );
  }
}

// ── address ranges ────────────────────────────────────────────────────────────────────────────────

const V4_RANGES: ReadonlyArray<readonly [string, number, string]> = [
  ['0.0.0.0', 8, 'this network'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local / instance metadata'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved / broadcast'],
];

const V6_RANGES: ReadonlyArray<readonly [string, number, string]> = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['100::', 64, 'discard'],
  ['2001::', 23, 'IETF protocol assignments (Teredo, ORCHID)'],
  ['2001:db8::', 32, 'documentation'],
  ['fc00::', 7, 'unique local (private; includes the IPv6 metadata address fd00:ec2::254)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
];

function v4ToBigInt(ip: string): bigint | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = (n << 8n) | BigInt(Number(p));
  }
  return n;
}

function v6ToBigInt(input: string): bigint | undefined {
  let ip = input.replace(/^\[|\]$/g, '').split('%')[0] ?? '';
  // A trailing dotted quad (::ffff:127.0.0.1) becomes two hex groups.
  const dotted = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ip);
  if (dotted?.[1]) {
    const v4 = v4ToBigInt(dotted[1]);
    if (v4 === undefined) return undefined;
    ip = `${ip.slice(0, -dotted[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = ip.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let n = 0n;
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    n = (n << 16n) | BigInt(Number.parseInt(g, 16));
  }
  return n;
}

function inRange(value: bigint, base: bigint, prefix: number, bits: number): boolean {
  const shift = BigInt(bits - prefix);
  return value >> shift === base >> shift;
}

function v4Blocked(n: bigint): string | undefined {
  for (const [base, prefix, name] of V4_RANGES) {
    if (inRange(n, v4ToBigInt(base) ?? 0n, prefix, 32)) return name;
  }
  return undefined;
}

/**
 * The name of the blocked range `ip` falls in, or undefined for a public address (or not an IP).
 * IPv6 forms that carry an IPv4 address (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64
 * 64:ff9b::/96, 6to4 2002::/16) are judged by that IPv4 address.
 */
export function blockedRange(ip: string): string | undefined {
  const family = isIP(ip.split('%')[0] ?? '');
  if (family === 4) {
    const n = v4ToBigInt(ip);
    return n === undefined ? undefined : v4Blocked(n);
  }
  const n = v6ToBigInt(ip);
  if (n === undefined) return family === 6 ? 'unparsable IPv6' : undefined;
  const low32 = n & 0xffffffffn;
  if (n >> 32n === 0xffffn) return v4Blocked(low32) ?? undefined; // ::ffff:a.b.c.d
  if (n >> 32n === 0n && n > 1n) return v4Blocked(low32) ?? undefined; // ::a.b.c.d (deprecated)
  if (n >> 32n === 0x0064ff9b0000000000000000n) return v4Blocked(low32); // NAT64
  if (n >> 112n === 0x2002n) return v4Blocked((n >> 80n) & 0xffffffffn); // 6to4
  for (const [base, prefix, name] of V6_RANGES) {
    if (inRange(n, v6ToBigInt(base) ?? 0n, prefix, 128)) return name;
  }
  return undefined;
}

/**
 * Resolves `host` and checks every address it has (one bad address refuses the name: a resolver
 * answering both a public and a private address must not be trusted with the choice).
 */
export async function resolveMailHost(host: string, policy: MailHostPolicy): Promise<ResolvedAddress[]> {
  const literal = isIP(host);
  const addresses: ResolvedAddress[] = literal
    ? [{ address: host, family: literal === 6 ? 6 : 4 }]
    : await (policy.resolve ?? systemResolve)(host);
  if (addresses.length === 0) {
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', hostname: host });
  }
  if (!policy.allowPrivate) {
    for (const a of addresses) {
      const range = blockedRange(a.address);
      if (range) throw new MailHostRefusedError(host, a.address, range);
    }
  }
  return addresses;
}

/**
 * net.connect skips `lookup` for an IP literal, so literals are checked here, before connecting.
 */
export function refuseBlockedLiteral(host: string, policy: MailHostPolicy): void {
  if (policy.allowPrivate || !isIP(host)) return;
  const range = blockedRange(host);
  if (range) throw new MailHostRefusedError(host, host, range);
}

/**
 * A `lookup` for net.connect / tls.connect that resolves through the policy: the socket connects
 * to exactly the addresses that were checked (no second lookup).
 */
export function guardedLookup(policy: MailHostPolicy): LookupFunction {
  return (hostname, options, callback) => {
    resolveMailHost(hostname, policy).then(
      (addresses) => {
        const wanted = options.family === 4 || options.family === 6 ? options.family : undefined;
        const fit = wanted ? addresses.filter((a) => a.family === wanted) : addresses;
        if (options.all) return callback(null, fit);
        const first = fit[0];
        if (!first) {
          const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
          return callback(error as NodeJS.ErrnoException, '', 4);
        }
        callback(null, first.address, first.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, '', 4),
    );
  };
}

/** The policy from the function's configuration (lib/config.ts reads ALLOW_PRIVATE_MAIL_HOSTS). */
export function mailHostPolicy(
  config: { allowPrivateMailHosts: boolean },
  resolve?: Resolve,
): MailHostPolicy {
  return { allowPrivate: config.allowPrivateMailHosts, ...(resolve ? { resolve } : {}) };
}
