/** Bulk-email worker (Lambda entry point): SQS batches of the bulk queue. */

import { bulkParts, bulkWorkerFunction } from '#functions/bulk/app';
import { bulkOptionsFromEnv } from '#functions/bulk/aws';
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';

const d = buildDeps(loadConfig());
export const handler = bulkWorkerFunction(d, bulkParts(d, bulkOptionsFromEnv(d)));
