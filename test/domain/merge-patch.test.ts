import { describe, expect, it } from 'vitest';
import { applyMergePatch } from '#lib/domain/merge-patch';

/** RFC 7396, Appendix A: original, patch, result. */
const appendixA: [unknown, unknown, unknown][] = [
  [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
  [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
  [{ a: 'b' }, { a: null }, {}],
  [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
  [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
  [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
  [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
  [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
  [
    ['a', 'b'],
    ['c', 'd'],
    ['c', 'd'],
  ],
  [{ a: 'b' }, ['c'], ['c']],
  [{ a: 'foo' }, null, null],
  [{ a: 'foo' }, 'bar', 'bar'],
  [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  [[1, 2], { a: 'b', c: null }, { a: 'b' }],
  [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
];

describe('applyMergePatch', () => {
  it.each(appendixA)(
    'gives the RFC 7396 appendix result for %j patched with %j',
    (original, patch, result) => {
      // Act
      const out = applyMergePatch(original, patch);
      // Assess
      expect(out).toEqual(result);
    },
  );

  it('merges the RFC 7396 section 3 example, a nested object at a time', () => {
    // Prepare
    const target = {
      title: 'Goodbye!',
      author: { givenName: 'John', familyName: 'Doe' },
      tags: ['example', 'sample'],
      content: 'This will be unchanged',
    };
    const patch = {
      title: 'Hello!',
      phoneNumber: '+01-123-456-7890',
      author: { familyName: null },
      tags: ['example'],
    };
    // Act
    const out = applyMergePatch(target, patch);
    // Assess
    expect(out).toEqual({
      title: 'Hello!',
      author: { givenName: 'John' },
      tags: ['example'],
      content: 'This will be unchanged',
      phoneNumber: '+01-123-456-7890',
    });
  });

  it('changes neither the target nor the patch', () => {
    // Prepare
    const target = { a: { b: 1 }, c: [1] };
    const patch = { a: { b: 2, d: { e: 3 } }, c: null };
    const before = structuredClone({ target, patch });
    // Act
    applyMergePatch(target, patch);
    // Assess
    expect({ target, patch }).toEqual(before);
  });
});

describe('applyMergePatch on hostile members', () => {
  it('keeps a "__proto__" member as data instead of changing the prototype', () => {
    // Prepare
    const patch = JSON.parse('{"__proto__": {"isAdmin": true}}');
    // Act
    const out = applyMergePatch({}, patch) as Record<string, unknown>;
    // Assess
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect((out as { isAdmin?: boolean }).isAdmin).toBeUndefined();
    expect(Object.keys(out)).toEqual(['__proto__']);
  });
});
