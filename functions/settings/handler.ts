/** Settings API (Lambda entry point): company and user email settings, reference data, email boxes. */
import { buildDeps } from '#lib/app/deps';
import { loadConfig } from '#lib/config';
import { settingsFunction } from './app.ts';

export const handler = settingsFunction(buildDeps(loadConfig()));
