/**
 * Every API function's route table, by function name: the one list CDK builds API Gateway from,
 * the local runner routes by and the OpenAPI document describes. Declarations only (no handlers).
 */
import { bulkRoutes } from './bulk/routes.ts';
import { inboxPollRoutes } from './inbox-poll/routes.ts';
import { sendRoutes } from './send/routes.ts';
import { settingsRoutes } from './settings/routes.ts';

export const apiTables = {
  settings: settingsRoutes,
  send: sendRoutes,
  'inbox-poll': inboxPollRoutes,
  bulk: bulkRoutes,
} as const;

export type ApiFunctionName = keyof typeof apiTables;
