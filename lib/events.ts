/**
 * Event names and detail types, declared once: the poller publishes them (lib/inbox/service.ts),
 * notify and the local bus subscribe to them, and CDK builds the EventBridge rule from them
 * (infra/stack.ts). Plain constants, so infra imports them without loading anything else.
 */
export const POLL_EVENT_SOURCE = 'studio-mail.inbox-poll';
export const POLL_SUCCEEDED = 'Inbox Poll Succeeded';
export const POLL_FAILED = 'Inbox Poll Failed';

/** The poll outcome events: one source, one detail type per outcome. */
export const pollOutcomeEvents = {
  source: POLL_EVENT_SOURCE,
  detailTypes: [POLL_SUCCEEDED, POLL_FAILED],
} as const;

/** A pushed message that reached no email box: kept under inbound/unrouted/ and reported. */
export const PUSH_UNROUTED = 'Inbound Mail Unrouted';
