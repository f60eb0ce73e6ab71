/**
 * Composition root, part two: every function's Lambda handler over one set of dependencies, for
 * the places that run them all in one process (`npm start`, end-to-end tests). A Lambda entry
 * point calls only its own factory, so its bundle holds only its own function.
 */
import type { Deps } from '#lib/app/deps';
import {
  type BulkOptions,
  bulkEventsFunction,
  bulkFunction,
  bulkParts,
  bulkWorkerFunction,
} from './bulk/app.ts';
import { type InboxPollOptions, inboxPollFunction } from './inbox-poll/app.ts';
import { notifyFunction } from './notify/app.ts';
import { type SendHandlerOptions, sendFunction } from './send/app.ts';
import { type SettingsOptions, settingsFunction } from './settings/app.ts';

export interface FunctionOptions {
  settings?: SettingsOptions;
  send?: SendHandlerOptions;
  inboxPoll?: InboxPollOptions;
  bulk?: BulkOptions;
}

export function composeFunctions(d: Deps, options: FunctionOptions = {}) {
  // Locally the in-process queue starts delivering to the worker at once, as SQS would.
  const bulk = bulkParts(d, { consume: true, ...options.bulk });
  return {
    bulk: bulkFunction(d, bulk),
    'bulk-worker': bulkWorkerFunction(d, bulk),
    'bulk-events': bulkEventsFunction(d, bulk),
    settings: settingsFunction(d, options.settings),
    send: sendFunction(d, options.send),
    'inbox-poll': inboxPollFunction(d, options.inboxPoll),
    notify: notifyFunction(d),
  };
}

export type Functions = ReturnType<typeof composeFunctions>;
