/**
 * Composition root: builds the adapters once per process from Config. Handlers call `deps()`;
 * the local runner and tests call `setDeps()` with their own (shared scheduler and bus, a table
 * per test file).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { S3BlobStore } from '#lib/adapters/aws/blobs';
import { awsClients } from '#lib/adapters/aws/clients';
import { EventBridgePublisher } from '#lib/adapters/aws/events';
import { AwsScheduler } from '#lib/adapters/aws/scheduler';
import { AwsSecretStore } from '#lib/adapters/aws/secrets';
import { LocalBlobStore } from '#lib/adapters/local/blobs';
import { InProcessEventBus } from '#lib/adapters/local/events';
import { InProcessScheduler } from '#lib/adapters/local/scheduler';
import { LocalSecretStore } from '#lib/adapters/local/secrets';
import { type SmtpOptions, sesTransport, smtpTransport } from '#lib/adapters/mail';
import { type Config, loadConfig } from '#lib/config';
import { makeRepositories, type Repositories } from '#lib/data/repositories';
import { Table } from '#lib/data/table';
import { createLogger } from '#lib/logger';
import type { BlobStore, EventPublisher, MailTransport, Scheduler, SecretStore } from '#lib/ports/index';

export interface Deps {
  config: Config;
  repos: Repositories;
  secrets: SecretStore;
  blobs: BlobStore;
  scheduler: Scheduler;
  events: EventPublisher;
  /** The managed sending service (SES, or the local SES in `npm start`). */
  ses: () => MailTransport;
  smtp: (options: SmtpOptions) => MailTransport;
  logger: Logger;
  now: () => Date;
  /** Extra parts reported by GET /health (the local runner adds its servers). */
  healthChecks: Record<string, () => Promise<void>>;
}

export function buildDeps(config: Config, overrides: Partial<Deps> = {}): Deps {
  const aws = awsClients(config);
  const local = config.adapters === 'local';
  const repos = overrides.repos ?? makeRepositories(new Table(aws.dynamo(), config.tableName));
  let sesInstance: MailTransport | undefined;
  return {
    config,
    repos,
    secrets:
      overrides.secrets ??
      (local
        ? new LocalSecretStore(config.secretDir, config.secretPrefix)
        : new AwsSecretStore(aws.secrets(), config.secretPrefix)),
    blobs:
      overrides.blobs ??
      (local || !config.blobBucket
        ? new LocalBlobStore(config.blobDir)
        : new S3BlobStore(aws.s3(), config.blobBucket)),
    scheduler:
      overrides.scheduler ??
      (local
        ? new InProcessScheduler()
        : new AwsScheduler(aws.scheduler(), {
            group: config.scheduleGroup,
            targetArn: config.pollerArn ?? '',
            roleArn: config.schedulerRoleArn ?? '',
            deadLetterArn: process.env.SCHEDULE_DLQ_ARN || undefined,
          })),
    events:
      overrides.events ??
      (local ? new InProcessEventBus() : new EventBridgePublisher(aws.events(), config.eventBusName)),
    ses: overrides.ses ?? (() => (sesInstance ??= sesTransport(aws.ses(), config.sesConfigurationSet))),
    smtp: overrides.smtp ?? smtpTransport,
    logger: overrides.logger ?? createLogger(process.env.POWERTOOLS_SERVICE_NAME ?? 'studio-mail'),
    now: overrides.now ?? (() => new Date()),
    healthChecks: overrides.healthChecks ?? {},
  };
}

let current: Deps | undefined;

export function deps(): Deps {
  current ??= buildDeps(loadConfig());
  return current;
}

export function setDeps(next: Deps | undefined): void {
  current = next;
}
