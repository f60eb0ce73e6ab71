// A stand-in for Samba's `ntlm_auth --helper-protocol=squid-2.5-ntlmssp` (what Dovecot's NTLM
// talks to; Dovecot 2.3.17+ has no NTLM of its own), playing a domain controller of one domain:
// it issues CHALLENGE messages as Active Directory does (target = the domain, with NetBIOS and DNS
// names and a timestamp) and accepts an AUTHENTICATE only with an NTLMv2 response computed from
// the account's NT hash, its user name and the right domain. NTLMv1 is refused.
// Usage (started by Dovecot through a wrapper): ntlm-helper.mjs <hash-dir> <DOMAIN>; reads
// `YR <base64>` / `KK <base64>` lines on stdin and answers `TT <base64>`, `AF <user>` or `NA <why>`.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const [hashDir, domain] = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const dnsDomain = `${domain.toLowerCase()}.test`;
const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');
let serverChallenge;

const wide = (text) => Buffer.from(text, 'utf16le');
const hmac = (key, data) => createHmac('md5', key).update(data).digest();
const av = (id, value) => {
  const head = Buffer.alloc(4);
  head.writeUInt16LE(id, 0);
  head.writeUInt16LE(value.length, 2);
  return Buffer.concat([head, value]);
};

function challengeMessage() {
  serverChallenge = randomBytes(8);
  const stamp = Buffer.alloc(8);
  stamp.writeBigUInt64LE((BigInt(Date.now()) + 11_644_473_600_000n) * 10_000n);
  const targetName = wide(domain);
  const targetInfo = Buffer.concat([
    av(2, wide(domain)),
    av(1, wide('MAIL')),
    av(4, wide(dnsDomain)),
    av(3, wide(`mail.${dnsDomain}`)),
    av(7, stamp),
    av(0, Buffer.alloc(0)),
  ]);
  const header = Buffer.alloc(48);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(2, 8);
  header.writeUInt16LE(targetName.length, 12);
  header.writeUInt16LE(targetName.length, 14);
  header.writeUInt32LE(48, 16);
  // UNICODE | REQUEST_TARGET | NTLM | TARGET_TYPE_DOMAIN | EXTENDED_SESSIONSECURITY | TARGET_INFO
  header.writeUInt32LE(0x00000001 | 0x00000004 | 0x00000200 | 0x00010000 | 0x00080000 | 0x00800000, 20);
  serverChallenge.copy(header, 24);
  header.writeUInt16LE(targetInfo.length, 40);
  header.writeUInt16LE(targetInfo.length, 42);
  header.writeUInt32LE(48 + targetName.length, 44);
  return Buffer.concat([header, targetName, targetInfo]);
}

/** The account name when the AUTHENTICATE message proves the password, else why not. */
function verify(message) {
  if (!serverChallenge) return { why: 'NT_STATUS_INVALID_PARAMETER' };
  if (message.length < 64 || !message.subarray(0, 8).equals(SIGNATURE) || message.readUInt32LE(8) !== 3)
    return { why: 'NT_STATUS_INVALID_PARAMETER' };
  const field = (at) => {
    const length = message.readUInt16LE(at);
    const offset = message.readUInt32LE(at + 4);
    return message.subarray(offset, offset + length);
  };
  const nt = field(20);
  const userDomain = field(28).toString('utf16le');
  const user = field(36).toString('utf16le');
  if (nt.length <= 24) return { why: 'NT_STATUS_WRONG_PASSWORD' }; // NTLMv1: refused
  const known = [domain.toLowerCase(), dnsDomain];
  if (!known.includes(userDomain.toLowerCase())) return { why: 'NT_STATUS_NO_SUCH_DOMAIN' };
  let hash;
  try {
    hash = Buffer.from(readFileSync(join(hashDir, user.toLowerCase()), 'utf8').trim(), 'hex');
  } catch {
    return { why: 'NT_STATUS_NO_SUCH_USER' };
  }
  const key = hmac(hash, wide(user.toUpperCase() + userDomain));
  const blob = nt.subarray(16);
  const expected = hmac(key, Buffer.concat([serverChallenge, blob]));
  serverChallenge = undefined; // one AUTHENTICATE per CHALLENGE
  if (!timingSafeEqual(expected, nt.subarray(0, 16))) return { why: 'NT_STATUS_WRONG_PASSWORD' };
  return { user: user.toLowerCase() };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [verb, data = ''] = line.trim().split(/\s+/);
  try {
    if (verb === 'YR') process.stdout.write(`TT ${challengeMessage().toString('base64')}\n`);
    else if (verb === 'KK') {
      const result = verify(Buffer.from(data, 'base64'));
      process.stdout.write(result.user ? `AF ${result.user}\n` : `NA ${result.why}\n`);
    } else process.stdout.write('BH unknown request\n');
  } catch (error) {
    process.stdout.write(`BH ${String(error).replace(/\s+/g, '_')}\n`);
  }
});
