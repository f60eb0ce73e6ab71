/**
 * Merge fields in form letters, HTML emails, signatures and single emails: `{{client.firstName}}`,
 * `{{ studio.name }}`, and with a fallback for missing data `{{client.firstName|there}}`.
 * Pure; no AWS imports. docs/sending.md lists the fields and the rules.
 */
import type { FieldIssue } from './errors.ts';

/**
 * `{{ a.b.c }}` with optional spaces and an optional `|fallback`; `{{{raw}}}` matches through its
 * inner braces. Group 1 is the name, group 2 the fallback, untrimmed (absent when there is no `|`).
 * The fallback is greedy and nothing that can also match whitespace follows it: a lazy fallback
 * followed by `\s*` backtracks quadratically on `{{a|` and a long run of spaces (a 500 KB body
 * held the function for minutes).
 */
const MERGE_FIELD = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*(?:\|([^{}]*))?\}\}/g;
/** Anything that looks like a merge field, to catch typos such as `{{client first}}`. */
const ANY_BRACES = /\{\{([^{}]*)\}\}/g;

/** The merge-field names used in `text`, each once, in order of first use. */
export function mergeFieldNames(...texts: (string | undefined)[]): string[] {
  const names = new Set<string>();
  for (const text of texts) {
    if (!text) continue;
    for (const match of text.matchAll(MERGE_FIELD)) names.add(match[1] as string);
  }
  return [...names];
}

export interface MergeFieldInfo {
  description: string;
  /** What the field gives for the sample studio, user and client of the docs. */
  example: string;
}

/**
 * Every merge field this system fills, with what it holds and an example; the order is the
 * documented one. The one declaration: `GET /merge-fields`, validation and rendering read it.
 */
export const MERGE_FIELDS = {
  'client.firstName': { description: "the client's first name", example: 'José' },
  'client.lastName': { description: "the client's last name", example: 'Núñez' },
  'client.fullName': { description: 'first and last name, separated by a space', example: 'José Núñez' },
  'client.company': { description: "the client's company", example: 'Núñez Events' },
  'client.email': {
    description: 'the address this email goes to (the client’s primary address)',
    example: 'jose@example.com',
  },
  'client.phone': { description: "the client's phone number", example: '+34 600 123 456' },
  'studio.name': { description: 'the studio name (company email settings)', example: 'Lumen Studio' },
  'studio.email': { description: "the studio's email address", example: 'hello@lumen.test' },
  'studio.phone': { description: "the studio's phone number", example: '+34 910 000 000' },
  'studio.website': { description: "the studio's website", example: 'https://lumen.test' },
  'studio.address': { description: "the studio's postal address", example: 'Calle Mayor 1, Madrid' },
  'user.firstName': { description: "the sending user's first name", example: 'Ana' },
  'user.lastName': { description: "the sending user's last name", example: 'Ruiz' },
  'user.fullName': { description: "the sending user's first and last name", example: 'Ana Ruiz' },
  'user.displayName': { description: 'the display name the email is sent under', example: 'Ana at Lumen' },
  'user.email': { description: 'the address the email is sent from', example: 'ana@lumen.test' },
  'user.title': { description: "the sending user's job title", example: 'Photographer' },
  'user.phone': { description: "the sending user's phone number", example: '+34 600 987 654' },
  'date.today': { description: "today in the studio's time zone, long form", example: 'March 5, 2026' },
  'date.short': { description: "today in the studio's time zone, short form", example: '3/5/2026' },
  'date.iso': { description: "today in the studio's time zone, ISO form", example: '2026-03-05' },
  'date.weekday': { description: "today's weekday in the studio's time zone", example: 'Thursday' },
  'date.year': { description: "the year in the studio's time zone", example: '2026' },
  'unsubscribe.url': {
    description: 'bulk email: the link that unsubscribes this recipient (empty in single emails)',
    example: 'https://api.lumen.test/unsubscribe/eyJ…',
  },
} as const satisfies Record<string, MergeFieldInfo>;

export type MergeFieldName = keyof typeof MERGE_FIELDS;
/** A value per field; `undefined` or empty means the data is missing. */
export type MergeValues = Partial<Record<MergeFieldName, string | undefined>>;

function isKnown(name: string): name is MergeFieldName {
  return Object.hasOwn(MERGE_FIELDS, name);
}

/** The list `GET /merge-fields` answers, in the documented order. */
export function mergeFieldList(): ({ name: MergeFieldName } & MergeFieldInfo)[] {
  return (Object.entries(MERGE_FIELDS) as [MergeFieldName, MergeFieldInfo][]).map(([name, info]) => ({
    name,
    description: info.description,
    example: info.example,
  }));
}

export interface UnknownMergeField {
  /** The text between the braces, trimmed, e.g. `client.firstname` or `client first`. */
  name: string;
  /** The nearest known field, if one is near enough to be a likely slip. */
  suggestion?: string;
}

/** Levenshtein distance; the names are short (under 100 characters after the length cap). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitute = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(substitute, (previous[j] as number) + 1, (current[j - 1] as number) + 1);
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * The known field nearest to `name` (ignoring letter case, which is the commonest slip), when it
 * differs in at most half of the name's characters; a name far from all is better left without a
 * guess. Ties go to the field listed first.
 */
export function nearestMergeField(name: string): MergeFieldName | undefined {
  // Longer text between braces is no slip of a field name, and bounds the work.
  if (name.length > 64) return undefined;
  const lower = name.toLowerCase();
  let best: MergeFieldName | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const known of Object.keys(MERGE_FIELDS) as MergeFieldName[]) {
    const distance = editDistance(lower, known.toLowerCase());
    if (distance < bestDistance) {
      best = known;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(name.length / 2)) ? best : undefined;
}

