/** Send function (Lambda entry point): Send Test Email, single sends and previews. */
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import { transportPolicyFromEnv } from '#lib/send/transport';
import { sendFunction } from './app.ts';

export const handler = sendFunction(buildDeps(loadConfig()), { policy: transportPolicyFromEnv(process.env) });
