/**
 * Renders what a person typed or a form letter holds, plus a signature, into the subject, HTML and
 * text of one email: merge fields filled (escaped in HTML, as-is in text), the signature appended
 * to both versions, and a text version made from the HTML when only HTML was given. Pure.
 */
import { compile } from 'html-to-text';
import { ValidationError } from '#lib/domain/errors';
import {
  escapeHtml,
  type MergeValues,
  mergeFieldIssues,
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

/**
 * The text alternative's conversion (html-to-text, which mailparser uses too): entities decoded
 * once, link URLs kept after the link text, paragraphs and table cells on lines of their own, list
 * items marked. No word wrap: mail clients wrap plain text themselves, and nodemailer encodes long
 * lines safely. `head` (title, style) and images give no text.
 */
const convert = compile({
  wordwrap: false,
  selectors: [
    { selector: 'head', format: 'skip' },
    { selector: 'img', format: 'skip' },
    { selector: 'a', options: { hideLinkHrefIfSameAsText: true, linkBrackets: ['<', '>'] } },
    { selector: 'ul', options: { itemPrefix: '- ' } },
    // Most tables in email lay the page out; one cell per line reads better than a grid.
    ...(['td', 'th'] as const).map((cell) => ({
      selector: cell,
      format: 'block',
      options: { leadingLineBreaks: 1, trailingLineBreaks: 1 },
    })),
    ...(['h1', 'h2', 'h3', 'h4', 'h5', 'h6'] as const).map((h) => ({
      selector: h,
      options: { uppercase: false },
    })),
  ],
});

/** Elements with no end tag: they do not nest. */
const VOID_ELEMENTS = new Set(
  'area base br col embed hr img input link meta param source track wbr'.split(' '),
);
const TAG_START = /<(\/?)([a-zA-Z][a-zA-Z0-9]*)/g;
/**
 * htmlparser2 spends time proportional to the depth of open elements on every new one, so markup
 * nested thousands deep (`<b><b><b>…`) takes quadratic time. Real email nests a few dozen deep.
 */
const MAX_NESTING = 500;

/** How deep elements nest at most, counting open and end tags in one linear pass. */
function nestingDepth(html: string): number {
  let depth = 0;
  let max = 0;
  for (const match of html.matchAll(TAG_START)) {
    if (match[1]) depth = Math.max(0, depth - 1);
    else if (!VOID_ELEMENTS.has((match[2] as string).toLowerCase())) max = Math.max(max, ++depth);
  }
  return max;
}

/**
 * Plain text from HTML for the text alternative of an email. Its time grows linearly with the
 * length of any body a user may send: markup nested deeper than MAX_NESTING is read with its tags
 * dropped (a tag cannot contain `<`, so the pattern never backtracks).
 */
export function htmlToText(html: string): string {
  const readable = nestingDepth(html) > MAX_NESTING ? html.replace(/<[^<>]*>/g, ' ') : html;
  return convert(readable).trim();
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
  const issues = mergeFieldIssues(parts);
  if (issues.length === 0) return;
  const all = new Set(unknownMergeFields(...parts.map(([, text]) => text)).map((u) => u.name));
  const error = new ValidationError(issues);
  error.message =
    `Unknown merge fields: ${[...all].map((n) => `{{${n}}}`).join(', ')}. Nothing was sent; ` +
    'correct them (GET /merge-fields lists the fields there are).';
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
