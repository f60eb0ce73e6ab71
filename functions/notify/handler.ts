/**
 * Notify (Lambda entry point): emails a box's notification address about its poll outcomes
 * (EventBridge rule on `studio-mail.inbox-poll` events). Failures are thrown: one Lambda retry,
 * then the DLQ.
 */
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import { notifyFunction } from './app.ts';

export const handler = notifyFunction(buildDeps(loadConfig()));
