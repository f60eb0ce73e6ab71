/**
 * Input validation for every route: the edge (lib/http/api.ts) validates params, query and body
 * with `check`. Every failure names the field and reads as a sentence a
 * person can act on: schema-level messages win, and the fallback map below replaces zod's defaults
 * ("Invalid input: expected string, received undefined") with plain ones. Objects are strict, so a
 * typo such as `pasword` is refused instead of silently dropped.
 */
import type { z } from 'zod';
import { type FieldIssue, ValidationError } from '#lib/domain/errors';

/** Fields the server sets; a client that sends them back gets told so. */
const READ_ONLY = new Set([
  'createdAt',
  'updatedAt',
  'passwordSet',
  'passwordRef',
  'mergeFields',
  'verification',
]);

const TYPE_WORDS: Record<string, string> = {
  string: 'must be text',
  number: 'must be a number',
  int: 'must be a whole number',
  boolean: 'must be true or false',
  object: 'must be a JSON object',
  array: 'must be a list (JSON array)',
};

function list(values: readonly unknown[]): string {
  return values.map((v) => (typeof v === 'string' ? `"${v}"` : String(v))).join(', ');
}

/** Edit distance, for "did you mean" on unknown fields. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] as number;
      row[j] = Math.min(above + 1, (row[j - 1] as number) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] as number;
}

function unknownFieldMessage(key: string, known: string[]): string {
  if (READ_ONLY.has(key)) return 'is read-only (the server sets it); leave it out.';
  const close = known
    .map((k) => ({ k, d: distance(key.toLowerCase(), k.toLowerCase()) }))
    .filter((c) => c.d <= 2)
    .sort((x, y) => x.d - y.d)[0];
  const hint = close
    ? ` Did you mean "${close.k}"?`
    : known.length > 0
      ? ` Known fields: ${known.join(', ')}.`
      : '';
  return `is not a field here; unknown fields are refused so that a typo never drops a value.${hint}`;
}

/** Messages per unknown key, noted by the error map where the schema's known keys are at hand. */
type UnknownKeyNotes = Map<string, Record<string, string>>;

const noteKey = (path: readonly PropertyKey[], keys: readonly string[]) =>
  `${path.map(String).join('.')}|${keys.join(',')}`;

/** Fallback messages, used only where a schema did not set its own. */
function fallback(notes: UnknownKeyNotes): z.core.$ZodErrorMap {
  return (iss) => {
    switch (iss.code) {
      case 'invalid_type':
        if (iss.input === undefined) return 'is required.';
        if (iss.input === null) return 'must not be null; leave the field out instead.';
        return `${TYPE_WORDS[iss.expected] ?? `must be of type ${iss.expected}`}.`;
      case 'too_small':
        if (iss.origin === 'string')
          return Number(iss.minimum) <= 1
            ? 'must not be empty.'
            : `must be at least ${iss.minimum} characters long.`;
        if (iss.origin === 'array') return `must have at least ${iss.minimum} item(s).`;
        return `must be at least ${iss.minimum}.`;
      case 'too_big':
        if (iss.origin === 'string') return `must be at most ${iss.maximum} characters long.`;
        if (iss.origin === 'array') return `must have at most ${iss.maximum} items.`;
        return `must be at most ${iss.maximum}.`;
      case 'invalid_format':
        if (iss.format === 'email') return 'must be an email address such as name@example.com.';
        if (iss.format === 'date') return 'must be a date written YYYY-MM-DD, e.g. 2026-01-31.';
        return `is not in the expected format (${iss.format}).`;
      case 'invalid_value':
        return `must be one of: ${list(iss.values)}.`;
      case 'invalid_union': {
        const options = (iss as { options?: unknown[] }).options;
        return options ? `must be one of: ${list(options)}.` : 'does not match any accepted form.';
      }
      case 'unrecognized_keys': {
        // One issue carries every unknown key; the known keys are only here, so note a message per
        // key for `toIssues` and answer a plain sentence.
        const shape = (iss.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod
          ?.def?.shape;
        const known = Object.keys(shape ?? {});
        notes.set(
          noteKey(iss.path ?? [], iss.keys),
          Object.fromEntries(iss.keys.map((k) => [k, unknownFieldMessage(k, known)])),
        );
        return `has unknown fields: ${iss.keys.join(', ')}.`;
      }
      default:
        return undefined;
    }
  };
}

function dotted(prefix: string, path: readonly PropertyKey[]): string {
  return [prefix, ...path.map(String)].filter(Boolean).join('.');
}

/** zod issues → field issues, one per unknown key. */
export function toIssues(error: z.ZodError, prefix = '', notes: UnknownKeyNotes = new Map()): FieldIssue[] {
  return error.issues.flatMap((i): FieldIssue[] => {
    if (i.code === 'unrecognized_keys') {
      const perKey = notes.get(noteKey(i.path, i.keys)) ?? {};
      return i.keys.map((key) => ({
        field: dotted(prefix, [...i.path, key]),
        message: perKey[key] ?? unknownFieldMessage(key, []),
      }));
    }
    return [{ field: dotted(prefix, i.path) || '(body)', message: i.message }];
  });
}

/** Field issues of `value` against `schema` (empty when it fits), with the parsed value. */
export function check<S extends z.ZodType>(
  schema: S,
  value: unknown,
  prefix = '',
): { ok: true; data: z.output<S> } | { ok: false; issues: FieldIssue[] } {
  const notes: UnknownKeyNotes = new Map();
  const result = schema.safeParse(value, { error: fallback(notes) });
  return result.success
    ? { ok: true, data: result.data }
    : { ok: false, issues: toIssues(result.error, prefix, notes) };
}

/** Parses `value`, throwing a ValidationError that names every bad field. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.output<S> {
  const result = check(schema, value, prefix);
  if (!result.ok) throw new ValidationError(result.issues);
  return result.data;
}

/**
 * C0 controls (CR, LF, NUL, tab, ESC, …), DEL, NEL and the Unicode line separators: never part of
 * a name, a title or a log-on name, and what header and protocol injection is made of.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
export const CONTROL_CHARACTERS = /[\x00-\x1f\x7f\u0085\u2028\u2029]/;
export const ONE_LINE_MESSAGE =
  'must be one line of plain text: no line breaks, tabs, NUL or other control characters.';

/** `schema` refusing control characters, naming the field (400). */
export function oneLine<S extends z.ZodString>(schema: S): S {
  return schema.refine((v) => !CONTROL_CHARACTERS.test(v), { error: ONE_LINE_MESSAGE }) as S;
}

/** Collects cross-field and reference problems so one answer lists all of them. */
export class Issues {
  readonly list: FieldIssue[] = [];
  add(field: string, message: string): this {
    this.list.push({ field, message });
    return this;
  }
  throwIfAny(): void {
    if (this.list.length > 0) throw new ValidationError(this.list);
  }
}
