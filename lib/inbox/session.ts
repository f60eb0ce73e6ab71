/**
 * What the import pipeline (lib/inbox/poll.ts) needs of a mailbox, whatever the protocol. The POP3
 * client (lib/pop3/client.ts) is one as it is; the IMAP and Microsoft Graph connectors implement it
 * too, so every connector shares one pipeline: store first, quarantine, per-message isolation,
 * lease and budget.
 *
 * Messages are numbered 1..n for the session (POP3's message numbers); `uid` is the stable name the
 * import markers are kept under (POP3 UIDL; IMAP `<UIDVALIDITY>:<UID>`; Graph message id).
 */
import type { Readable } from 'node:stream';

export interface SessionMessage {
  readonly id: number;
  readonly data: Buffer;
}

export interface SessionWindow {
  /** Requests in flight at once (the connector may use fewer). */
  readonly window?: number;
}

export interface MailSession {
  /** `raw` lists what the server offers; `top` false when headers cannot be read apart (TOP). */
  readonly capabilities: { readonly raw: readonly string[]; readonly top: boolean };
  /** Every message of the session with its stable id, in server order. */
  uidl(): Promise<{ readonly id: number; readonly uid: string }[]>;
  /** Sizes in octets, where the server knows them (a message left out is treated as large). */
  list(): Promise<{ readonly id: number; readonly size: number }[]>;
  /** The header blocks (`lines` = 0) of these messages, in order. */
  topMany(ids: Iterable<number>, lines: number, options?: SessionWindow): AsyncGenerator<SessionMessage>;
  /** These messages' exact bytes, in order; a refusal of one ends the generator with its error. */
  retrMany(ids: Iterable<number>, options?: SessionWindow): AsyncGenerator<SessionMessage>;
  /** One message's exact bytes as a stream (large messages: never held whole). */
  retrStream(id: number): Promise<Readable>;
  /**
   * Removes these durably stored messages from the box as the box says (POP3 DELE; IMAP or Graph:
   * delete, or move to a folder). Called only when the box does not leave mail on the server.
   */
  deleMany(ids: Iterable<number>, options?: SessionWindow): Promise<void>;
  /**
   * Optional: what to do with durably stored messages a box leaves on the server (IMAP \Seen,
   * Graph isRead). Absent: nothing is done with them.
   */
  keepMany?(ids: Iterable<number>): Promise<void>;
  /**
   * Optional: when each message arrived, as the server says (IMAP INTERNALDATE, Graph
   * receivedDateTime), epoch ms. When present the box's exclude-before date is judged by it, not by
   * the Date header read with TOP.
   */
  receivedAt?(ids: readonly number[]): Promise<Map<number, number>>;
  /** Ends the session; commits removals (POP3 QUIT). */
  quit(): Promise<void>;
  /** Drops the connection at once (nothing uncommitted is applied). */
  close(): void;
}
