import type { Deps } from '#lib/app/deps';
import { oauthSettingsFromEnv } from './providers.ts';
import { OAuthService } from './service.ts';

/**
 * The OAuth2 service over the function's dependencies, configured from OAUTH_* in `env`;
 * undefined when no provider is configured. One per process: its token cache is per process.
 */
export function oauthFromEnv(d: Deps, env: Record<string, string | undefined>): OAuthService | undefined {
  const settings = oauthSettingsFromEnv(env);
  if (!settings) return undefined;
  return new OAuthService(
    {
      repos: d.repos,
      secrets: d.secrets,
      log: d.logger,
      now: d.now,
      mail: d.ses,
      notificationSender: d.config.notificationSender,
    },
    settings,
  );
}
