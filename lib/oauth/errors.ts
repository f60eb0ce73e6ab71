/**
 * The OAuth2 error the edge needs without the service (and oauth4webapi with it): a function's
 * cold start loads the service on first use (lib/oauth/from-deps.ts).
 */
import { AppError } from '#lib/domain/errors';

/** The provider is not set up in this deployment (no client id): 404, naming the provider. */
export class ProviderNotConfiguredError extends AppError {
  override readonly name = 'ProviderNotConfiguredError';
  override readonly status = 404;
  override readonly code = 'not_found';
  constructor(provider: string) {
    super(
      `OAuth2 sign-in with "${provider}" is not configured here (OAUTH_${provider.toUpperCase()}_CLIENT_ID).`,
      {
        field: 'provider',
      },
    );
  }
}
