/**
 * Composition root, part one: the adapters, built once per process from Config. Nothing reads them
 * from a module-level variable: each Lambda entry point (functions/<fn>/handler.ts) calls
 * `buildDeps(loadConfig())` and hands the result to its function's factory; `npm start` and the
 * tests call `buildDeps` with their own overrides (shared scheduler and bus, a table per test file)
 * and the same factories through `composeFunctions` (functions/compose.ts).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { awsClients } from '#lib/adapters/aws/clients';
import { LocalBlobStore } from '#lib/adapters/local/blobs';
import { InProcessEventBus } from '#lib/adapters/local/events';
import { LocalIdentities } from '#lib/adapters/local/identities';
import { InProcessInvoker } from '#lib/adapters/local/invoker';
import { InProcessScheduler } from '#lib/adapters/local/scheduler';
import { LocalSecretStore } from '#lib/adapters/local/secrets';
import type { SmtpOptions } from '#lib/adapters/mail';
import type { Config } from '#lib/config';
import { makeRepositories, type Repositories } from '#lib/data/repositories';
import { Table } from '#lib/data/table';
import { createLogger } from '#lib/logger';
import { createMetrics } from '#lib/metrics';
import type {
  AsyncInvoker,
  BlobStore,
  EmailIdentities,
  EventPublisher,
  MailTransport,
  Scheduler,
  SecretStore,
} from '#lib/ports/index';
import { lazyPort, lazyTransport } from './lazy.ts';

export interface Deps {
  config: Config;
  repos: Repositories;
  secrets: SecretStore;
  blobs: BlobStore;
  scheduler: Scheduler;
  events: EventPublisher;
  /** Starts the inbox poller without waiting (a manual poll, a run's continuation). */
  invoker: AsyncInvoker;
  /** The managed sending service (SES, or the local SES in `npm start`). */
  ses: () => MailTransport;
  smtp: (options: SmtpOptions) => MailTransport;
  /** SES sender identities (the local twin keeps them in the table). */
  identities: EmailIdentities;
  logger: Logger;
  metrics: Metrics;
  now: () => Date;
  /** Extra parts reported by GET /health (the local runner adds its servers). */
  healthChecks: Record<string, () => Promise<void>>;
}

export function buildDeps(config: Config, overrides: Partial<Deps> = {}): Deps {
  const aws = awsClients(config);
  const local = config.adapters === 'local';
  const repos = overrides.repos ?? makeRepositories(new Table(aws.dynamo(), config.tableName));
  // AWS adapters (and nodemailer) are imported on first use: see lib/app/lazy.ts.
  const secrets = (): SecretStore =>
    local
      ? new LocalSecretStore(config.secretDir, config.secretPrefix)
      : lazyPort(async () => {
          const { AwsSecretStore } = await import('#lib/adapters/aws/secrets');
          return new AwsSecretStore(await aws.secrets(), config.secretPrefix);
        });
  const blobs = (): BlobStore =>
    local || !config.blobBucket
      ? new LocalBlobStore(config.blobDir)
      : lazyPort(async () => {
          const { S3BlobStore } = await import('#lib/adapters/aws/blobs');
          return new S3BlobStore(await aws.s3(), config.blobBucket ?? '');
        });
  const scheduler = (): Scheduler =>
    local
      ? new InProcessScheduler()
      : lazyPort(async () => {
          const { AwsScheduler } = await import('#lib/adapters/aws/scheduler');
          return new AwsScheduler(await aws.scheduler(), {
            group: config.scheduleGroup,
            targetArn: config.pollerArn ?? '',
            roleArn: config.schedulerRoleArn ?? '',
            deadLetterArn: process.env.SCHEDULE_DLQ_ARN || undefined,
          });
        });
  const events = (): EventPublisher =>
    local
      ? new InProcessEventBus()
      : lazyPort(async () => {
          const { EventBridgePublisher } = await import('#lib/adapters/aws/events');
          return new EventBridgePublisher(await aws.events(), config.eventBusName);
        });
  const invoker = (): AsyncInvoker =>
    local
      ? new InProcessInvoker()
      : lazyPort(async () => {
          const { LambdaInvoker } = await import('#lib/adapters/aws/invoker');
          // The poller invokes itself (AWS_LAMBDA_FUNCTION_NAME is set by Lambda); others name it.
          const target = config.pollerArn ?? process.env.AWS_LAMBDA_FUNCTION_NAME ?? '';
          return new LambdaInvoker(await aws.lambda(), target);
        });
  const identities = (): EmailIdentities =>
    local
      ? new LocalIdentities(repos.table)
      : lazyPort(async () => {
          const { SesIdentities } = await import('#lib/adapters/aws/identities');
          return new SesIdentities(await aws.ses(), config.region, config.accountId);
        });
  let sesInstance: MailTransport | undefined;
  const ses = () =>
    (sesInstance ??= lazyTransport('ses', async () => {
      const { sesTransport } = await import('#lib/adapters/mail');
      return sesTransport(await aws.ses(), config.sesConfigurationSet);
    }));
  const smtp = (options: SmtpOptions) =>
    lazyTransport('smtp', async () => (await import('#lib/adapters/mail')).smtpTransport(options));
  return {
    config,
    repos,
    secrets: overrides.secrets ?? secrets(),
    blobs: overrides.blobs ?? blobs(),
    scheduler: overrides.scheduler ?? scheduler(),
    events: overrides.events ?? events(),
    invoker: overrides.invoker ?? invoker(),
    ses: overrides.ses ?? ses,
    smtp: overrides.smtp ?? smtp,
    identities: overrides.identities ?? identities(),
    logger: overrides.logger ?? createLogger(process.env.POWERTOOLS_SERVICE_NAME ?? 'studio-mail'),
    metrics: overrides.metrics ?? createMetrics(process.env.POWERTOOLS_SERVICE_NAME ?? 'studio-mail'),
    now: overrides.now ?? (() => new Date()),
    healthChecks: overrides.healthChecks ?? {},
  };
}
