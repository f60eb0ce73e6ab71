/**
 * Input validation for the settings API. Every failure names the field and reads as a sentence a
 * person can act on: schema-level messages win, and the fallback map below replaces zod's defaults
 * ("Invalid input: expected string, received undefined") with plain ones. Objects are strict, so a
 * typo such as `pasword` is refused instead of silently dropped.
 */
import * as z from 'zod';
import { isValidTimeZone } from '#lib/domain/cron';
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
  const hint = close ? ` Did you mean "${close.k}"?` : ` Known fields: ${known.join(', ')}.`;
  return `is not a field here; unknown fields are refused so that a typo never drops a value.${hint}`;
}

/** Fallback messages, used only where a schema did not set its own. */
const fallback: z.core.$ZodErrorMap = (iss) => {
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
      // One issue carries every unknown key; encode a message per key and split them in `toIssues`.
      const shape = (iss.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod
        ?.def?.shape;
      const known = Object.keys(shape ?? {});
      return JSON.stringify(Object.fromEntries(iss.keys.map((k) => [k, unknownFieldMessage(k, known)])));
    }
    default:
      return undefined;
  }
};

function dotted(prefix: string, path: readonly PropertyKey[]): string {
  return [prefix, ...path.map(String)].filter(Boolean).join('.');
}

/** zod issues → field issues, one per unknown key. */
export function toIssues(error: z.ZodError, prefix = ''): FieldIssue[] {
  return error.issues.flatMap((i): FieldIssue[] => {
    if (i.code === 'unrecognized_keys') {
      let perKey: Record<string, string> = {};
      try {
        perKey = JSON.parse(i.message) as Record<string, string>;
      } catch {
        // a schema-level message: use it for each key
      }
      return i.keys.map((key) => ({
        field: dotted(prefix, [...i.path, key]),
        message: perKey[key] ?? i.message,
      }));
    }
    return [{ field: dotted(prefix, i.path) || '(body)', message: i.message }];
  });
}

/** Parses `value`, throwing a ValidationError that names every bad field. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.output<S> {
  const result = schema.safeParse(value, { error: fallback });
  if (!result.success) throw new ValidationError(toIssues(result.error, prefix));
  return result.data;
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

// ── field builders ──────────────────────────────────────────────────────────────────────────────

/** A schema-level message that still lets a missing field read "is required." */
export const unlessMissing = (message: string) => (iss: { input: unknown }) =>
  iss.input === undefined ? undefined : message;

export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Ids chosen by clients: safe in keys, URLs and secret names. */
export const clientId = z
  .string()
  .regex(ID_PATTERN, { error: 'must be 1 to 64 characters: letters, digits, "-" or "_".' });

/** A reference to another record; existence is checked by the service. */
export const refId = z
  .string()
  .min(1, { error: 'must not be empty; leave the field out for none.' })
  .max(64, { error: 'is not an id this API gives out (at most 64 characters).' });

export const name = (max = 200) =>
  z
    .string()
    .trim()
    .min(1, { error: 'must not be empty.' })
    .max(max, { error: `must be at most ${max} characters long.` });

export const emailAddress = z
  .email({ error: unlessMissing('must be an email address such as name@example.com.') })
  .max(254, { error: 'must be at most 254 characters long.' });

const PORT_MESSAGE = 'must be a whole number from 1 to 65535 (POP3: 995 with SSL, 110 without).';
export const port = z
  .int({ error: unlessMissing(PORT_MESSAGE) })
  .min(1, { error: PORT_MESSAGE })
  .max(65535, { error: PORT_MESSAGE });

export const smtpPort = z
  .int({
    error: unlessMissing(
      'must be a whole number from 1 to 65535 (SMTP: 587 with STARTTLS, 465 with SSL, 25 without).',
    ),
  })
  .min(1, { error: 'must be a whole number from 1 to 65535 (SMTP: 587 with STARTTLS, 465 with SSL).' })
  .max(65535, { error: 'must be a whole number from 1 to 65535 (SMTP: 587 with STARTTLS, 465 with SSL).' });

export const hostName = z
  .string()
  .trim()
  .min(1, { error: 'must not be empty: give the server name, e.g. pop.gmail.com.' })
  .max(253, { error: 'must be at most 253 characters long.' })
  // Labels of at most 63 characters between dots (bounded, so no catastrophic backtracking), or an IP.
  .regex(
    /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$|^\[?[0-9A-Fa-f:.]+\]?$/,
    {
      error: 'must be a server name such as pop.gmail.com or an IP address, without "pop3://" or a port.',
    },
  );

export const timeZone = z.string().refine(isValidTimeZone, {
  error: 'must be an IANA time zone such as America/New_York or Europe/London.',
});

export const isoDate = z.iso.date({
  error: unlessMissing('must be a date written YYYY-MM-DD, e.g. 2026-01-31.'),
});

export const hhmm = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: 'must be a time written HH:MM (24-hour clock), e.g. 08:30.' });

export const password = z
  .string()
  .min(1, { error: 'must not be empty; leave the field out to keep the stored password.' })
  .max(1024, { error: 'must be at most 1024 characters long.' });

export const version = z
  .int({ error: unlessMissing('must be the whole-number version you last read.') })
  .min(1, { error: 'must be the whole-number version you last read.' });

/** `?limit=` and `?cursor=` for paged lists. */
export const pageQuery = z.object({
  limit: z.coerce
    .number({ error: 'must be a whole number from 1 to 100.' })
    .int({ error: 'must be a whole number from 1 to 100.' })
    .min(1, { error: 'must be a whole number from 1 to 100.' })
    .max(100, { error: 'must be a whole number from 1 to 100.' })
    .default(50),
  cursor: z.string().min(1).optional(),
});
