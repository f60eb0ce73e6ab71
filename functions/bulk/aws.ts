/**
 * The bulk parts' AWS adapters from the function's environment (set by infra/). Each adapter and
 * its SDK client (SQS, Scheduler, SES, S3: ~240 KB together) is imported on first use through
 * lazyPort, so the API's cold start compiles none of them (docs/performance.md).
 */
import type { Deps } from '#lib/app/deps';
import { lazyPort } from '#lib/app/lazy';
import type { UploadUrls } from '#lib/bulk/attachments';
import type { BulkQueue, JobTimer, ProviderQuota } from '#lib/bulk/ports';
import { transportPolicyFromEnv } from '#lib/send/transport';
import type { BulkOptions } from './app.ts';

export function bulkOptionsFromEnv(d: Deps, env: NodeJS.ProcessEnv = process.env): BulkOptions {
  const region = d.config.region;
  const queueUrl = env.BULK_QUEUE_URL ?? '';
  return {
    queue: lazyPort<BulkQueue>(async () => {
      const [{ SQSClient }, { SqsQueue }] = await Promise.all([
        import('@aws-sdk/client-sqs'),
        import('#lib/bulk/adapters/sqs-queue'),
      ]);
      return new SqsQueue(new SQSClient({ region }), queueUrl);
    }),
    timer: lazyPort<JobTimer>(async () => {
      const [{ SchedulerClient }, { AwsTimer }] = await Promise.all([
        import('@aws-sdk/client-scheduler'),
        import('#lib/bulk/adapters/aws-timer'),
      ]);
      return new AwsTimer(new SchedulerClient({ region }), {
        group: env.BULK_SCHEDULE_GROUP ?? d.config.scheduleGroup,
        queueArn: env.BULK_QUEUE_ARN ?? '',
        roleArn: env.BULK_SCHEDULER_ROLE_ARN ?? '',
        deadLetterArn: env.BULK_DLQ_ARN || undefined,
      });
    }),
    quota: lazyPort<ProviderQuota>(async () => {
      const { SesQuota } = await import('#lib/bulk/adapters/ses-quota');
      // The SDK's own retries are fine here: GetAccount only reads.
      return new SesQuota(
        async () => new (await import('@aws-sdk/client-sesv2')).SESv2Client({ region }),
        (error) =>
          d.logger.warn('SES GetAccount failed; sending at 1 per second', { errorMessage: String(error) }),
      );
    }),
    linkKey: () => d.secrets.get(env.BULK_LINK_KEY_ARN ?? ''),
    ...(env.PUBLIC_API_URL ? { publicUrl: env.PUBLIC_API_URL.replace(/\/$/, '') } : {}),
    uploads: lazyPort<UploadUrls>(async () => {
      const [{ S3Client }, { S3Uploads }] = await Promise.all([
        import('@aws-sdk/client-s3'),
        import('#lib/bulk/adapters/s3-uploads'),
      ]);
      return new S3Uploads(new S3Client({ region }), d.config.blobBucket ?? '');
    }),
    policy: transportPolicyFromEnv(env),
  };
}
