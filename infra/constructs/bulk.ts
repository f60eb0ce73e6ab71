/**
 * Bulk email in AWS (docs/bulk.md): the bulk API function, the queue its jobs fan out through
 * (SQS, with a DLQ by redrive policy) and the worker that drains it, the one-off Scheduler
 * schedules that start or continue a job (they send to the queue), the link-signing secret, and
 * SES events (configuration set → default event bus → the bulk-events function).
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ses from 'aws-cdk-lib/aws-ses';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DeadLetterQueue } from '#infra/constructs/dead-letter-queue';
import { StudioFunction } from '#infra/constructs/studio-function';
import { acknowledge, acknowledgeWildcardResource } from '#infra/nag';

/** How long one worker invocation may take: a batch of 100 at a slow SMTP rate. */
export const bulkWorkerTimeout = Duration.minutes(5);

/** SES event types the bulk-events function records (EventBridge detail types). */
export const sesEventDetailTypes = [
  'Email Delivered',
  'Email Bounced',
  'Email Complaint Received',
  'Email Opened',
  'Email Clicked',
] as const;

export interface StudioBulkProps {
  readonly environment: Record<string, string>;
  readonly logLevel?: string;
  readonly tableResources: string[];
  readonly tableActions: string[];
  readonly blobBucketArn: string;
  readonly blobObjects: string;
  readonly secrets: string;
  readonly studioIdentities: string;
  readonly configurationSet: ses.IConfigurationSet;
  readonly configurationSetArn: string;
  readonly scheduleGroupName: string;
  readonly scheduleGroupArn: string;
  /** The public base URL of the API, for unsubscribe links; set after the API exists. */
  readonly publicUrl?: string;
}

