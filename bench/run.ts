/**
 * `npm run bench -- NAME` runs bench/NAME.ts. Each bench compares the project against a baseline
 * measured in the same run and reports through `report()` in bench/report.ts.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(here)
  .filter(
    (f) =>
      f.endsWith('.ts') &&
      !['run.ts', 'report.ts', 'cost.ts', 'inbox-import.ts', 'inbox-floor.ts'].includes(f),
  )
  .map((f) => f.replace(/\.ts$/, ''));

const name = process.argv[2];
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME   (NAME is one of: ${available.join(', ')})`);
  process.exit(2);
}
const mod = (await import(pathToFileURL(`${here}${name}.ts`).href)) as { main: () => Promise<void> };
await mod.main();
