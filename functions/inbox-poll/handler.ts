/**
 * Inbox poller (Lambda entry point). Invoked by its box's EventBridge schedule (input: studio, box,
 * window and the scheduled time), through the API (run now, reprocess a quarantined message) and by
 * itself, asynchronously, to run a poll the API started or carry on a run whose budget ran out.
 */
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import { inboxPollFunction } from './app.ts';

export const handler = inboxPollFunction(buildDeps(loadConfig()));
