/**
 * Notify: emails a box's notification address about its poll outcomes (EventBridge rule on
 * `studio-mail.inbox-poll` events). Failures are thrown: one Lambda retry, then the DLQ.
 */
import { deps } from '#lib/app/deps';
import { notifyHandler } from './app.ts';

export const handler = notifyHandler(deps());
