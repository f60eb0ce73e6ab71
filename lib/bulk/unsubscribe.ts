/**
 * Unsubscribe through a signed link: the one-click POST (RFC 8058) or the confirmation page's
 * button puts the address on the studio's block list and records the event on the recipient.
 * The pages are small and self-contained (no scripts, no external resources).
 */
import { escapeHtml } from '#lib/domain/merge-fields';
import type { BlockList } from './blocks.ts';
import type { LinkSigner } from './links.ts';
import type { BulkStore } from './store.ts';

export interface UnsubscribeDeps {
  links: LinkSigner;
  blocks: BlockList;
  store: BulkStore;
  now: () => Date;
}

/** Blocks the link's address; undefined when the token is not one of ours. */
export async function unsubscribe(
  d: UnsubscribeDeps,
  token: string,
): Promise<{ address: string } | undefined> {
  const link = await d.links.verify(token);
  if (link?.p !== 'u') return undefined;
  const at = d.now().toISOString();
  const current = await d.blocks.get(link.s, link.a);
  // Twice is once: a mail client's one-click POST and a click on the page's button.
  if (!current?.blocked || current.history.at(-1)?.reason !== 'unsubscribed')
    await d.blocks.block(link.s, {
      address: link.a,
      reason: 'unsubscribed',
      at,
      ...(link.j ? { jobId: link.j } : {}),
    });
  if (link.j && link.r) await d.store.addEvent(link.s, link.j, link.r, 'unsubscribed', at);
  return { address: link.a };
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title><style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}button{font-size:1rem;padding:.6rem 1.2rem}</style></head><body>${body}</body></html>`;
}

export function confirmPage(address: string): string {
  return page(
    'Unsubscribe',
    `<h1>Unsubscribe</h1><p>Stop emails like this one to <strong>${escapeHtml(address)}</strong>?</p><form method="post"><button type="submit">Unsubscribe</button></form>`,
  );
}

export function donePage(address: string): string {
  return page(
    'Unsubscribed',
    `<h1>You are unsubscribed</h1><p><strong>${escapeHtml(address)}</strong> will not get these emails any more.</p>`,
  );
}

export function invalidPage(): string {
  return page(
    'Link not valid',
    '<h1>This link is not valid</h1><p>It may have been copied incompletely.</p>',
  );
}
