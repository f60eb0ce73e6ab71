/**
 * The settings function over the HTTP edge for one test file: its own table, secret store and
 * captured output, and a record of every response so a file can prove no password ever left.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { type SettingsOptions, settingsFunction } from '#functions/settings/app';
import { settingsRoutes } from '#functions/settings/routes';
import type { Pop3Probe } from '#lib/settings/connection-test';
import { apiClient, type CallResult, captureOutput, type TestDeps, testDeps } from '#test/support/api';

export interface SettingsHarness {
  d: TestDeps;
  call: ReturnType<typeof apiClient>;
  /** Text of every response so far. */
  responses: string[];
  output: ReturnType<typeof captureOutput>;
  /** Secrets currently in the local store (files), for "nothing left behind" checks. */
  secretCount(): number;
  /** Asserts that none of `secrets` appears in any response or captured log line so far. */
  assertNeverLeaked(secrets: string[]): void;
}

/** A probe that must not be reached: tests that save with verify=false or Exchange boxes. */
export const unreachableProbe: Pop3Probe = async () => {
  throw new Error('the POP3 probe was called in a test that expected no connection test');
};

/**
 * `capture: false` for a second harness in the same file: the first one's capture already sees
 * everything, and nested spies on process.stdout would undo each other on restore.
 */
export async function settingsHarness(
  options: SettingsOptions = {},
  { capture = true }: { capture?: boolean } = {},
): Promise<SettingsHarness> {
  const d = await testDeps();
  const handler = settingsFunction(d, options);
  const raw = apiClient(handler, settingsRoutes, 'settings');
  const responses: string[] = [];
  const output = capture ? captureOutput() : { lines: [] as string[], text: () => '', restore() {} };
  const call: typeof raw = async (method, path, opts) => {
    const res: CallResult = await raw(method, path, opts);
    responses.push(res.text);
    return res;
  };
  const secretDir = join(d.dir, 'secrets');
  return {
    d,
    call,
    responses,
    output,
    secretCount: () => {
      try {
        return readdirSync(secretDir).filter((f) => f.endsWith('.secret')).length;
      } catch {
        return 0;
      }
    },
    assertNeverLeaked(secrets) {
      // A scan of nothing proves nothing.
      expect(responses.length, 'no response was recorded').toBeGreaterThan(0);
      const texts = [...responses, ...output.lines];
      for (const secret of secrets) {
        const hits = texts.filter((t) => t.includes(secret));
        expect(hits, `"${secret}" appeared in a response or log line`).toEqual([]);
      }
    },
  };
}

/** The field names of a 400/422 answer. */
export function fieldsOf(res: CallResult): string[] {
  return (res.body?.error?.fields ?? []).map((f: { field: string }) => f.field);
}

/** The message for `field` in a 400/422 answer. */
export function messageFor(res: CallResult, field: string): string | undefined {
  return res.body?.error?.fields?.find((f: { field: string }) => f.field === field)?.message;
}
