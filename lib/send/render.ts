/**
 * Renders what a person typed or a form letter holds, plus a signature, into the subject, HTML and
 * text of one email: merge fields filled (escaped in HTML, as-is in text), the signature appended
 * to both versions, and a text version made from the HTML when only HTML was given. Pure.
 */
import { type FieldIssue, ValidationError } from '#lib/domain/errors';
import {
  escapeHtml,
  type MergeValues,
  mergeFieldNames,
  renderMergeFields,
  unknownMergeFields,
} from '#lib/domain/merge-fields';

export interface ContentSource {
  subject: string;
  html?: string;
  text?: string;
  /** Prefix for field names in errors: `` for the request body, `formLetter` for a form letter. */
  origin: '' | 'formLetter';
}

export interface SignatureSource {
  id: string;
  html: string;
  text: string;
}

export interface RenderedEmail {
  subject: string;
  text: string;
  html?: string;
  /** Merge fields the content and signature use (known ones only; unknown ones are refused). */
  mergeFields: string[];
  /** The signature appended, or null for none. */
  signatureId: string | null;
}

const SKIPPED_ELEMENT = /^(script|style|head)\b/i;
const LINE_BREAK = /^br\b/i;
const LIST_ITEM = /^li\b/i;
const BLOCK_END = /^\/(?:p|div|h[1-6]|li|tr|table|blockquote)\s*$/i;
const ENTITY = /&(#\d+|#x[0-9a-f]+|[a-z]+);/gi;
const NAMED_ENTITIES: Record<string, string> = {
  nbsp: ' ',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  amp: '&',
};

/** One entity's character; an unknown name or a number that is no character stays as written. */
function decodeEntity(whole: string, body: string): string {
  if (body[0] !== '#') return NAMED_ENTITIES[body.toLowerCase()] ?? whole;
  const hex = body[1] === 'x' || body[1] === 'X';
  const code = hex ? Number.parseInt(body.slice(2), 16) : Number(body.slice(1));
  const character = code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff);
  return character ? String.fromCodePoint(code) : whole;
}

/** Strips spaces and tabs at the end of a line (a regex for it backtracks on long runs of spaces). */
function trimLineEnd(line: string): string {
  let end = line.length;
  while (end > 0 && (line[end - 1] === ' ' || line[end - 1] === '\t')) end--;
  return line.slice(0, end);
}

/**
 * Plain text from HTML, good enough for the text alternative of an email: script, style and head
 * dropped, line breaks for `<br>` and the ends of blocks, `- ` for list items, other tags removed,
 * entities decoded once. One pass over the input, so its time grows linearly with the length of
 * any body a user may send (the regex version was quadratic on `<<<<…`, and a large numeric
 * entity made it throw).
 */
export function htmlToText(html: string): string {
  let out = '';
  let at = 0;
  /** Elements whose end tag does not occur again after some point: no need to look twice. */
  const unclosed = new Set<string>();
  while (at < html.length) {
    const open = html.indexOf('<', at);
    if (open === -1) break;
    const close = html.indexOf('>', open + 1);
    // Nothing after this `<` ends a tag, so no later one can either.
    if (close === -1) break;
    out += html.slice(at, open);
    if (close === open + 1) {
      out += '<';
      at = open + 1;
      continue;
    }
    const tag = html.slice(open + 1, close);
    at = close + 1;
    const skipped = SKIPPED_ELEMENT.exec(tag)?.[1]?.toLowerCase();
    if (skipped && !unclosed.has(skipped)) {
      const end = new RegExp(`</${skipped}\\s*>`, 'gi');
      end.lastIndex = at;
      const found = end.exec(html);
      if (found) at = found.index + found[0].length;
      else unclosed.add(skipped);
    } else if (LINE_BREAK.test(tag) || BLOCK_END.test(tag)) out += '\n';
    else if (LIST_ITEM.test(tag)) out += '- ';
  }
  out += html.slice(at);
  return out
    .replace(ENTITY, decodeEntity)
    .split('\n')
    .map(trimLineEnd)
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function textToHtml(text: string): string {
  return escapeHtml(text).replace(/\r?\n/g, '<br>\n');
}

/** Puts the signature before `</body>` when the HTML is a whole document, else at the end. */
function appendHtml(html: string, signatureHtml: string): string {
  const block = `<br>\n<div class="signature">${signatureHtml}</div>`;
  const end = html.search(/<\/body\s*>/i);
  return end === -1 ? `${html}\n${block}` : `${html.slice(0, end)}${block}\n${html.slice(end)}`;
}

const field = (origin: string, name: string) => (origin ? `${origin}.${name}` : name);

/** Refuses unknown merge fields, naming each and the part it is in, before anything is sent. */
export function checkMergeFields(content: ContentSource, signature?: SignatureSource): void {
  const parts: [string, string | undefined][] = [
    [field(content.origin, 'subject'), content.subject],
    [field(content.origin, 'html'), content.html],
    [field(content.origin, 'text'), content.text],
    ['signature.html', signature?.html],
    ['signature.text', signature?.text],
  ];
  const issues: FieldIssue[] = [];
  const all = new Set<string>();
  for (const [name, text] of parts) {
    for (const u of unknownMergeFields(text)) {
      all.add(u.name);
      const hint = u.suggestion ? ` (did you mean {{${u.suggestion}}}?)` : '';
      issues.push({ field: name, message: `uses the unknown merge field {{${u.name}}}${hint}.` });
    }
  }
  if (issues.length === 0) return;
  const error = new ValidationError(issues);
  error.message =
    `Unknown merge fields: ${[...all].map((n) => `{{${n}}}`).join(', ')}. Nothing was sent; ` +
    'correct them or see the list of merge fields in docs/sending.md.';
  throw error;
}

/** Fills in the merge fields and appends the signature; call checkMergeFields first. */
export function renderEmail(
  content: ContentSource,
  signature: SignatureSource | undefined,
  values: MergeValues,
): RenderedEmail {
  checkMergeFields(content, signature);
  // A header cannot hold a line break; a value with one must not start a new header.
  const subject = renderMergeFields(content.subject, values, 'text')
    .replace(/[\r\n]+/g, ' ')
    .trim();
  let html = content.html !== undefined ? renderMergeFields(content.html, values, 'html') : undefined;
  let text =
    content.text !== undefined ? renderMergeFields(content.text, values, 'text') : htmlToText(html ?? '');
  if (signature) {
    const sigText = signature.text
      ? renderMergeFields(signature.text, values, 'text')
      : htmlToText(renderMergeFields(signature.html, values, 'html'));
    const sigHtml = signature.html ? renderMergeFields(signature.html, values, 'html') : textToHtml(sigText);
    if (sigText) text = `${text}\n\n-- \n${sigText}`;
    if (html !== undefined && sigHtml) html = appendHtml(html, sigHtml);
  }
  return {
    subject,
    text,
    html,
    mergeFields: mergeFieldNames(
      content.subject,
      content.html,
      content.text,
      signature?.html,
      signature?.text,
    ),
    signatureId: signature?.id ?? null,
  };
}
