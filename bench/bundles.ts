/**
 * `npm run bench -- bundles`: bundles each Lambda function exactly as the stack does (the esbuild
 * options come from infra/constructs/studio-function.ts), plus a hello-world handler (baseline) and
 * a naive bundle of every entry (no minification, no tree shaking, CommonJS-first main fields), and
 * measures each bundle's size and its module-load time in a fresh Node process (minimum of RUNS).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BuildOptions, build } from 'esbuild';
import { esbuildOptions, functionEntry, functionNames } from '#infra/constructs/studio-function';
import { report } from './report.ts';

const RUNS = 7;

/** What the stack sets, so module initialisation sees a Lambda-like environment (no calls are made). */
const lambdaEnv = {
  AWS_REGION: 'eu-central-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  STUDIO_MAIL_ADAPTERS: 'aws',
  TABLE_NAME: 'bench-table',
  BLOB_BUCKET: 'bench-bucket',
  SECRET_PREFIX: 'studio-mail/',
  SES_CONFIGURATION_SET: 'bench',
  EVENT_BUS_NAME: 'bench-bus',
  SCHEDULE_GROUP: 'studio-mail',
  SCHEDULER_ROLE_ARN: 'arn:aws:iam::123456789012:role/bench',
  POLLER_ARN: 'arn:aws:lambda:eu-central-1:123456789012:function:bench',
  NOTIFICATION_SENDER: 'notifications@mail.example.com',
  STUDIO_CLAIM: 'custom:studioId',
  POWERTOOLS_METRICS_NAMESPACE: 'StudioMail',
  POWERTOOLS_SERVICE_NAME: 'bench',
  LOG_LEVEL: 'ERROR',
  POLL_BUDGET_MS: '270000',
};

interface Measured {
  bytes: number;
  mapBytes: number;
  loadMs: number;
  error?: string;
}

function naiveOptions(entry: string, outfile: string): BuildOptions {
  const project = esbuildOptions(entry, outfile);
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: project.target!,
    banner: project.banner!,
    // What a first attempt looks like: everything bundled as is.
    minify: false,
    treeShaking: false,
    sourcemap: false,
    logLevel: 'silent',
  };
}

function size(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Milliseconds to `import()` the bundle in a fresh `node --enable-source-maps` process, best of RUNS. */
function loadTime(file: string): { ms: number; error?: string } {
  const script =
    'const t0 = performance.now();' +
    `await import(${JSON.stringify(pathToFileURL(file).href)});` +
    'process.stdout.write(String(performance.now() - t0));';
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < RUNS; i++) {
    const run = spawnSync(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH ?? '', ...lambdaEnv },
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (run.status !== 0) {
      return { ms: Number.NaN, error: (run.stderr || run.error?.message || 'failed').split('\n')[0] };
    }
    best = Math.min(best, Number(run.stdout.trim()));
  }
  return { ms: best };
}

async function bundleAndMeasure(options: BuildOptions): Promise<Measured> {
  const outfile = options.outfile!;
  mkdirSync(join(outfile, '..'), { recursive: true });
  await build(options);
  const load = loadTime(outfile);
  return {
    bytes: size(outfile),
    mapBytes: size(`${outfile}.map`),
    loadMs: load.ms,
    ...(load.error ? { error: load.error } : {}),
  };
}

const round = (n: number) => Math.round(n * 100) / 100;
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

export async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'studio-mail-bundles-'));
  try {
    const helloEntry = join(dir, 'hello.ts');
    writeFileSync(helloEntry, "export const handler = async () => ({ statusCode: 200, body: 'hello' });\n");
    const hello = await bundleAndMeasure(esbuildOptions(helloEntry, join(dir, 'hello', 'index.mjs')));

    const results: Record<string, { project: Measured; naive: Measured }> = {};
    for (const name of functionNames) {
      const entry = functionEntry(name);
      const project = await bundleAndMeasure(esbuildOptions(entry, join(dir, name, 'index.mjs')));
      const naive = await bundleAndMeasure(naiveOptions(entry, join(dir, `${name}-naive`, 'index.mjs')));
      results[name] = { project, naive };
    }

    const loaded = Object.entries(results).filter(([, r]) => Number.isFinite(r.project.loadMs));
    const [slowest, slowestResult] = loaded.reduce((a, b) =>
      b[1].project.loadMs > a[1].project.loadMs ? b : a,
    );

    const extra: Record<string, number | string> = {
      runs_per_measurement: RUNS,
      node: process.version,
      slowest_function: slowest,
      hello_bytes: hello.bytes,
    };
    console.log(`Module-load time in a fresh node ${process.version} process, best of ${RUNS}:`);
    console.log(`  hello-world baseline: ${kib(hello.bytes)}, loads in ${round(hello.loadMs)} ms`);
    for (const [name, { project, naive }] of Object.entries(results)) {
      extra[`${name}_bytes`] = project.bytes;
      extra[`${name}_map_bytes`] = project.mapBytes;
      extra[`${name}_load_ms`] = round(project.loadMs);
      extra[`${name}_naive_bytes`] = naive.bytes;
      extra[`${name}_naive_load_ms`] = round(naive.loadMs);
      if (project.error) extra[`${name}_load_error`] = project.error;
      if (naive.error) extra[`${name}_naive_load_error`] = naive.error;
      console.log(
        `  ${name}: ${kib(project.bytes)} (+${kib(project.mapBytes)} source map), loads in ` +
          `${round(project.loadMs)} ms; naive bundle ${kib(naive.bytes)}, loads in ${round(naive.loadMs)} ms`,
      );
    }
    report({
      name: 'bundles',
      unit: 'ms',
      baseline: hello.loadMs,
      project: slowestResult.project.loadMs,
      extra,
      meaning: `module-load time of the slowest function bundle (${slowest}) ÷ a hello-world bundle, fresh node process; lower is better`,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
