/**
 * Merge fields in form letters, HTML emails, signatures and single emails: `{{client.firstName}}`,
 * `{{ studio.name }}`, and with a fallback for missing data `{{client.firstName|there}}`.
 * Pure; no AWS imports. docs/sending.md lists the fields and the rules.
 */

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

/** Every merge field this system fills, with what it holds; the order is the documented one. */
export const MERGE_FIELDS = {
  'client.firstName': "the client's first name",
  'client.lastName': "the client's last name",
  'client.fullName': 'first and last name, separated by a space',
  'client.company': "the client's company",
  'client.email': 'the address this email goes to (the client’s primary address)',
  'client.phone': "the client's phone number",
  'studio.name': 'the studio name (company email settings)',
  'studio.email': "the studio's email address",
  'studio.phone': "the studio's phone number",
  'studio.website': "the studio's website",
  'studio.address': "the studio's postal address",
  'user.firstName': "the sending user's first name",
  'user.lastName': "the sending user's last name",
  'user.fullName': "the sending user's first and last name",
  'user.displayName': 'the display name the email is sent under',
  'user.email': 'the address the email is sent from',
  'user.title': "the sending user's job title",
  'user.phone': "the sending user's phone number",
  'date.today': "today in the studio's time zone, long form (March 5, 2026)",
  'date.short': "today in the studio's time zone, short form (3/5/2026)",
  'date.iso': "today in the studio's time zone, ISO form (2026-03-05)",
  'date.weekday': "today's weekday in the studio's time zone (Thursday)",
  'date.year': "the year in the studio's time zone (2026)",
} as const;

export type MergeFieldName = keyof typeof MERGE_FIELDS;
/** A value per field; `undefined` or empty means the data is missing. */
export type MergeValues = Partial<Record<MergeFieldName, string | undefined>>;

function isKnown(name: string): name is MergeFieldName {
  return Object.hasOwn(MERGE_FIELDS, name);
}

export interface UnknownMergeField {
  /** The text between the braces, trimmed, e.g. `client.firstname` or `client first`. */
  name: string;
  /** The known field it differs from only by letter case, if any. */
  suggestion?: string;
}

/**
 * Merge fields this system does not know, and brace pairs that are not a merge field at all,
 * each once, in order of first use. Sending is refused while there are any.
 */
export function unknownMergeFields(...texts: (string | undefined)[]): UnknownMergeField[] {
  const byLower = new Map(Object.keys(MERGE_FIELDS).map((n) => [n.toLowerCase(), n]));
  const found = new Map<string, UnknownMergeField>();
  for (const text of texts) {
    if (!text) continue;
    for (const match of text.matchAll(ANY_BRACES)) {
      const inner = (match[1] as string).trim();
      const wellFormed = new RegExp(MERGE_FIELD.source).exec(match[0]);
      const name = wellFormed ? (wellFormed[1] as string) : inner;
      if (wellFormed && isKnown(name)) continue;
      if (found.has(name)) continue;
      const suggestion = byLower.get(name.toLowerCase());
      found.set(name, suggestion ? { name, suggestion } : { name });
    }
  }
  return [...found.values()];
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
}

const joinName = (first?: string, last?: string) => [first, last].filter((p) => p?.trim()).join(' ');

/** Building a DateTimeFormat costs far more than using one; studios reuse a handful. */
const formats = new Map<string, Intl.DateTimeFormat>();

function datePart(now: Date, timeZone: string, options: Intl.DateTimeFormatOptions, locale = 'en-US') {
  const key = `${locale}|${timeZone}|${JSON.stringify(options)}`;
  let format = formats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat(locale, { timeZone, ...options });
    formats.set(key, format);
  }
  return format.format(now);
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
  };
}