export class StudioBulk extends Construct {
  readonly api: StudioFunction;
  readonly worker: StudioFunction;
  readonly events: StudioFunction;
  readonly queue: sqs.Queue;
  readonly deadLetters: DeadLetterQueue;
  readonly eventsDeadLetters: DeadLetterQueue;
  readonly schedulerRole: iam.Role;
  readonly linkKey: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: StudioBulkProps) {
    super(scope, id);
    this.deadLetters = new DeadLetterQueue(this, 'QueueDlq', {
      purpose: 'bulk-email queue messages the worker failed five times (queue redrive policy)',
    });
    this.eventsDeadLetters = new DeadLetterQueue(this, 'EventsDlq', {
      purpose: 'SES events EventBridge could not deliver to bulk-events (rule target DLQ)',
    });
    this.queue = new sqs.Queue(this, 'WorkQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Six times the worker's timeout, as AWS advises for a Lambda event source.
      visibilityTimeout: Duration.seconds(bulkWorkerTimeout.toSeconds() * 6),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetters.queue, maxReceiveCount: 5 },
    });
    this.linkKey = new secretsmanager.Secret(this, 'LinkKey', {
      description: 'studio-mail: key that signs unsubscribe and tracking links in bulk email',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    acknowledge(
      this.linkKey,
      'AwsSolutions-SMG4',
      'Rotating the link key would invalidate the unsubscribe links of every email already sent.',
    );

    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description:
        'EventBridge Scheduler: puts bulk-email start and continue messages on the bulk queue only',
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
          ArnEquals: { 'aws:SourceArn': props.scheduleGroupArn },
        },
      }),
    });
    this.schedulerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['sqs:SendMessage'],
        resources: [this.queue.queueArn, this.deadLetters.queue.queueArn],
      }),
    );

    const environment = {
      ...props.environment,
      BULK_QUEUE_URL: this.queue.queueUrl,
      BULK_QUEUE_ARN: this.queue.queueArn,
      BULK_DLQ_ARN: this.deadLetters.queue.queueArn,
      BULK_SCHEDULER_ROLE_ARN: this.schedulerRole.roleArn,
      BULK_SCHEDULE_GROUP: props.scheduleGroupName,
      BULK_LINK_KEY_ARN: this.linkKey.secretArn,
      ...(props.publicUrl ? { PUBLIC_API_URL: props.publicUrl } : {}),
    };
    const common = { logLevel: props.logLevel, environment };
    this.api = new StudioFunction(this, 'Api', {
      ...common,
      name: 'bulk',
      description: 'studio-mail: bulk email (Communication Wizard), block list, unsubscribe links',
    });
    this.worker = new StudioFunction(this, 'Worker', {
      ...common,
      name: 'bulk-worker',
      description: 'studio-mail: sends bulk-email batches from the bulk queue',
      memorySize: 1024,
      timeout: bulkWorkerTimeout,
    });
    this.worker.function.addEventSource(
      new sources.SqsEventSource(this.queue, {
        batchSize: 1,
        reportBatchItemFailures: true,
        // A studio's cap and rate are shared through the ledger; a few workers are plenty.
        maxConcurrency: 5,
      }),
    );
    this.events = new StudioFunction(this, 'Events', {
      ...common,
      name: 'bulk-events',
      description: 'studio-mail: SES delivery, bounce, complaint, open and click events',
      timeout: Duration.seconds(30),
    });

    // ---- Permissions ----------------------------------------------------------------------------
    for (const fn of [this.api, this.worker, this.events])
      fn.allow({ actions: props.tableActions, resources: props.tableResources });
    for (const fn of [this.api, this.worker])
      fn.allow({ actions: ['sqs:SendMessage'], resources: [this.queue.queueArn] });
    // The worker keeps a raw copy of each email and reads attachments; the API presigns uploads.
    // The worker reads and deletes a job's stored recipient list (bulk/{studio}/{job}/) after preparing it.
    this.worker.allow({ actions: ['s3:ListBucket'], resources: [props.blobBucketArn] });
    this.worker.allow({
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      resources: [props.blobObjects],
    });
    this.api.allow({ actions: ['s3:PutObject'], resources: [props.blobObjects] });
    this.worker.allow({ actions: ['secretsmanager:GetSecretValue'], resources: [props.secrets] });
    for (const fn of [this.api, this.worker, this.events])
      fn.allow({ actions: ['secretsmanager:GetSecretValue'], resources: [this.linkKey.secretArn] });
    this.worker.allow({
      actions: ['ses:SendEmail', 'ses:SendRawEmail'],
      resources: [props.studioIdentities, props.configurationSetArn],
    });
    // GetAccount (MaxSendRate, Max24HourSend) has no resource-level permission.
    this.worker.allow({ actions: ['ses:GetAccount'], resources: ['*'] });
    acknowledgeWildcardResource(
      this.worker.role,
      '*',
      'ses:GetAccount supports no resource-level permissions; it only reads the account sending quota.',
    );
    const bulkSchedules = Stack.of(this).formatArn({
      service: 'scheduler',
      resource: 'schedule',
      resourceName: `${props.scheduleGroupName}/bulk-*`,
    });
    for (const fn of [this.api, this.worker]) {
      fn.allow({
        actions: ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule'],
        resources: [bulkSchedules],
      });
      fn.allow({
        actions: ['iam:PassRole'],
        resources: [this.schedulerRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      });
      acknowledgeWildcardResource(
        fn.role,
        bulkSchedules,
        `One-off schedules are created at run time per bulk email, named bulk-<job id>-…, in the "${props.scheduleGroupName}" group only.`,
      );
    }
    acknowledgeWildcardResource(
      this.worker.role,
      props.studioIdentities,
      'Sender identities are created per studio at run time; which studio may send as which is enforced in lib/send/identity.ts.',
    );
    for (const fn of [this.api, this.worker])
      acknowledgeWildcardResource(
        fn.role,
        props.blobObjects,
        'Object-level S3 access needs the bucket/* object ARN: attachment and raw-copy keys are per studio and created at run time.',
      );
    acknowledgeWildcardResource(
      this.worker.role,
      props.secrets,
      'SMTP passwords are secrets created at run time under the stack prefix; Secrets Manager appends a random suffix.',
    );

    // ---- SES events -> default bus -> bulk-events -------------------------------------------------
    // SES publishes sending events to the account's default event bus only.
    const defaultBus = events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    new ses.ConfigurationSetEventDestination(this, 'SesEvents', {
      configurationSet: props.configurationSet,
      destination: ses.EventDestination.eventBus(defaultBus),
      events: [
        ses.EmailSendingEvent.DELIVERY,
        ses.EmailSendingEvent.BOUNCE,
        ses.EmailSendingEvent.COMPLAINT,
        ses.EmailSendingEvent.OPEN,
        ses.EmailSendingEvent.CLICK,
      ],
    });
    new events.Rule(this, 'SesEventsRule', {
      description: 'SES sending events of the studio-mail configuration set to bulk-events',
      eventBus: defaultBus,
      eventPattern: { source: ['aws.ses'], detailType: [...sesEventDetailTypes] },
      targets: [
        new targets.LambdaFunction(this.events.function, {
          deadLetterQueue: this.eventsDeadLetters.queue,
          retryAttempts: 2,
          maxEventAge: Duration.hours(6),
        }),
      ],
    });
  }
}
