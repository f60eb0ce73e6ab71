/** Bulk-email API function (Lambda entry point). */
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import { bulkFunction, bulkParts } from './app.ts';
import { bulkOptionsFromEnv } from './aws.ts';

const d = buildDeps(loadConfig());
export const handler = bulkFunction(d, bulkParts(d, bulkOptionsFromEnv(d)));
