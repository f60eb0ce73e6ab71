import { ValidationError } from '#lib/domain/errors';
import { ProviderNotConfiguredError } from '#lib/oauth/errors';
import type { OAuthService } from '#lib/oauth/service';
import { ok, type SettingsHandlers } from './common.ts';

type Keys = 'GET /oauth/{provider}/start' | 'GET /oauth/{provider}/callback';

/** OAuth2 sign-in of email boxes; without a configured service every provider answers 404. */
export const oauthHandlers = (service: OAuthService | undefined): Pick<SettingsHandlers, Keys> => {
  const need = (provider: string): OAuthService => {
    if (!service) throw new ProviderNotConfiguredError(provider);
    return service;
  };
  return {
    'GET /oauth/{provider}/start': async (req) => {
      const provider = req.params.provider as 'google' | 'microsoft';
      const { boxId, settings, userId } = req.query;
      if ((boxId === undefined) === (settings === undefined))
        throw ValidationError.field(
          boxId === undefined ? 'boxId' : 'settings',
          'give exactly one: boxId (an email box) or settings (company or user send settings).',
        );
      const result = await need(provider).start(
        req.caller.studioId,
        req.caller.userId,
        provider,
        settings === undefined
          ? (boxId as string)
          : {
              kind: 'send',
              owner:
                settings === 'company'
                  ? { kind: 'company' }
                  : { kind: 'user', userId: userId ?? req.caller.userId },
            },
      );
      return req.query.redirect
        ? { status: 302, headers: { location: result.authorizationUrl }, body: result }
        : ok(result);
    },
    'GET /oauth/{provider}/callback': async (req) => {
      const provider = req.params.provider as 'google' | 'microsoft';
      return ok(await need(provider).callback(provider, req.query as Record<string, string | undefined>));
    },
  };
};
