/**
 * TEMPORARY (issue 11, until the one route table documents every function): the entries of the
 * send and poll operations of other functions in this function's OpenAPI document, so that the
 * reference page (/docs) lists how to send mail and poll a box. Documentation only: the send and
 * inbox-poll functions answer these routes.
 */
import { sendEmailInput } from '#lib/send/schemas';
import type { OperationDoc } from '#lib/settings/openapi';
import { requestSchemas } from '#lib/settings/schemas';

requestSchemas.add(sendEmailInput, { id: 'SendEmailInput' });

export const otherFunctionDocs: OperationDoc[] = [
  {
    key: 'POST /emails',
    tag: 'Sending',
    access: 'user',
    summary:
      'Send one email as the caller: typed, or a form letter with merge fields, to an address or a client.',
    description:
      'Send an `Idempotency-Key` header to make a retry safe: the same key answers the stored result instead of sending again. Served by the send function; docs/sending.md has the rules.',
    request: sendEmailInput,
    responseType: { contentType: 'application/json', description: 'The message as sent and recorded.' },
    errors: [502],
  },
  {
    key: 'POST /email-boxes/{id}/poll',
    tag: 'Email boxes',
    access: 'admin',
    summary: "Poll the box now, outside its schedule, and answer the run's outcome.",
    description: 'Served by the inbox-poll function; 409 `box_busy` while another poll of the box runs.',
    responseType: {
      contentType: 'application/json',
      description: 'The run: counts of imported, skipped and failed messages.',
    },
    errors: [409, 502],
  },
];
