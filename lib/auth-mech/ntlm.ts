/**
 * NTLM messages for SASL `AUTH NTLM` ("SPA" in mail clients), client side, NTLMv2 only
 * ([MS-NLMP]): a NEGOTIATE message, the server's CHALLENGE parsed, and the AUTHENTICATE message
 * with the NTLMv2 response. NTLMv1 and LM are not offered: they are crackable from a capture and
 * Exchange refuses them by default. No signing or sealing: the mail session runs inside TLS.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { md4 } from './md4.ts';

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');

/** [MS-NLMP] 2.2.2.5 flags this client uses or reads. */
export const NtlmFlag = {
  UNICODE: 0x00000001,
  REQUEST_TARGET: 0x00000004,
  NTLM: 0x00000200,
  ALWAYS_SIGN: 0x00008000,
  TARGET_TYPE_DOMAIN: 0x00010000,
  TARGET_TYPE_SERVER: 0x00020000,
  EXTENDED_SESSIONSECURITY: 0x00080000,
  TARGET_INFO: 0x00800000,
  N128: 0x20000000,
  N56: 0x80000000,
} as const;

/** AV pair ids of the CHALLENGE's target information ([MS-NLMP] 2.2.2.1). */
const AV = { EOL: 0, NB_COMPUTER: 1, NB_DOMAIN: 2, DNS_COMPUTER: 3, DNS_DOMAIN: 4, TIMESTAMP: 7 } as const;

/** A CHALLENGE (or any server message) this client cannot use. */
export class NtlmError extends Error {
  override readonly name = 'NtlmError';
}

export interface NtlmCredentials {
  /** The Windows (NetBIOS or DNS) domain of the account; empty for a UPN user name. */
  readonly domain: string;
  readonly userName: string;
  readonly password: string;
  /** The name this machine gives itself; optional in NTLM and empty by default. */
  readonly workstation?: string;
}

export interface NtlmChallenge {
  readonly flags: number;
  readonly serverChallenge: Buffer;
  readonly targetName: string;
  /** The raw AV pairs, echoed inside the NTLMv2 response. */
  readonly targetInfo: Buffer;
  /** Domain names the server announced (NetBIOS and DNS): tells a wrong Domain setting apart. */
  readonly domains: readonly string[];
  /** The server's FILETIME, when it sent one (then the LMv2 response must be zeros). */
  readonly timestamp: Buffer | undefined;
}

const NEGOTIATE_FLAGS =
  NtlmFlag.UNICODE |
  NtlmFlag.REQUEST_TARGET |
  NtlmFlag.NTLM |
  NtlmFlag.ALWAYS_SIGN |
  NtlmFlag.EXTENDED_SESSIONSECURITY |
  NtlmFlag.N128 |
  NtlmFlag.N56;

/** NEGOTIATE_MESSAGE (type 1) without domain or workstation (those go in AUTHENTICATE). */
export function negotiateMessage(): Buffer {
  const message = Buffer.alloc(32);
  SIGNATURE.copy(message, 0);
  message.writeUInt32LE(1, 8);
  message.writeUInt32LE(NEGOTIATE_FLAGS >>> 0, 12);
  // Empty domain and workstation fields: length 0 at the end of the header.
  message.writeUInt32LE(32, 20);
  message.writeUInt32LE(32, 28);
  return message;
}

/** Reads a CHALLENGE_MESSAGE (type 2); throws NtlmError for anything else. */
export function parseChallenge(message: Buffer): NtlmChallenge {
  if (message.length < 32 || !message.subarray(0, 8).equals(SIGNATURE) || message.readUInt32LE(8) !== 2)
    throw new NtlmError('The server did not answer with an NTLM challenge');
  const flags = message.readUInt32LE(20);
  const unicode = (flags & NtlmFlag.UNICODE) !== 0;
  const field = (at: number): Buffer => {
    if (message.length < at + 8) return Buffer.alloc(0);
    const length = message.readUInt16LE(at);
    const offset = message.readUInt32LE(at + 4);
    if (offset + length > message.length) throw new NtlmError('The NTLM challenge is truncated');
    return message.subarray(offset, offset + length);
  };
  const text = (bytes: Buffer, wide: boolean) => bytes.toString(wide ? 'utf16le' : 'latin1');
  const targetName = text(field(12), unicode);
  const targetInfo = (flags & NtlmFlag.TARGET_INFO) !== 0 ? field(40) : Buffer.alloc(0);
  const domains = new Set<string>();
  if (flags & NtlmFlag.TARGET_TYPE_DOMAIN && targetName) domains.add(targetName);
  let timestamp: Buffer | undefined;
  for (let at = 0; at + 4 <= targetInfo.length; ) {
    const id = targetInfo.readUInt16LE(at);
    const length = targetInfo.readUInt16LE(at + 2);
    const value = targetInfo.subarray(at + 4, at + 4 + length);
    if (id === AV.EOL) break;
    if (id === AV.NB_DOMAIN || id === AV.DNS_DOMAIN) domains.add(text(value, true));
    if (id === AV.TIMESTAMP && length === 8) timestamp = Buffer.from(value);
    at += 4 + length;
  }
  return {
    flags,
    serverChallenge: Buffer.from(message.subarray(24, 32)),
    targetName,
    targetInfo: Buffer.from(targetInfo),
    domains: [...domains],
    timestamp,
  };
}

