/** The bulk queue in AWS: an SQS standard queue (with a DLQ by redrive policy, see infra/). */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { BulkMessage } from '../model.ts';
import type { BulkQueue } from '../ports.ts';

export class SqsQueue implements BulkQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(messages: BulkMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      let entries = messages
        .slice(i, i + 10)
        .map((m, j) => ({ Id: String(j), MessageBody: JSON.stringify(m) }));
      for (let attempt = 0; entries.length > 0; attempt++) {
        if (attempt >= 5) throw new Error(`SQS refused ${entries.length} bulk-email messages.`);
        if (attempt > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
        const out = await this.client.send(
          new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }),
        );
        const failed = new Set((out.Failed ?? []).map((f) => f.Id));
        entries = entries.filter((e) => failed.has(e.Id));
      }
    }
  }
}
