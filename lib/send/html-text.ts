/**
 * Plain text from HTML for an email's text alternative (html-to-text). Imported on first use by
 * ./render.ts: the converter and its HTML parser are a chunk of their own in the bundles.
 */
import { compile } from 'html-to-text';

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
