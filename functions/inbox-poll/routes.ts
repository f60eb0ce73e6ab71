/**
 * The inbox-poll function's routes besides its scheduled invocation: declarations only (see
 * lib/http/routes.ts); ./app.ts binds them.
 */
import * as m from '#lib/domain/model';
import { emptyBody } from '#lib/http/registry';
import { defineRoutes } from '#lib/http/routes';
import { pollStarted } from '#lib/settings/schemas';

const tag = 'Inbox';

export const inboxPollRoutes = defineRoutes({
  'POST /email-boxes/{id}/poll': {
    tag,
    access: 'admin',
    status: 202,
    summary:
      'Poll the box now: answers at once with the run id; the run goes on until the mailbox is drained.',
    description:
      'The run is recorded `running` before the answer; follow it with GET /email-boxes/{id}/runs/{runId} (status and live counts). A run whose time budget runs out is carried on by a next invocation under the same id. 409 `box_busy` while another run holds the box; 502 when the poller could not be started.',
    body: emptyBody,
    response: pollStarted,
    errors: [409, 502],
  },
  'POST /messages/{id}/reprocess': {
    tag,
    access: 'admin',
    summary: 'Import a quarantined message again (after a fix); it files as an import would.',
    description:
      "Restores the box's department, user, email type and status, creates the task when one is due and applies the auto-reply rules (never for mail dated more than a day ago). A message that is not quarantined is refused with 400 naming `id`; 409 when two reprocesses race.",
    body: emptyBody,
    response: m.message,
  },
});
