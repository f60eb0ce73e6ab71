/** Bulk-email worker (Lambda entry point): SQS batches of the bulk queue. */
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import { bulkParts, bulkWorkerFunction } from './app.ts';
import { bulkOptionsFromEnv } from './aws.ts';

const d = buildDeps(loadConfig());
export const handler = bulkWorkerFunction(d, bulkParts(d, bulkOptionsFromEnv(d)));
