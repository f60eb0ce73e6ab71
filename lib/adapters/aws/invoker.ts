import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { AsyncInvoker } from '#lib/ports/index';

/**
 * Asynchronous Lambda invoke (`InvocationType: 'Event'`): Lambda queues the event and answers
 * 202 at once; the function's async settings (retries, on-failure queue) apply.
 */
export class LambdaInvoker implements AsyncInvoker {
  constructor(
    private readonly client: LambdaClient,
    private readonly functionName: string,
  ) {}

  async invoke(payload: Record<string, unknown>): Promise<void> {
    const out = await this.client.send(
      new InvokeCommand({
        FunctionName: this.functionName,
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify(payload)),
      }),
    );
    if (out.StatusCode !== 202)
      throw new Error(`Lambda did not queue the invocation (status ${out.StatusCode}).`);
  }
}
