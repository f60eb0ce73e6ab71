/**
 * Renders what a person typed or a form letter holds, plus a signature, into the subject, HTML and
 * text of one email: merge fields filled (escaped in HTML, as-is in text), the signature appended
 * to both versions, and a text version made from the HTML when only HTML was given. Pure. The
 * HTML-to-text converter (./html-text.ts, ~160 KB with its parser) is imported on first use, so a
 * function's cold start does not compile it.
 */
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
export async function renderEmail(
  content: ContentSource,
  signature: SignatureSource | undefined,
  values: MergeValues,
): Promise<RenderedEmail> {
  checkMergeFields(content, signature);
  const needsText = content.text === undefined || (signature !== undefined && !signature.text);
  const htmlToText = needsText ? (await import('./html-text.ts')).htmlToText : (_: string) => '';
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
