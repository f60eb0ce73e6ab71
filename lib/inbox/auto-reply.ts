/**
 * Auto-replies through the send service: the box's form letter, merge fields as in any send,
 * the company's effective sending settings, threaded under the incoming message, and marked
 * `Auto-Submitted: auto-replied` so that other systems do not answer it (RFC 3834).
 */
import { sendEmailInput } from '#lib/send/schemas';
import type { SendService } from '#lib/send/service';
import type { AutoReplyRequest } from './poll.ts';

/** Sends as no particular user, so the company's settings and signature apply. */
export const AUTO_REPLY_SENDER = 'studio-mail:auto-reply';

export class AutoReplyFailedError extends Error {
  override readonly name = 'AutoReplyFailedError';
}

export function autoReplier(service: SendService) {
  return async function sendAutoReply({ studioId, box, inbound, to }: AutoReplyRequest): Promise<string> {
    if (!box.autoReplyFormLetterId)
      throw new AutoReplyFailedError('the box names no form letter for auto-replies');
    const input = sendEmailInput.parse({
      to,
      formLetterId: box.autoReplyFormLetterId,
      inReplyTo: inbound.id,
    });
    const prepared = await service.prepare(studioId, AUTO_REPLY_SENDER, input);
    prepared.outgoing.headers = { 'Auto-Submitted': 'auto-replied', 'X-Auto-Response-Suppress': 'All' };
    const delivery = await service.deliver(prepared);
    if (!delivery.ok)
      throw new AutoReplyFailedError(`${delivery.diagnosis.problem} ${delivery.diagnosis.advice}`);
    return delivery.id;
  };
}
