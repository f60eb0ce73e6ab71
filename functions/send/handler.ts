/** Send function: Send Test Email, single sends and previews (API Gateway v2). */
import { deps } from '#lib/app/deps';
import { httpApi } from '#lib/http/api';
import { transportPolicyFromEnv } from '#lib/send/transport';
import { sendHandlers } from './app.ts';

const d = deps();

export const handler = httpApi(sendHandlers(d, { policy: transportPolicyFromEnv(process.env) }), {
  logger: d.logger,
  studioClaim: d.config.studioClaim,
});
