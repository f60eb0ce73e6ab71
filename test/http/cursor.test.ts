import { describe, expect, it } from 'vitest';
import { ValidationError } from '#lib/domain/errors';
import { CursorCodec, listOf, MAX_CURSOR_LENGTH } from '#lib/http/cursor';

const KEY = 'a cursor key for the tests, long enough';
const binding = { studioId: 'studio-1', list: listOf('GET /clients', {}, { limit: 10 }) };
const inner = Buffer.from(JSON.stringify({ PK: 'ST#studio-1', SK: 'CLIENT#c-1' })).toString('base64url');

/** The field a refusal names. */
function refusal(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) return error.issues.map((i) => i.field).join();
    throw error;
  }
  return undefined;
}

describe('paging cursors', () => {
  it('opens what it sealed for the same list, and shows nothing of the key inside', () => {
    // Prepare
    const codec = new CursorCodec(KEY);
    // Act
    const sealed = codec.seal(inner, binding);
    // Assess
    expect(codec.open(sealed, binding)).toBe(inner);
    expect(Buffer.from(sealed, 'base64url').toString('latin1')).not.toMatch(/ST#|CLIENT|studio-1/);
    expect(sealed).not.toContain(inner);
  });

  it('binds to the studio, the route, the path and the filters, but not to the page size', () => {
    // Prepare
    const codec = new CursorCodec(KEY);
    const sealed = codec.seal(inner, binding);
    // Act
    const others = [
      { ...binding, studioId: 'studio-2' },
      { ...binding, list: listOf('GET /signatures', {}, {}) },
      { ...binding, list: listOf('GET /clients', { id: 'x' }, {}) },
      { ...binding, list: listOf('GET /clients', {}, { state: 'quarantined' }) },
    ];
    // Assess
    for (const other of others) expect(refusal(() => codec.open(sealed, other))).toBe('cursor');
    const samePage = { ...binding, list: listOf('GET /clients', {}, { limit: 99, cursor: 'x' }) };
    expect(codec.open(sealed, samePage)).toBe(inner);
  });

  it('refuses a cursor sealed with another key, altered, truncated, or too long', () => {
    // Prepare
    const codec = new CursorCodec(KEY);
    const sealed = codec.seal(inner, binding);
    const flipped = `${sealed.slice(0, 10)}${sealed[10] === 'A' ? 'B' : 'A'}${sealed.slice(11)}`;
    // Act
    const cases = [
      new CursorCodec('another key of the same length!!').seal(inner, binding),
      flipped,
      sealed.slice(0, 20),
      inner,
      '',
      'not base64!',
      'A'.repeat(MAX_CURSOR_LENGTH + 1),
    ];
    // Assess
    for (const c of cases)
      expect(
        refusal(() => codec.open(c, binding)),
        c.slice(0, 30),
      ).toBe('cursor');
  });

  it('refuses a key too short to be a secret', () => {
    expect(() => new CursorCodec('short')).toThrow(/at least 16/);
  });
});
