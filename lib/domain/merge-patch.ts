/**
 * JSON Merge Patch (RFC 7396): a patch object names only what changes; `null` removes a member;
 * any other value replaces it (objects are merged member by member, arrays replaced whole). Pure.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The RFC's MergePatch(Target, Patch), without changing either argument. A patch that is not an
 * object replaces the target entirely (RFC 7396 §2).
 */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    // defineProperty: a `__proto__` member is data, never the prototype of the result.
    else
      Object.defineProperty(result, key, {
        value: applyMergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value),
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return result;
}
