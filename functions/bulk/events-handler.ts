/** SES events (Lambda entry point): bounces, complaints, deliveries, opens and clicks via EventBridge. */
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import { bulkEventsFunction, bulkParts } from './app.ts';
import { bulkOptionsFromEnv } from './aws.ts';

const d = buildDeps(loadConfig());
export const handler = bulkEventsFunction(d, bulkParts(d, bulkOptionsFromEnv(d)));
