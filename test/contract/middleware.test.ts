/**
 * All four functions go through the same middleware (lib/http/api.ts `lambdaHandler`): every log
 * line of an invocation carries the request id and the cold-start flag, also for the scheduled
 * poller and notify, which API Gateway does not call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeFunctions, type Functions } from '#functions/compose';
import { lambdaContext } from '#local/http';
import { captureOutput, type TestDeps, testDeps } from '#test/support/api';

let d: TestDeps;
let fns: Functions;
let output: ReturnType<typeof captureOutput>;

beforeAll(async () => {
  d = await testDeps();
  fns = composeFunctions(d, {
    inboxPoll: { ports: { open: async () => Promise.reject(new Error('no POP3 here')) } as never },
  });
  output = captureOutput();
});

afterAll(() => output.restore());

/** The parsed log lines that carry `message`. */
function linesWith(message: string): Record<string, unknown>[] {
  return output.lines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.includes(message))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as Record<string, unknown>);
}

describe('the Lambda middleware', () => {
  it('logs a scheduled poll with the request id and the cold-start flag', async () => {
    // Prepare
    const context = lambdaContext('inbox-poll', 300_000);
    // Act
    await (fns['inbox-poll'] as unknown as (e: unknown, c: unknown) => Promise<unknown>)(
      { studioId: 'studio-1', boxId: 'no-such-box' },
      context,
    );
    // Assess
    const [line] = linesWith('scheduled poll finished');
    expect(line).toMatchObject({
      function_request_id: context.awsRequestId,
      cold_start: expect.any(Boolean),
    });
  });

  it('logs a notify invocation with the request id and the cold-start flag', async () => {
    // Prepare
    const context = lambdaContext('notify', 30_000);
    // Act
    const run = (fns.notify as unknown as (e: unknown, c: unknown) => Promise<unknown>)(
      { source: 'elsewhere' },
      context,
    );
    // Assess
    await expect(run).rejects.toThrow(/Expected an event from studio-mail.inbox-poll/);
    const [line] = linesWith('poll outcome not handled');
    expect(line).toMatchObject({
      function_request_id: context.awsRequestId,
      cold_start: expect.any(Boolean),
    });
  });
});
