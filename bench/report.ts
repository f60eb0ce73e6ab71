import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface BenchResult {
  /** Bench name; also the file name under bench/results/. */
  name: string;
  /** Unit of `baseline` and `project`, e.g. "ms", "messages/s", "bytes". */
  unit: string;
  baseline: number;
  project: number;
  /** Any further figures worth keeping (each with its unit in the key name). */
  extra?: Record<string, number | string>;
  /** One sentence on what the ratio means (e.g. "project ÷ bare nodemailer; lower is better"). */
  meaning: string;
}

/** Writes bench/results/NAME.json and prints the same figures in words. */
export function report(result: BenchResult): void {
  const ratio = result.baseline === 0 ? Number.NaN : result.project / result.baseline;
  const record = {
    name: result.name,
    unit: result.unit,
    baseline: round(result.baseline),
    project: round(result.project),
    ratio: round(ratio),
    at: new Date().toISOString(),
    meaning: result.meaning,
    ...result.extra,
  };
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}${result.name}.json`, `${JSON.stringify(record, null, 2)}\n`);
  console.log(
    `${result.name}: project ${record.project} ${result.unit}, baseline ${record.baseline} ${result.unit}, ` +
      `ratio ${record.ratio} (${result.meaning}).`,
  );
  for (const [k, v] of Object.entries(result.extra ?? {})) console.log(`  ${k}: ${v}`);
  console.log(`  written to bench/results/${result.name}.json`);
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
