/**
 * Route keys served by the settings function. A plain list with no imports, so that the CDK
 * stack and the local runner can read it without loading the handler.
 */
const crud = (base: string) => [
  `GET /${base}`,
  `POST /${base}`,
  `GET /${base}/{id}`,
  `PUT /${base}/{id}`,
  `DELETE /${base}/{id}`,
];

export const settingsRoutes: readonly string[] = [
  'GET /health',
  'GET /openapi.json',
  'GET /settings/company/email',
  'PUT /settings/company/email',
  'GET /users/{id}/email-settings',
  'PUT /users/{id}/email-settings',
  'DELETE /users/{id}/email-settings',
  'GET /users/{id}/email-settings/effective',
  ...crud('signatures'),
  ...crud('departments'),
  ...crud('users'),
  ...crud('task-types'),
  ...crud('task-statuses'),
  ...crud('email-types'),
  ...crud('email-statuses'),
  ...crud('form-letters'),
  ...crud('clients'),
  ...crud('email-boxes'),
  'POST /email-boxes/{id}/test',
  'GET /email-boxes/{id}/schedule',
  'GET /email-boxes/{id}/runs',
  'GET /clients/{id}/messages',
  'GET /messages',
  'GET /messages/{id}',
  'GET /tasks',
  'GET /sender-identities',
  'POST /sender-identities',
  'GET /sender-identities/{id}',
  'DELETE /sender-identities/{id}',
  'POST /sender-identities/{id}/verify',
];

/** Routes that answer without a token. */
export const settingsPublicRoutes: readonly string[] = ['GET /health', 'GET /openapi.json'];
