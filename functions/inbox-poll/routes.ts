/**
 * Route keys served by the inbox-poll function besides its scheduled invocation
 * (plain list; see functions/settings/routes.ts).
 */
export const inboxPollRoutes: readonly string[] = [
  'POST /email-boxes/{id}/poll',
  'POST /messages/{id}/reprocess',
];
