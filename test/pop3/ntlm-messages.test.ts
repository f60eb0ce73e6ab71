// @vitest-environment node
import { describe, expect, it } from 'vitest';
import { md4 } from '#lib/auth-mech/md4';
import {
  authenticateMessage,
  isForeignDomain,
  negotiateMessage,
  ntHash,
  ntowfv2,
  parseChallenge,
  splitDomainUser,
} from '#lib/auth-mech/ntlm';
import { xoauth2Response } from '#lib/auth-mech/xoauth2';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** [MS-NLMP] 4.2.4: the NTLMv2 example's inputs. */
const EXAMPLE = {
  domain: 'Domain',
  userName: 'User',
  password: 'Password',
  serverChallenge: hex('0123456789abcdef'),
  clientChallenge: hex('aaaaaaaaaaaaaaaa'),
  timestamp: Buffer.alloc(8),
  // MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server", MsvAvEOL
  targetInfo: hex('02000c0044006f006d00610069006e0001000c0053006500720076006500720000000000'),
};

/** A CHALLENGE message around the example's challenge and target information. */
function exampleChallenge(flags = 0x00000001 | 0x00000200 | 0x00010000 | 0x00800000): Buffer {
  const name = Buffer.from('Domain', 'utf16le');
  const header = Buffer.alloc(48);
  header.write('NTLMSSP\0', 0, 'latin1');
  header.writeUInt32LE(2, 8);
  header.writeUInt16LE(name.length, 12);
  header.writeUInt16LE(name.length, 14);
  header.writeUInt32LE(48, 16);
  header.writeUInt32LE(flags >>> 0, 20);
  EXAMPLE.serverChallenge.copy(header, 24);
  header.writeUInt16LE(EXAMPLE.targetInfo.length, 40);
  header.writeUInt16LE(EXAMPLE.targetInfo.length, 42);
  header.writeUInt32LE(48 + name.length, 44);
  return Buffer.concat([header, name, EXAMPLE.targetInfo]);
}

/** Reads a field (length, offset) of an AUTHENTICATE message. */
function field(message: Buffer, at: number): Buffer {
  return message.subarray(
    message.readUInt32LE(at + 4),
    message.readUInt32LE(at + 4) + message.readUInt16LE(at),
  );
}

describe('MD4, which the NT hash needs and OpenSSL 3 no longer gives Node', () => {
  it.each([
    ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
    ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
    ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
    ['message digest', 'd9130a8164549fe818874806e1c7014b'],
    ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
    [
      '12345678901234567890123456789012345678901234567890123456789012345678901234567890',
      'e33b4ddc9c38f2199c3e7b164fcc0536',
    ],
  ])('hashes %j as RFC 1320 says', (input, digest) => {
    // Act
    const result = md4(Buffer.from(input, 'latin1')).toString('hex');
    // Assess
    expect(result).toBe(digest);
  });
});

describe('NTLMv2 as [MS-NLMP] 4.2.4 computes it', () => {
  it('derives the NT hash and NTOWFv2 of the example account', () => {
    // Act
    const nt = ntHash(EXAMPLE.password);
    const v2 = ntowfv2(EXAMPLE.password, EXAMPLE.userName, EXAMPLE.domain);
    // Assess
    expect(nt.toString('hex')).toBe('a4f49c406510bdcab6824ee7c30fd852');
    expect(v2.toString('hex')).toBe('0c868a403bfd7a93a3001ef22ef02e3f');
  });

  it('answers the example challenge with its NTProofStr and LMv2 response', () => {
    // Prepare
    const challenge = parseChallenge(exampleChallenge());
    // Act
    const message = authenticateMessage(challenge, EXAMPLE, {
      clientChallenge: EXAMPLE.clientChallenge,
      timestamp: EXAMPLE.timestamp,
    });
    // Assess
    const nt = field(message, 20);
    expect(nt.subarray(0, 16).toString('hex')).toBe('68cd0ab851e51c96aabc927bebef6a1c');
    expect(field(message, 12).toString('hex')).toBe('86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa');
    expect(field(message, 28).toString('utf16le')).toBe('Domain');
    expect(field(message, 36).toString('utf16le')).toBe('User');
  });

  it('reads the domains a server announces, and tells a box in another domain', () => {
    // Act
    const challenge = parseChallenge(exampleChallenge());
    // Assess
    expect(challenge.domains).toEqual(['Domain']);
    expect(isForeignDomain(challenge, 'DOMAIN')).toBe(false);
    expect(isForeignDomain(challenge, 'OTHER')).toBe(true);
  });

  it('never says "another domain" when the server announces none (a standalone server)', () => {
    // Prepare: target type server, no domain in the target information
    const challenge = parseChallenge(exampleChallenge(0x00000001 | 0x00000200 | 0x00020000));
    // Act
    const foreign = isForeignDomain(challenge, 'ANYTHING');
    // Assess
    expect(challenge.domains).toEqual([]);
    expect(foreign).toBe(false);
  });

  it('sends zeros as the LMv2 response when the server gave a timestamp', () => {
    // Prepare: the example's target information plus MsvAvTimestamp
    const info = Buffer.concat([
      EXAMPLE.targetInfo.subarray(0, -4),
      hex('07000800'),
      Buffer.alloc(8, 1),
      hex('00000000'),
    ]);
    const raw = exampleChallenge();
    const withStamp = Buffer.concat([raw.subarray(0, raw.length - EXAMPLE.targetInfo.length), info]);
    withStamp.writeUInt16LE(info.length, 40);
    withStamp.writeUInt16LE(info.length, 42);
    // Act
    const message = authenticateMessage(parseChallenge(withStamp), EXAMPLE);
    // Assess
    expect(field(message, 12)).toEqual(Buffer.alloc(24));
    expect(field(message, 20).subarray(24, 32)).toEqual(Buffer.alloc(8, 1)); // the server's time in the blob
  });

  it('refuses a message that is not a challenge', () => {
    // Act
    const attempt = () => parseChallenge(negotiateMessage());
    // Assess
    expect(attempt).toThrow(/not answer with an NTLM challenge/);
  });

  it('splits a DOMAIN\\user name when no domain is given, and leaves other names alone', () => {
    // Act
    const split = splitDomainUser('', 'CORP\\ana');
    const kept = splitDomainUser('CORP', 'ana@corp.example');
    // Assess
    expect(split).toEqual({ domain: 'CORP', userName: 'ana' });
    expect(kept).toEqual({ domain: 'CORP', userName: 'ana@corp.example' });
  });
});

describe('the XOAUTH2 initial response', () => {
  it('is user, ^A, auth=Bearer token, ^A^A, in base64', () => {
    // Act
    const response = xoauth2Response('sales@lumen.test', 'ya29.token');
    // Assess
    expect(Buffer.from(response, 'base64').toString()).toBe(
      'user=sales@lumen.test\x01auth=Bearer ya29.token\x01\x01',
    );
  });

  it('refuses a token with a line break, which would end the response early', () => {
    // Act
    const attempt = () => xoauth2Response('sales@lumen.test', 'ya29\r\nQUIT');
    // Assess
    expect(attempt).toThrow(RangeError);
  });
});
