import { describe, expect, it } from 'vitest';
import { addressKey, isMailbox, withUnicodeDomain } from '#lib/domain/addresses';

describe('internationalised addresses (RFC 6531)', () => {
  it('compare equal however the domain, the case and the accents are spelt', () => {
    // Prepare
    const spellings = [
      'josé@bücher.de',
      'JOSÉ@BÜCHER.DE',
      'jose\u0301@xn--bcher-kva.de',
      ' José@XN--BCHER-KVA.de ',
    ];
    // Act
    const keys = new Set(spellings.map(addressKey));
    // Assess
    expect([...keys]).toEqual(['josé@bücher.de']);
    expect(addressKey('Ana@Client.Test')).toBe('ana@client.test');
  });

  it('take UTF-8 local parts and IDN domains as mailboxes, and refuse what is not one', () => {
    // Prepare
    const good = ['anna@müller.de', '用户@例子.广告', 'zoë.o+tag@xn--bcher-kva.de', 'a@b.test'];
    const bad = [
      'anna@',
      '@müller.de',
      'an na@x.test',
      'a..b@x.test',
      'a@nodot',
      'a@-x.test',
      `${'é'.repeat(40)}@x.test`,
    ];
    // Act
    const verdicts = [...good, ...bad].map(isMailbox);
    // Assess
    expect(verdicts).toEqual([...good.map(() => true), ...bad.map(() => false)]);
    expect(withUnicodeDomain('JOSÉ@XN--BCHER-KVA.DE')).toBe('JOSÉ@bücher.de');
  });
});
