import type { Deps } from '#lib/app/deps';
import { lazyPort } from '#lib/app/lazy';
import { oauthSettingsFromEnv } from './providers.ts';
import type { OAuthService } from './service.ts';

/**
 * The OAuth2 service over the function's dependencies, configured from OAUTH_* in `env`;
 * undefined when no provider is configured. One per process: its token cache is per process. The
 * service (and oauth4webapi, ~35 KB together) is imported by its first call, not at cold start:
 * every method of it is async.
 */
export function oauthFromEnv(d: Deps, env: Record<string, string | undefined>): OAuthService | undefined {
  const settings = oauthSettingsFromEnv(env);
  if (!settings) return undefined;
  return lazyPort<OAuthService>(
    async () =>
      new (await import('./service.ts')).OAuthService(
        {
          repos: d.repos,
          secrets: d.secrets,
          log: d.logger,
          now: d.now,
          mail: d.ses,
          notificationSender: d.config.notificationSender,
        },
        settings,
      ),
  );
}
