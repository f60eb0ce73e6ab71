/**
 * What became of a box's mail (GET /email-boxes/{id}/messages): imported and quarantined mail
 * has a message record (mail quarantined after three failed runs, or that the server cannot send
 * intact, has only its marker); excluded mail (dated before the box's cut-off) and duplicates (the same
 * bytes under another UIDL) have only their import marker, which is what is listed for them.
 */
import type { Repositories } from '#lib/data/repositories';
import type { Page } from '#lib/data/table';
import type { Message } from '#lib/domain/model';

export const BOX_MAIL_STATES = ['imported', 'quarantined', 'excluded', 'duplicate'] as const;
export type BoxMailState = (typeof BOX_MAIL_STATES)[number];

export interface BoxMailEntry {
  state: BoxMailState;
  /** The message's date (imported, quarantined) or when the marker was written (excluded, duplicate). */
  date: string;
  /** The server's id of the mail (excluded, duplicate). */
  uidl?: string;
  message?: Message;
  /** The message this one duplicates. */
  duplicateOf?: string;
  /** Why mail quarantined on its marker (no message record: it was never retrieved whole) is. */
  reason?: string;
}

export async function listBoxMail(
  repos: Repositories,
  sid: string,
  boxId: string,
  state: BoxMailState,
  limit: number,
  cursor?: string,
): Promise<Page<BoxMailEntry>> {
  await repos.emailBoxes.require(sid, boxId);
  if (state === 'imported' || state === 'quarantined') {
    const page = await repos.messages.listForBox(sid, boxId, state, limit, cursor);
    return {
      items: page.items.map((item) =>
        'uidl' in item
          ? // Quarantined on its marker only (failed three runs, or the server cannot send it intact).
            { state, date: item.at, uidl: item.uidl, reason: item.reason }
          : { state, date: item.date, message: item },
      ),
      nextCursor: page.nextCursor,
    };
  }
  const page = await repos.importMarkers.listState(sid, boxId, state, limit, cursor);
  return {
    items: page.items.map((marker) => ({
      state,
      date: marker.at,
      uidl: marker.uidl,
      duplicateOf: state === 'duplicate' ? marker.messageId : undefined,
    })),
    nextCursor: page.nextCursor,
  };
}
