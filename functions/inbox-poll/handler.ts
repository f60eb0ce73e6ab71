/**
 * Inbox poller (Lambda entry point). Invoked by its box's EventBridge schedule (input: studio, box,
 * window and the scheduled time) or through the API (run now, reprocess a quarantined message).
 */
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import { inboxPollFunction } from './app.ts';

export const handler = inboxPollFunction(buildDeps(loadConfig()));
