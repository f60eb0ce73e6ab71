/** Request and response shapes of the OAuth2 sign-in routes (functions/settings/routes.ts). */
import * as z from 'zod';
import { oauthProvider } from '#lib/domain/model';
import { responseSchemas } from '#lib/http/registry';

export const providerParams = z.object({
  provider: oauthProvider.describe('google (Gmail) or microsoft (Microsoft 365).'),
});

export const startQuery = z.object({
  boxId: z
    .string()
    .min(1, { error: 'is required: the id of the email box to sign in (or give settings).' })
    .optional()
    .describe('The email box to sign in (its connection.authentication is oauth2 with this provider).'),
  settings: z
    .enum(['company', 'user'], { error: 'must be "company" or "user".' })
    .optional()
    .describe(
      "Instead of a box: the send settings to sign in, the company's or a user's (userId; default the caller). Their transport has authentication oauth2 (smtp or gmail) or is graph with authentication oauth2.",
    ),
  userId: z.string().min(1).max(64).optional().describe('With settings=user: whose send settings.'),
  redirect: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true')
    .describe('true: answer 302 to the provider instead of the URL as JSON (for a browser link).'),
});

/** What the provider sends back; extra parameters (iss, scope, session_state, …) are kept. */
export const callbackQuery = z.looseObject({
  code: z.string().optional().describe('The authorization code.'),
  state: z
    .string()
    .optional()
    .describe('The state given at start; signed, bound to the box, valid 10 minutes.'),
  error: z.string().optional().describe("The provider's refusal, e.g. access_denied."),
  error_description: z.string().optional(),
  iss: z.string().optional().describe('The issuer (RFC 9207), checked when the provider sends it.'),
});

export const startView = z.object({
  authorizationUrl: z.string().describe("Send the admin's browser here."),
  expiresAt: z.string().describe('The sign-in must be finished by then.'),
});
responseSchemas.add(startView, { id: 'OAuthStart' });

export const callbackView = z.object({
  ok: z.literal(true),
  boxId: z.string().optional(),
  settings: z.enum(['company', 'user']).optional(),
  userId: z.string().optional(),
  provider: oauthProvider,
  message: z.string(),
});
responseSchemas.add(callbackView, { id: 'OAuthCallback' });
