import type { Deps } from '#lib/app/deps';
import { checkHealth } from '#lib/app/health';
import type { RouteHandler } from '#lib/http/api';

/** Route key → handler for the settings function. Each handler: parse → domain → result. */
export function settingsHandlers(d: Deps): Record<string, RouteHandler> {
  return {
    'GET /health': async () => {
      const health = await checkHealth(d);
      return { status: health.status === 'ok' ? 200 : 503, body: health };
    },
  };
}
