/** SES events (Lambda entry point): bounces, complaints, deliveries, opens and clicks via EventBridge. */

import { bulkEventsFunction, bulkParts } from '#functions/bulk/app';
import { bulkOptionsFromEnv } from '#functions/bulk/aws';
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';

const d = buildDeps(loadConfig());
export const handler = bulkEventsFunction(d, bulkParts(d, bulkOptionsFromEnv(d)));
