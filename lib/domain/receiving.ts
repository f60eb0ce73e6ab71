/**
 * Push ingestion, the pure part: the receiving address of an email box on the deployment's
 * receiving domain, what a receiving notification says (recipients, where the message is stored,
 * the spam and virus verdicts), and how Gmail's forwarding confirmation is recognised.
 * No AWS SDK here: the notification is the JSON SES publishes, read as data.
 */

/** How a box gets its mail: polled on its schedule, pushed (forwarded to its receiving address), or both. */
export const INTAKE_MODES = ['poll', 'push', 'both'] as const;
export type IntakeMode = (typeof INTAKE_MODES)[number];

export const takesPush = (mode: IntakeMode | undefined): boolean => mode === 'push' || mode === 'both';
export const takesPoll = (mode: IntakeMode | undefined): boolean => mode !== 'push';

/** A dot-atom local part of plain letters, digits and `-`/`_`/`.`, as every forwarding form accepts. */
export const LOCAL_PART = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;

/**
 * The local part a box receives at: the one the studio chose, else `<box>.<studio>`. Lower case,
 * because forwarding services and SES compare addresses case-insensitively.
 */
export function receivingLocalPart(studioId: string, boxId: string, chosen?: string): string {
  return (chosen ?? `${boxId}.${studioId}`).toLowerCase();
}

/** Why a chosen local part cannot be used, or undefined when it can. */
export function localPartProblem(localPart: string): string | undefined {
  if (localPart.length > 64) return 'must be at most 64 characters.';
  if (!LOCAL_PART.test(localPart.toLowerCase()))
    return 'may hold letters, digits, ".", "-" and "_", and must start and end with a letter or digit.';
  if (localPart.includes('..')) return 'must not hold two dots in a row.';
  return undefined;
}

export function receivingAddress(localPart: string, domain: string): string {
  return `${localPart}@${domain.toLowerCase()}`;
}

/** The local part of `address` when it is on `domain` (case-insensitively), else undefined. */
export function localPartOn(address: string, domain: string): string | undefined {
  const a = address.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  if (at <= 0 || a.slice(at + 1) !== domain.toLowerCase()) return undefined;
  // Sub-addressing (`sales.acme+anything@…`) reaches the same box.
  return a.slice(0, at).split('+')[0];
}

export type VerdictStatus = 'PASS' | 'FAIL' | 'GRAY' | 'PROCESSING_FAILED' | 'DISABLED';

/** SES's receipt verdicts, as recorded on the message. */
export interface Verdicts {
  spam?: VerdictStatus;
  virus?: VerdictStatus;
  spf?: VerdictStatus;
  dkim?: VerdictStatus;
  dmarc?: VerdictStatus;
}

/** What one receiving notification says, whichever way it arrived (SES through SNS, the local server). */
export interface InboundNotice {
  /** SES's id of the message (also the object key's last part). */
  id: string;
  /** Envelope recipients (RCPT TO), which forwarded mail's headers do not show. */
  recipients: string[];
  /** Where the raw message is stored in the blob store (the bucket SES wrote to). */
  key: string;
  verdicts: Verdicts;
}

/** Why a message is quarantined instead of filed, from its verdicts; undefined when it may be filed. */
export function verdictQuarantineReason(v: Verdicts): string | undefined {
  if (v.virus === 'FAIL') return 'Amazon SES found a virus in this message; it is kept but not filed.';
  if (v.spam === 'FAIL') return 'Amazon SES judged this message to be spam; it is kept but not filed.';
  return undefined;
}

class NoticeError extends Error {}

const verdict = (value: unknown): VerdictStatus | undefined => {
  const s = (value as { status?: unknown } | undefined)?.status;
  return typeof s === 'string' && ['PASS', 'FAIL', 'GRAY', 'PROCESSING_FAILED', 'DISABLED'].includes(s)
    ? (s as VerdictStatus)
    : undefined;
};

/**
 * The notice in an SES "Received" notification (the `Message` of the SNS envelope, or the
 * notification itself) for a receipt rule whose S3 action stored the message. Throws when the
 * body is not one: a queue message we cannot read is left to the dead-letter queue.
 */
export function parseSesNotification(body: string): InboundNotice {
  let outer: Record<string, unknown>;
  try {
    outer = JSON.parse(body) as Record<string, unknown>;
  } catch {
    throw new NoticeError('The queue message is not JSON.');
  }
  let n = outer;
  if (outer.Type === 'Notification' && typeof outer.Message === 'string') {
    try {
      n = JSON.parse(outer.Message) as Record<string, unknown>;
    } catch {
      throw new NoticeError('The SNS notification does not carry a JSON message.');
    }
  }
  if (n.notificationType !== 'Received')
    throw new NoticeError(`Not a receiving notification (${String(n.notificationType)}).`);
  const mail = n.mail as { messageId?: unknown; destination?: unknown } | undefined;
  const receipt = n.receipt as Record<string, unknown> | undefined;
  const action = receipt?.action as { type?: unknown; objectKey?: unknown } | undefined;
  if (typeof mail?.messageId !== 'string' || !receipt)
    throw new NoticeError('The notification names no message.');
  if (action?.type !== 'S3' || typeof action.objectKey !== 'string')
    throw new NoticeError('The receipt rule did not store the message (no S3 action).');
  const recipients = Array.isArray(receipt.recipients)
    ? receipt.recipients.filter((r): r is string => typeof r === 'string')
    : [];
  return {
    id: mail.messageId,
    recipients,
    key: action.objectKey,
    verdicts: {
      spam: verdict(receipt.spamVerdict),
      virus: verdict(receipt.virusVerdict),
      spf: verdict(receipt.spfVerdict),
      dkim: verdict(receipt.dkimVerdict),
      dmarc: verdict(receipt.dmarcVerdict),
    },
  };
}

/** Gmail's "forwarding confirmation" email: shown on the box, so the admin can confirm the forward. */
export interface ForwardingConfirmation {
  from: string;
  subject: string;
  receivedAt: string;
  /** The confirmation links in the email, for the admin to open. */
  links: string[];
  /** The confirmation code, when the email shows one. */
  code?: string;
}

const GMAIL_FORWARDING_SENDER = 'forwarding-noreply@google.com';

/** The confirmation in `mail` when it is Gmail's forwarding confirmation; undefined otherwise. */
export function forwardingConfirmation(mail: {
  from?: string;
  subject: string;
  text?: string;
  receivedAt: string;
}): ForwardingConfirmation | undefined {
  if (mail.from?.toLowerCase() !== GMAIL_FORWARDING_SENDER) return undefined;
  const text = mail.text ?? '';
  const links = [
    ...new Set(text.match(/https:\/\/mail(?:-settings)?\.google\.com\/[^\s<>")]+/g) ?? []),
  ].slice(0, 5);
  const code = text.match(/Confirmation code:\s*(\d{6,12})/i)?.[1] ?? mail.subject.match(/#(\d{6,12})/)?.[1];
  return {
    from: GMAIL_FORWARDING_SENDER,
    subject: mail.subject.slice(0, 300),
    receivedAt: mail.receivedAt,
    links,
    code,
  };
}
