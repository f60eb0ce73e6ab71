/** The send function's routes: declarations only (see lib/http/routes.ts); ./app.ts binds them. */
import { defineRoutes } from '#lib/http/routes';
import { deliveryView, previewView, sendEmailInput, testEmailInput, testResultView } from '#lib/send/schemas';

const tag = 'Sending';
const idempotency =
  'Send an `Idempotency-Key` header to make a retry safe: the same key and request answer the stored outcome (header `idempotent-replayed: true`) and never send twice.';

export const sendRoutes = defineRoutes({
  'POST /settings/company/email/test': {
    tag,
    access: 'admin',
    summary: 'Send a test email with the company settings.',
    description: `200 when it went, 422 with a diagnosis (the field to fix, advice, the server's reply) when it did not. ${idempotency}`,
    body: testEmailInput,
    response: testResultView,
    errors: [422],
  },
  'POST /users/{id}/email-settings/test': {
    tag,
    access: 'self',
    summary: "Send a test email with the user's effective settings.",
    description: `As the company test, with what the user sends with. ${idempotency}`,
    body: testEmailInput,
    response: testResultView,
    errors: [422],
  },
  'POST /emails': {
    tag,
    access: 'user',
    summary: 'Send one email (a form letter to a client, or a subject and body), as the caller.',
    description: `200 when sent, 422 when the server or SES refused it for good, 502 when it may work later (the body carries the diagnosis). ${idempotency}`,
    body: sendEmailInput,
    response: deliveryView,
    errors: [422, 502],
  },
  'POST /emails/preview': {
    tag,
    access: 'user',
    summary: 'What `POST /emails` would send, merge fields filled in; sends nothing.',
    body: sendEmailInput,
    response: previewView,
  },
});