/** NTOWFv1: MD4 of the UTF-16LE password (the "NT hash"). */
export function ntHash(password: string): Buffer {
  return md4(Buffer.from(password, 'utf16le'));
}

/** NTOWFv2: HMAC-MD5 keyed with the NT hash over UPPER(user) + domain (the domain as given). */
export function ntowfv2(password: string, userName: string, domain: string): Buffer {
  return hmac(ntHash(password), Buffer.from(userName.toUpperCase() + domain, 'utf16le'));
}

export interface AuthenticateOptions {
  /** 8 random bytes by default; fixed only by tests against [MS-NLMP]'s examples. */
  readonly clientChallenge?: Buffer;
  /** FILETIME (8 bytes LE); default the server's timestamp, else now. */
  readonly timestamp?: Buffer;
}

/** AUTHENTICATE_MESSAGE (type 3) with the NTLMv2 and LMv2 responses. */
export function authenticateMessage(
  challenge: NtlmChallenge,
  credentials: NtlmCredentials,
  options: AuthenticateOptions = {},
): Buffer {
  if ((challenge.flags & NtlmFlag.UNICODE) === 0)
    throw new NtlmError('The server offers NTLM without Unicode, which this client does not speak');
  const clientChallenge = options.clientChallenge ?? randomBytes(8);
  const timestamp = options.timestamp ?? challenge.timestamp ?? filetime(Date.now());
  const key = ntowfv2(credentials.password, credentials.userName, credentials.domain);
  const blob = Buffer.concat([
    Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]),
    timestamp,
    clientChallenge,
    Buffer.alloc(4),
    challenge.targetInfo,
    Buffer.alloc(4),
  ]);
  const proof = hmac(key, Buffer.concat([challenge.serverChallenge, blob]));
  const nt = Buffer.concat([proof, blob]);
  // With a server timestamp the LMv2 response is sent as zeros ([MS-NLMP] 3.1.5.1.2).
  const lm = challenge.timestamp
    ? Buffer.alloc(24)
    : Buffer.concat([
        hmac(key, Buffer.concat([challenge.serverChallenge, clientChallenge])),
        clientChallenge,
      ]);

  const payload: Buffer[] = [];
  const HEADER = 64;
  let offset = HEADER;
  const header = Buffer.alloc(HEADER);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(3, 8);
  const put = (at: number, bytes: Buffer) => {
    header.writeUInt16LE(bytes.length, at);
    header.writeUInt16LE(bytes.length, at + 2);
    // An empty field still points inside the message: some servers (Dovecot) check every offset.
    header.writeUInt32LE(bytes.length === 0 ? HEADER : offset, at + 4);
    payload.push(bytes);
    offset += bytes.length;
  };
  put(12, lm);
  put(20, nt);
  put(28, Buffer.from(credentials.domain, 'utf16le'));
  put(36, Buffer.from(credentials.userName, 'utf16le'));
  put(44, Buffer.from(credentials.workstation ?? '', 'utf16le'));
  put(52, Buffer.alloc(0)); // no session key: no signing or sealing is negotiated
  const flags = (challenge.flags & NEGOTIATE_FLAGS) | NtlmFlag.UNICODE | NtlmFlag.NTLM;
  header.writeUInt32LE(flags >>> 0, 60);
  return Buffer.concat([header, ...payload]);
}

/**
 * A `DOMAIN\user` user name split into its parts; any other name is returned with `domain` as
 * given. Lets a box set up the Windows way work without moving the domain into its own field.
 */
export function splitDomainUser(domain: string, userName: string): { domain: string; userName: string } {
  const slash = userName.indexOf('\\');
  if (slash <= 0 || domain) return { domain, userName };
  return { domain: userName.slice(0, slash), userName: userName.slice(slash + 1) };
}

/** Did the server announce domains, none of them `domain`? (NetBIOS or DNS name, any case.) */
export function isForeignDomain(challenge: NtlmChallenge, domain: string): boolean {
  if (challenge.domains.length === 0) return false;
  const wanted = domain.trim().toLowerCase();
  return !challenge.domains.some((known) => known.toLowerCase() === wanted);
}

function hmac(key: Buffer, data: Buffer): Buffer {
  return createHmac('md5', key).update(data).digest();
}

/** Milliseconds since 1970 as a Windows FILETIME: 100 ns ticks since 1601, little-endian. */
function filetime(ms: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE((BigInt(ms) + 11_644_473_600_000n) * 10_000n);
  return out;
}
