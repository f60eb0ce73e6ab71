/**
 * SES sending events (the configuration set's event destination → EventBridge → the bulk events
 * function): bounces and complaints put the address on the studio's block list; delivery,
 * bounce, complaint, open and click are recorded on the bulk recipient the message tags name.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { MessageRepository } from '#lib/data/repositories';
import type { BlockList } from './blocks.ts';
import { fromTagValue } from './mailer.ts';
import type { DeliveryEvent } from './model.ts';
import type { BulkStore } from './store.ts';

/** The `detail` of an SES event as EventBridge delivers it (the fields used here). */
export interface SesEvent {
  eventType: string;
  mail: { messageId?: string; destination?: string[]; tags?: Record<string, string[]> };
  bounce?: { bounceType?: string; bouncedRecipients?: { emailAddress: string; diagnosticCode?: string }[] };
  complaint?: { complainedRecipients?: { emailAddress: string }[]; complaintFeedbackType?: string };
  delivery?: { timestamp?: string };
  open?: { timestamp?: string };
  click?: { timestamp?: string; link?: string };
}

export interface EventDeps {
  store: BulkStore;
  /** The message records on the clients: a bounce or complaint is noted on the sent email too. */
  messages?: Pick<MessageRepository, 'get' | 'save'>;
  blocks: BlockList;
  now: () => Date;
  logger: Pick<Logger, 'info' | 'warn'>;
}

const KINDS: Record<string, DeliveryEvent> = {
  Delivery: 'delivered',
  Bounce: 'bounced',
  Complaint: 'complained',
  Open: 'opened',
  Click: 'clicked',
};

export async function handleSesEvent(d: EventDeps, e: SesEvent): Promise<void> {
  const tag = (name: string) => {
    const v = e.mail.tags?.[name]?.[0];
    return v ? fromTagValue(v) : undefined;
  };
  const sid = tag('studio');
  const kind = KINDS[e.eventType];
  if (!sid || !kind) {
    d.logger.info('SES event ignored', { eventType: e.eventType, tagged: Boolean(sid) });
    return;
  }
  const at = d.now().toISOString();
  const jobId = tag('job');
  if (kind === 'bounced' && e.bounce?.bounceType === 'Permanent') {
    for (const r of e.bounce.bouncedRecipients ?? [])
      await d.blocks.block(sid, {
        address: r.emailAddress,
        reason: 'bounced',
        at,
        ...(r.diagnosticCode ? { detail: r.diagnosticCode.slice(0, 500) } : {}),
        ...(jobId ? { jobId } : {}),
      });
  }
  if (kind === 'complained') {
    for (const r of e.complaint?.complainedRecipients ?? [])
      await d.blocks.block(sid, {
        address: r.emailAddress,
        reason: 'complained',
        at,
        ...(e.complaint?.complaintFeedbackType ? { detail: e.complaint.complaintFeedbackType } : {}),
        ...(jobId ? { jobId } : {}),
      });
  }
  const key = keyFromTag(tag('rcpt') ?? '');
  // A transient bounce (mailbox full) is not a result yet: SES keeps trying.
  if (jobId && key && !(kind === 'bounced' && e.bounce?.bounceType !== 'Permanent')) {
    const first = await d.store.addEvent(sid, jobId, key, kind, at, e.click?.link);
    if (first && (kind === 'bounced' || kind === 'complained') && d.messages) {
      const recordId = (await d.store.recipient(sid, jobId, key))?.recordId;
      const record = recordId ? await d.messages.get(sid, recordId) : undefined;
      const words = e.bounce?.bouncedRecipients?.[0]?.diagnosticCode;
      if (record)
        await d.messages.save(sid, {
          ...record,
          error:
            kind === 'bounced'
              ? `Bounced${words ? `: ${words}` : '.'}`.slice(0, 1000)
              : 'The recipient marked it as spam.',
        });
    }
  }
}

/** `R-00001-000002` (the tag) → `R#00001#000002` (the recipient key). */
export function keyFromTag(tag: string): string | undefined {
  const m = /^R-(\d{5})-(\d{6})$/.exec(tag);
  return m ? `R#${m[1]}#${m[2]}` : undefined;
}
