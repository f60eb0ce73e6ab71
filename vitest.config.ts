import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'lib/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Two cores here; more workers only fight over them and DynamoDB Local.
    maxWorkers: 2,
    // CI also keeps a JSON report, from which .ci/run prints its closing "N passed, N failed" line.
    reporters: process.env.CI
      ? ['default', ['json', { outputFile: '.local/test-report.json' }]]
      : ['default'],
    // Memory-bound tests measure what is retained, after a forced collection. V8 frees the backing
    // stores of dead Buffers on a background thread: on a busy machine `arrayBuffers` still counted
    // tens of MB of dead ones right after gc() (a 2 MB import read as 27 MB). Sweeping them in the
    // collection itself makes the figure what is really held.
    execArgv: ['--expose-gc', '--no-concurrent-array-buffer-sweeping'],
    // Metrics are asserted through spies; their EMF lines would only clutter the output.
    env: { POWERTOOLS_METRICS_DISABLED: 'true' },
  },
});
