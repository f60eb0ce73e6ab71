/**
 * Sending through Microsoft Graph `sendMail` (for Microsoft 365 tenants with SMTP AUTH turned off):
 * POST /users/{mailbox}/sendMail with the MIME message base64-encoded as a text/plain body, as
 * Graph documents for MIME sends; 202 means accepted. The MIME is the one we rendered and stored,
 * so the raw copy is what left. Throttling (429/503 with Retry-After) and a refused token (401,
 * one renewal) are the Graph client's (./client.ts).
 */
import type { MailTransport, RawMail, SendResult } from '#lib/ports/index';
import { GraphClient } from './client.ts';
import { GraphError } from './errors.ts';
import type { AccessTokens } from './tokens.ts';

export interface GraphSendOptions {
  readonly baseUrl: string;
  /** The mailbox Graph sends as: the sending address. */
  readonly mailbox: string;
  readonly tokens: AccessTokens;
  readonly fetch?: typeof fetch;
  readonly sleep?: (ms: number) => Promise<void>;
  /** The longest one Retry-After is waited for; a send is interactive. Default 30 s. */
  readonly maxWaitMs?: number;
  /** Throttled answers waited out. Default 3. */
  readonly maxRetries?: number;
}

export function graphSendTransport(options: GraphSendOptions): MailTransport {
  const client = new GraphClient({
    baseUrl: options.baseUrl,
    tokens: options.tokens,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.sleep ? { sleep: options.sleep } : {}),
    maxWaitMs: options.maxWaitMs ?? 30_000,
    maxRetries: options.maxRetries ?? 3,
    // A 503 may come after Exchange took the message: never posted twice.
    retryStatuses: [429],
  });
  return {
    kind: 'graph',
    async send(mail: RawMail): Promise<SendResult> {
      const hidden = notInHeaders(mail);
      // Graph takes the recipients of a MIME send from its headers; a Bcc recipient exists only in
      // our envelope (the stored copy has no Bcc header) and would silently get nothing.
      if (hidden.length)
        throw new GraphError(
          'protocol',
          `Microsoft Graph sends only to the recipients in the message's headers; Bcc (${hidden.length}) is not supported with method graph.`,
          { code: 'BccNotSupported' },
        );
      await client.json(`/users/${encodeURIComponent(options.mailbox)}/sendMail`, {
        method: 'POST',
        text: mail.raw.toString('base64'),
      });
      return {
        messageId: mail.messageId,
        accepted: mail.envelope.to,
        rejected: [],
        response: '202 Accepted',
      };
    },
    async verify() {},
    close() {
      client.close();
    },
  };
}

/** Envelope recipients that no To or Cc header names (Bcc). */
function notInHeaders(mail: RawMail): string[] {
  const end = mail.raw.indexOf('\r\n\r\n');
  const head = mail.raw
    .subarray(0, end < 0 ? mail.raw.length : end)
    .toString('latin1')
    .replace(/\r\n[ \t]+/g, ' ');
  // Each address the To and Cc headers name, whole (a substring test would take bob@x for alice.bob@x).
  const named = new Set(
    head
      .split('\r\n')
      .filter((line) => /^(to|cc):/i.test(line))
      .flatMap((line) => line.match(/[^\s<>,;:"()]+@[^\s<>,;:"()]+/g) ?? [])
      .map((a) => a.toLowerCase()),
  );
  return mail.envelope.to.filter((address) => !named.has(address.toLowerCase()));
}
