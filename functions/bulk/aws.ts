/** The bulk parts' AWS adapters from the function's environment (set by infra/). */

import { S3Client } from '@aws-sdk/client-s3';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Deps } from '#lib/app/deps';
import { AwsTimer } from '#lib/bulk/adapters/aws-timer';
import { S3Uploads } from '#lib/bulk/adapters/s3-uploads';
import { SesQuota } from '#lib/bulk/adapters/ses-quota';
import { SqsQueue } from '#lib/bulk/adapters/sqs-queue';
import { transportPolicyFromEnv } from '#lib/send/transport';
import type { BulkOptions } from './app.ts';

export function bulkOptionsFromEnv(d: Deps, env: NodeJS.ProcessEnv = process.env): BulkOptions {
  const region = d.config.region;
  const queueUrl = env.BULK_QUEUE_URL ?? '';
  return {
    queue: new SqsQueue(new SQSClient({ region }), queueUrl),
    timer: new AwsTimer(new SchedulerClient({ region }), {
      group: env.BULK_SCHEDULE_GROUP ?? d.config.scheduleGroup,
      queueArn: env.BULK_QUEUE_ARN ?? '',
      roleArn: env.BULK_SCHEDULER_ROLE_ARN ?? '',
      deadLetterArn: env.BULK_DLQ_ARN || undefined,
    }),
    // The SDK's own retries are fine here: GetAccount only reads.
    quota: new SesQuota(
      async () => new SESv2Client({ region }),
      (error) =>
        d.logger.warn('SES GetAccount failed; sending at 1 per second', { errorMessage: String(error) }),
    ),
    linkKey: () => d.secrets.get(env.BULK_LINK_KEY_ARN ?? ''),
    ...(env.PUBLIC_API_URL ? { publicUrl: env.PUBLIC_API_URL.replace(/\/$/, '') } : {}),
    uploads: new S3Uploads(new S3Client({ region }), d.config.blobBucket ?? ''),
    policy: transportPolicyFromEnv(env),
  };
}