/**
 * Merge fields this system does not know, and brace pairs that are not a merge field at all,
 * each once, in order of first use. Sending and saving are refused while there are any.
 */
export function unknownMergeFields(...texts: (string | undefined)[]): UnknownMergeField[] {
  const found = new Map<string, UnknownMergeField>();
  for (const text of texts) {
    if (!text) continue;
    for (const match of text.matchAll(ANY_BRACES)) {
      const inner = (match[1] as string).trim();
      const wellFormed = new RegExp(MERGE_FIELD.source).exec(match[0]);
      const name = wellFormed ? (wellFormed[1] as string) : inner;
      if (wellFormed && isKnown(name)) continue;
      if (found.has(name)) continue;
      const suggestion = nearestMergeField(name);
      found.set(name, suggestion ? { name, suggestion } : { name });
    }
  }
  return [...found.values()];
}

/** One issue per unknown field per part, for a 400 that names the part, the field and the nearest. */
export function mergeFieldIssues(parts: [field: string, text: string | undefined][]): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const [field, text] of parts) {
    for (const u of unknownMergeFields(text)) {
      const hint = u.suggestion ? ` (did you mean {{${u.suggestion}}}?)` : '';
      issues.push({
        field,
        message: `uses the unknown merge field {{${u.name}}}${hint}; GET /merge-fields lists the fields there are.`,
      });
    }
  }
  return issues;
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string);
}

/**
 * Fills the merge fields of `template`. In `html` the values are HTML-escaped (a client named
 * `<script>` stays text); in `text` (plain bodies and subjects) they go in as they are. Missing data
 * becomes the field's fallback when it has one (`{{client.firstName|there}}`; the fallback is part
 * of the template and is inserted as written) and the empty string otherwise. Unknown fields must
 * have been refused before (unknownMergeFields); any left are kept as written.
 */
export function renderMergeFields(template: string, values: MergeValues, mode: 'html' | 'text'): string {
  return template.replace(MERGE_FIELD, (whole, name: string, fallback: string | undefined) => {
    if (!isKnown(name)) return whole;
    const value = values[name];
    if (value === undefined || value.trim() === '') return fallback?.trim() ?? '';
    return mode === 'html' ? escapeHtml(value) : value;
  });
}

export interface MergeSources {
  client?: {
    firstName?: string;
    lastName?: string;
    company?: string;
    phone?: string;
    /** The address the email goes to. */
    email?: string;
  };
  studio: { name: string; email: string; phone?: string; website?: string; address?: string };
  user: {
    firstName?: string;
    lastName?: string;
    title?: string;
    phone?: string;
    displayName: string;
    email: string;
  };
  now: Date;
  /** IANA zone the dates are written in (the studio's). */
  timeZone: string;
  /** Bulk email: the recipient's signed unsubscribe link. */
  unsubscribeUrl?: string;
}

const joinName = (first?: string, last?: string) => [first, last].filter((p) => p?.trim()).join(' ');

/** Building a DateTimeFormat costs far more than using one; studios reuse a handful. */
const formats = new Map<string, Intl.DateTimeFormat>();

/** The last value of each format and the minute it was for: a bulk email asks for the same one thousands of times. */
const lastParts = new Map<string, { minute: number; value: string }>();

function datePart(now: Date, timeZone: string, options: Intl.DateTimeFormatOptions, locale = 'en-US') {
  const key = `${locale}|${timeZone}|${JSON.stringify(options)}`;
  // Every part asked for is a day or coarser, so it is the same all minute long.
  const minute = Math.floor(now.getTime() / 60_000);
  const last = lastParts.get(key);
  if (last?.minute === minute) return last.value;
  let format = formats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat(locale, { timeZone, ...options });
    formats.set(key, format);
  }
  const value = format.format(now);
  lastParts.set(key, { minute, value });
  return value;
}

/** The values of every merge field from the records they come from. */
export function mergeValues(s: MergeSources): MergeValues {
  const { now, timeZone } = s;
  return {
    'client.firstName': s.client?.firstName,
    'client.lastName': s.client?.lastName,
    'client.fullName': joinName(s.client?.firstName, s.client?.lastName),
    'client.company': s.client?.company,
    'client.email': s.client?.email,
    'client.phone': s.client?.phone,
    'studio.name': s.studio.name,
    'studio.email': s.studio.email,
    'studio.phone': s.studio.phone,
    'studio.website': s.studio.website,
    'studio.address': s.studio.address,
    'user.firstName': s.user.firstName,
    'user.lastName': s.user.lastName,
    'user.fullName': joinName(s.user.firstName, s.user.lastName),
    'user.displayName': s.user.displayName,
    'user.email': s.user.email,
    'user.title': s.user.title,
    'user.phone': s.user.phone,
    'date.today': datePart(now, timeZone, { year: 'numeric', month: 'long', day: 'numeric' }),
    'date.short': datePart(now, timeZone, { year: 'numeric', month: 'numeric', day: 'numeric' }),
    // en-CA writes dates as YYYY-MM-DD.
    'date.iso': datePart(now, timeZone, { year: 'numeric', month: '2-digit', day: '2-digit' }, 'en-CA'),
    'date.weekday': datePart(now, timeZone, { weekday: 'long' }),
    'date.year': datePart(now, timeZone, { year: 'numeric' }),
    'unsubscribe.url': s.unsubscribeUrl,
  };
}
