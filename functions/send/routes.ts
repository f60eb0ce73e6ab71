/** Route keys served by the send function (plain list; see functions/settings/routes.ts). */
export const sendRoutes: readonly string[] = [
  'POST /settings/company/email/test',
  'POST /users/{id}/email-settings/test',
  'POST /emails',
  'POST /emails/preview',
];
