/** Settings API: company and user email settings, reference data, email boxes (API Gateway v2). */
import { deps } from '#lib/app/deps';
import { httpApi } from '#lib/http/api';
import { settingsHandlers } from './app.ts';
import { settingsPublicRoutes } from './routes.ts';

const d = deps();

export const handler = httpApi(settingsHandlers(d), {
  logger: d.logger,
  studioClaim: d.config.studioClaim,
  publicRoutes: [...settingsPublicRoutes],
});
