/**
 * The inbox-poll function's routes besides its scheduled invocation: declarations only (see
 * lib/http/routes.ts); ./app.ts binds them.
 */
import { z } from 'zod';
import * as m from '#lib/domain/model';
import { emptyBody, responseSchemas } from '#lib/http/registry';
import { defineRoutes } from '#lib/http/routes';

const tag = 'Inbox';

/** What a poll run answers (lib/inbox/poll.ts PollOutcome). */
export const pollOutcomeView = z.object({
  status: z.enum(['succeeded', 'partial', 'failed', 'busy', 'skipped']),
  run: m.run.optional(),
  errorCount: z.number().optional(),
  reason: z.string().optional(),
  failure: z
    .object({
      kind: z.string(),
      message: z.string(),
      advice: z.string(),
      field: z.string().optional(),
      serverReply: z.string().optional(),
    })
    .optional(),
});
responseSchemas.add(pollOutcomeView, { id: 'PollOutcome' });

export const inboxPollRoutes = defineRoutes({
  'POST /email-boxes/{id}/poll': {
    tag,
    access: 'admin',
    summary: 'Poll the box now and answer with the run and its counts.',
    description:
      'Runs for at most 20 seconds (API Gateway answers within 29); the next run continues where this one stopped. 502 with `failure` in plain words when the mail server failed; 409 `box_busy` when a run of the box is already going.',
    body: emptyBody,
    response: pollOutcomeView,
    errors: [409, 502],
  },
  'POST /messages/{id}/reprocess': {
    tag,
    access: 'admin',
    summary: 'Import a quarantined message again (after a fix); it files as an import would.',
    description: 'A message that is not quarantined is refused with 400 naming `id`.',
    body: emptyBody,
    response: m.message,
  },
});
