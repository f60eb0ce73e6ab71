/**
 * The studio-mail stack: HTTP API + JWT authorizer, four Lambda functions, DynamoDB table, S3 blob
 * bucket, Secrets Manager scope, EventBridge Scheduler group + role, event bus + notify rule, SES
 * configuration set, dead-letter queues and alarms. docs/infrastructure.md describes it.
 */
import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ses from 'aws-cdk-lib/aws-ses';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { apiTables } from '#functions/routes';
import { StudioApi } from '#infra/constructs/api';
import { StudioAuth } from '#infra/constructs/auth';
import { StudioBulk } from '#infra/constructs/bulk';
import { DeadLetterQueue } from '#infra/constructs/dead-letter-queue';
import { Receiving } from '#infra/constructs/receiving';
import { StudioFunction } from '#infra/constructs/studio-function';
import type { StudioMailSettings } from '#infra/context';
import { acknowledge, acknowledgeWildcardResource } from '#infra/nag';
import { tableSchema } from '#infra/table-schema';
import { BUNDLED_DOCS_DIR, DOCS_FILES } from '#lib/app/docs';
import { pollOutcomeEvents } from '#lib/events';

export interface StudioMailStackProps
  extends StackProps,
    Omit<StudioMailSettings, 'region' | 'stackName' | 'jwtIssuer' | 'alarmEmail' | 'receivingDomain'> {
  readonly jwtIssuer?: string | undefined;
  /** Push intake through SES receiving (infra/constructs/receiving.ts); unset: polling only. */
  readonly receivingDomain?: string | undefined;
  readonly alarmEmail?: string | undefined;
  /** EventBridge Scheduler group for the per-email-box poll schedules. @default kebab-case stack name */
  readonly scheduleGroupName?: string;
  /** Microsoft Graph and its token service (Graph boxes, method graph). @default Microsoft's public endpoints */
  readonly graph?: { readonly apiBase?: string; readonly loginBase?: string };
  /**
   * OAuth2 sign-in (lib/oauth/providers.ts): the API's public base URL, the secret holding the
   * state key, and per provider the app's client id and the secret holding its client secret.
   * Unset: no sign-in is offered (start answers 404).
   */
  readonly oauth?: {
    readonly redirectBase: string;
    readonly stateKeyRef: string;
    readonly google?: { readonly clientId: string; readonly clientSecretRef: string };
    readonly microsoft?: { readonly clientId: string; readonly clientSecretRef: string };
  };
}

/** GRAPH_* and OAUTH_* for the functions that read or send mail and run sign-ins. */
export function mailAuthEnvironment(
  props: Pick<StudioMailStackProps, 'graph' | 'oauth'>,
): Record<string, string> {
  const o = props.oauth;
  const provider = (id: 'google' | 'microsoft') => {
    const p = o?.[id];
    return p
      ? {
          [`OAUTH_${id.toUpperCase()}_CLIENT_ID`]: p.clientId,
          [`OAUTH_${id.toUpperCase()}_CLIENT_SECRET_REF`]: p.clientSecretRef,
        }
      : {};
  };
  return {
    GRAPH_API_BASE: props.graph?.apiBase ?? 'https://graph.microsoft.com/v1.0',
    GRAPH_LOGIN_BASE: props.graph?.loginBase ?? 'https://login.microsoftonline.com',
    ...(o ? { OAUTH_REDIRECT_BASE: o.redirectBase, OAUTH_STATE_KEY_REF: o.stateKeyRef } : {}),
    ...provider('google'),
    ...provider('microsoft'),
  };
}

/** Event source and detail types the inbox-poll function emits: declared once, in lib/events.ts. */
export { pollOutcomeEvents };

const pollerTimeout = Duration.minutes(5);
/** The poller stops taking new work this long before its Lambda timeout. */
const pollerSafetyMargin = Duration.seconds(30);

function kebabCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .toLowerCase();
}

function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  return at > 0 ? address.slice(at + 1) : undefined;
}

export class StudioMailStack extends Stack {
  readonly table: dynamodb.Table;
  readonly blobBucket: s3.Bucket;
  readonly accessLogBucket: s3.Bucket;
  readonly eventBus: events.EventBus;
  readonly configurationSet: ses.ConfigurationSet;
  readonly scheduleGroup: scheduler.CfnScheduleGroup;
  readonly schedulerRole: iam.Role;
  readonly functions: {
    readonly settings: StudioFunction;
    readonly send: StudioFunction;
    readonly inboxPoll: StudioFunction;
    readonly notify: StudioFunction;
  };
  readonly deadLetterQueues: {
    readonly pollerFailures: DeadLetterQueue;
    readonly notifyFailures: DeadLetterQueue;
    readonly notifyRule: DeadLetterQueue;
    readonly schedules: DeadLetterQueue;
  };
  readonly auth: StudioAuth;
  readonly api: StudioApi;
  /** Bulk email: its API, queue, worker, schedules and SES events (infra/constructs/bulk.ts). */
  readonly bulk: StudioBulk;
  readonly alarmTopic: sns.Topic;
  readonly cursorKey: secretsmanager.Secret;
  /** Push intake, when the stack has a receiving domain. */
  readonly receiving?: Receiving;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: StudioMailStackProps) {
    super(scope, id, props);
    Tags.of(this).add('project', 'studio-mail');

    // ---- Storage -------------------------------------------------------------------------------
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: tableSchema.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: tableSchema.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.deletionProtection,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: tableSchema.ttlAttribute,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of tableSchema.indexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.pk, type: dynamodb.AttributeType.STRING },
        sortKey: { name: index.sk, type: dynamodb.AttributeType.STRING },
        projectionType:
          index.projection === 'ALL' ? dynamodb.ProjectionType.ALL : dynamodb.ProjectionType.KEYS_ONLY,
      });
    }

    this.accessLogBucket = new s3.Bucket(this, 'AccessLogBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledge(
      this.accessLogBucket,
      'AwsSolutions-S1',
      'This bucket is the server-access-log target of the blob bucket; logging it into itself would ' +
        'create a log record per delivered log object.',
    );

    this.blobBucket = new s3.Bucket(this, 'BlobBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      versioned: true,
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: 'blob-bucket/',
      lifecycleRules: [
        { id: 'expire-quarantine', prefix: 'quarantine/', expiration: Duration.days(90) },
        {
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(30),
          expiredObjectDeleteMarker: true,
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ---- Messaging -----------------------------------------------------------------------------
    this.eventBus = new events.EventBus(this, 'EventBus', {
      description: 'studio-mail domain events (inbox poll outcomes)',
    });

    this.configurationSet = new ses.ConfigurationSet(this, 'ConfigurationSet', {
      reputationMetrics: true,
      sendingEnabled: true,
      suppressionReasons: ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
      tlsPolicy: ses.ConfigurationSetTlsPolicy.REQUIRE,
    });

    const scheduleGroupName = props.scheduleGroupName ?? kebabCase(this.stackName);
    this.scheduleGroup = new scheduler.CfnScheduleGroup(this, 'ScheduleGroup', { name: scheduleGroupName });

    this.deadLetterQueues = {
      pollerFailures: new DeadLetterQueue(this, 'PollerFailuresDlq', {
        purpose: 'asynchronous inbox-poll invocations that failed (Lambda on-failure destination)',
      }),
      notifyFailures: new DeadLetterQueue(this, 'NotifyFailuresDlq', {
        purpose: 'asynchronous notify invocations that failed (Lambda on-failure destination)',
      }),
      notifyRule: new DeadLetterQueue(this, 'NotifyRuleDlq', {
        purpose: 'inbox poll outcome events EventBridge could not deliver to notify (rule target DLQ)',
      }),
      schedules: new DeadLetterQueue(this, 'ScheduleDlq', {
        purpose: 'poll schedules EventBridge Scheduler could not deliver to inbox-poll (schedule target DLQ)',
      }),
    };

    // Seals paging cursors (lib/http/cursor.ts): one key for every instance, so a next page may be
    // served by any. Passed as a CloudFormation dynamic reference (resolved at deploy, kept in the
    // functions' KMS-encrypted configuration): the edge reads it synchronously at start.
    this.cursorKey = new secretsmanager.Secret(this, 'CursorKey', {
      description: 'studio-mail: key that signs and encrypts paging cursors',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    acknowledge(
      this.cursorKey,
      'AwsSolutions-SMG4',
      'Rotating the cursor key only invalidates cursors in flight; it is not a credential to any system.',
    );

    // ---- Functions -----------------------------------------------------------------------------
    const environment: Record<string, string> = {
      CURSOR_KEY: this.cursorKey.secretValue.unsafeUnwrap(),
      STUDIO_MAIL_ADAPTERS: 'aws',
      TABLE_NAME: this.table.tableName,
      BLOB_BUCKET: this.blobBucket.bucketName,
      SECRET_PREFIX: props.secretPrefix,
      SES_CONFIGURATION_SET: this.configurationSet.configurationSetName,
      EVENT_BUS_NAME: this.eventBus.eventBusName,
      SCHEDULE_GROUP: scheduleGroupName,
      NOTIFICATION_SENDER: props.notificationSender,
      STUDIO_CLAIM: props.studioClaim,
      ACCOUNT_ID: this.account,
      ...(props.receivingDomain ? { RECEIVING_DOMAIN: props.receivingDomain } : {}),
      ...mailAuthEnvironment(props),
    };
    const common = { logLevel: props.logLevel };

    const inboxPoll = new StudioFunction(this, 'InboxPoll', {
      ...common,
      name: 'inbox-poll',
      description: 'studio-mail: polls IMAP/POP3 email boxes (scheduled) and reprocesses messages',
      memorySize: 1024,
      timeout: pollerTimeout,
      // A failed scheduled poll is not retried by Lambda: the next schedule tick polls again.
      onFailureQueue: this.deadLetterQueues.pollerFailures.queue,
      retryAttempts: 0,
      maxEventAge: Duration.minutes(30),
      environment: {
        ...environment,
        POLL_BUDGET_MS: String(pollerTimeout.minus(pollerSafetyMargin).toMilliseconds()),
      },
    });

    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: 'EventBridge Scheduler: invokes the studio-mail inbox-poll function only',
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnEquals: { 'aws:SourceArn': this.scheduleGroupArn(scheduleGroupName) },
        },
      }),
    });
    this.schedulerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: [inboxPoll.function.functionArn],
      }),
    );
    this.schedulerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['sqs:SendMessage'],
        resources: [this.deadLetterQueues.schedules.queue.queueArn],
      }),
    );

    const notify = new StudioFunction(this, 'Notify', {
      ...common,
      name: 'notify',
      description: 'studio-mail: emails studio staff about inbox poll outcomes',
      timeout: Duration.seconds(60),
      onFailureQueue: this.deadLetterQueues.notifyFailures.queue,
      retryAttempts: 1,
      maxEventAge: Duration.hours(1),
      environment,
    });

    const send = new StudioFunction(this, 'Send', {
      ...common,
      name: 'send',
      description: 'studio-mail: sends and previews emails, sends test emails',
      environment,
    });

    const settings = new StudioFunction(this, 'Settings', {
      ...common,
      name: 'settings',
      description: 'studio-mail: settings, email boxes and their poll schedules, messages',
      environment: {
        ...environment,
        SCHEDULER_ROLE_ARN: this.schedulerRole.roleArn,
        POLLER_ARN: inboxPoll.function.functionArn,
        SCHEDULE_DLQ_ARN: this.deadLetterQueues.schedules.queue.queueArn,
      },
      // GET /docs serves swagger-ui's files from the bundle (lib/app/docs.ts reads them there).
      bundleFiles: Object.keys(DOCS_FILES).map((file) => ({
        from: `node_modules/swagger-ui-dist/${file}`,
        to: BUNDLED_DOCS_DIR,
      })),
    });
    this.functions = { settings, send, inboxPoll, notify };

    // ---- Permissions (least privilege, one statement per need) --------------------------------
    const tableResources = [
      this.table.tableArn,
      ...tableSchema.indexes.map((index) => `${this.table.tableArn}/index/${index.name}`),
    ];
    const tableRead = [
      'dynamodb:GetItem',
      'dynamodb:BatchGetItem',
      'dynamodb:Query',
      'dynamodb:ConditionCheckItem',
      'dynamodb:DescribeTable',
    ];
    // Transactions (TransactWriteItems) are authorised by these per-item actions.
    const tableWrite = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];
    for (const fn of [settings, send, inboxPoll, notify]) {
      fn.allow({ actions: [...tableRead, ...tableWrite], resources: tableResources });
    }

    const objects = this.blobBucket.arnForObjects('*');
    const bucketList = { actions: ['s3:ListBucket'], resources: [this.blobBucket.bucketArn] };
    // send and inbox-poll store and read mail; settings only asks whether an object exists
    // (HeadObject is authorised by s3:GetObject; ListBucket makes a missing key a 404, not a 403);
    // notify never touches stored mail.
    for (const fn of [send, inboxPoll]) {
      fn.allow(bucketList);
      fn.allow({
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        resources: [objects],
      });
    }
    settings.allow(bucketList);
    settings.allow({ actions: ['s3:GetObject'], resources: [objects] });

    const secrets = this.formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${props.secretPrefix}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    settings.allow({
      actions: [
        'secretsmanager:PutSecretValue',
        'secretsmanager:DeleteSecret',
        // POST /email-boxes/{id}/test logs in with the stored password.
        'secretsmanager:GetSecretValue',
      ],
      resources: [secrets],
    });
    // A new secret must carry the studio it belongs to (lib/settings/secrets.ts tags every one).
    settings.allow({
      actions: ['secretsmanager:CreateSecret', 'secretsmanager:TagResource'],
      resources: [secrets],
      conditions: {
        Null: { 'aws:RequestTag/studioId': 'false' },
        'ForAllValues:StringEquals': { 'aws:TagKeys': ['studioId', 'credential', 'boxId'] },
      },
    });
    // notify sends only through SES with the notification sender: it reads no secret.
    for (const fn of [send, inboxPoll]) {
      fn.allow({ actions: ['secretsmanager:GetSecretValue'], resources: [secrets] });
    }
    // An OAuth2 box's or send setting's renewed access (and rotated refresh) token goes back into
    // its secret (lib/oauth/service.ts), so the next invocation need not refresh again and a
    // rotated refresh token is never lost.
    for (const fn of [send, inboxPoll]) {
      fn.allow({ actions: ['secretsmanager:PutSecretValue'], resources: [secrets] });
    }

    const scheduleArns = this.formatArn({
      service: 'scheduler',
      resource: 'schedule',
      resourceName: `${scheduleGroupName}/*`,
    });
    settings.allow({
      actions: [
        'scheduler:CreateSchedule',
        'scheduler:UpdateSchedule',
        'scheduler:DeleteSchedule',
        'scheduler:GetSchedule',
      ],
      resources: [scheduleArns],
    });
    settings.allow({
      actions: ['iam:PassRole'],
      resources: [this.schedulerRole.roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
    });

    inboxPoll.allow({ actions: ['events:PutEvents'], resources: [this.eventBus.eventBusArn] });
    // The poller invokes itself (asynchronously) to run a poll the API started and to carry on a run
    // whose budget ran out. A policy of its own: in the role's default policy the function's ARN
    // would make a cycle (the function depends on that policy).
    new iam.Policy(this, 'InboxPollSelfInvoke', {
      roles: [inboxPoll.role],
      statements: [
        new iam.PolicyStatement({
          actions: ['lambda:InvokeFunction'],
          resources: [inboxPoll.function.functionArn],
        }),
      ],
    });

    const identities = [...new Set([props.notificationSender, domainOf(props.notificationSender)])].filter(
      (identity): identity is string => Boolean(identity),
    );
    const sesResources = [
      ...identities.map((identity) =>
        this.formatArn({ service: 'ses', resource: 'identity', resourceName: identity }),
      ),
      this.formatArn({
        service: 'ses',
        resource: 'configuration-set',
        resourceName: this.configurationSet.configurationSetName,
      }),
    ];
    const configurationSetArn = this.formatArn({
      service: 'ses',
      resource: 'configuration-set',
      resourceName: this.configurationSet.configurationSetName,
    });
    // Studio sender identities are created at run time (POST /sender-identities); send and
    // inbox-poll (auto-replies) send as them, and lib/send/identity.ts checks the studio owns one.
    const studioIdentities = this.formatArn({ service: 'ses', resource: 'identity', resourceName: '*' });
    for (const fn of [send, inboxPoll]) {
      fn.allow({
        actions: ['ses:SendEmail', 'ses:SendRawEmail'],
        resources: [studioIdentities, configurationSetArn],
      });
    }
    // notify sends only as the deployment's notification sender.
    notify.allow({ actions: ['ses:SendEmail', 'ses:SendRawEmail'], resources: sesResources });
    settings.allow({
      actions: [
        'ses:CreateEmailIdentity',
        'ses:GetEmailIdentity',
        'ses:DeleteEmailIdentity',
        'ses:TagResource',
      ],
      resources: [studioIdentities],
    });
    for (const fn of [settings, send, inboxPoll]) {
      acknowledgeWildcardResource(
        fn.role,
        studioIdentities,
        'Sender identities are created per studio at run time; which studio may send as which is enforced in lib/send/identity.ts.',
      );
    }

    for (const fn of [settings, send, inboxPoll]) {
      acknowledgeWildcardResource(
        fn.role,
        objects,
        'Object-level S3 access needs the bucket/* object ARN: keys are per studio and message and are ' +
          'created at run time. Only this stack’s blob bucket is covered.',
      );
    }
    for (const fn of [settings, send, inboxPoll]) {
      acknowledgeWildcardResource(
        fn.role,
        secrets,
        `Secrets are created at run time per email box under the stack prefix "${props.secretPrefix}", and ` +
          'Secrets Manager appends a random suffix to every secret ARN, so the prefix needs a wildcard.',
      );
    }
    acknowledgeWildcardResource(
      settings.role,
      scheduleArns,
      `Poll schedules are created at run time, one per email box, inside the "${scheduleGroupName}" schedule group only.`,
    );

    // ---- Bulk email ----------------------------------------------------------------------------
    this.bulk = new StudioBulk(this, 'Bulk', {
      environment,
      logLevel: props.logLevel,
      tableResources,
      tableActions: [...tableRead, ...tableWrite, 'dynamodb:BatchWriteItem'],
      blobBucketArn: this.blobBucket.bucketArn,
      blobObjects: objects,
      secrets,
      studioIdentities,
      configurationSet: this.configurationSet,
      configurationSetArn,
      scheduleGroupName,
      scheduleGroupArn: this.scheduleGroupArn(scheduleGroupName),
    });

    // ---- Events: poll outcomes -> notify -------------------------------------------------------
    new events.Rule(this, 'PollOutcomeRule', {
      description: 'Inbox poll outcomes to the notify function',
      eventBus: this.eventBus,
      eventPattern: { source: [pollOutcomeEvents.source], detailType: [...pollOutcomeEvents.detailTypes] },
      targets: [
        new targets.LambdaFunction(notify.function, {
          deadLetterQueue: this.deadLetterQueues.notifyRule.queue,
          retryAttempts: 2,
          maxEventAge: Duration.hours(1),
        }),
      ],
    });

    // ---- API -----------------------------------------------------------------------------------
    this.auth = new StudioAuth(this, 'Auth', {
      jwtIssuer: props.jwtIssuer,
      jwtAudience: props.jwtAudience,
      deletionProtection: props.deletionProtection,
    });
    this.api = new StudioApi(this, 'Api', {
      authorizer: this.auth.authorizer,
      corsOrigins: props.corsOrigins,
      routes: [
        { table: apiTables.settings, handler: settings.function },
        { table: apiTables.send, handler: send.function },
        { table: apiTables['inbox-poll'], handler: inboxPoll.function },
        { table: apiTables.bulk, handler: this.bulk.api.function },
      ],
    });

    // ---- Push intake ---------------------------------------------------------------------------
    if (props.receivingDomain) {
      this.receiving = new Receiving(this, 'Receiving', {
        domain: props.receivingDomain,
        bucket: this.blobBucket,
        importer: inboxPoll.function,
      });
      new CfnOutput(this, 'ReceiptRuleSetName', {
        value: this.receiving.ruleSet.receiptRuleSetName,
        description:
          'Activate it once (aws ses set-active-receipt-rule-set --rule-set-name …) and point the MX record of the receiving domain at inbound-smtp.<region>.amazonaws.com',
      });
    }

    // ---- Alarms --------------------------------------------------------------------------------
    // SSE with a KMS key is not used: alarm messages carry alarm names and states only, and
    // CloudWatch cannot publish to a topic encrypted with the AWS-managed aws/sns key (a customer
    // key for this topic alone would cost more than the topic). Publishing is TLS-only.
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'studio-mail alarms',
      enforceSSL: true,
    });
    if (props.alarmEmail) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    const fiveMinutes = Duration.minutes(5);
    this.alarms.push(
      new cloudwatch.Alarm(this, 'PollerErrorsAlarm', {
        alarmDescription: 'studio-mail: the inbox-poll function failed (errors or timeouts).',
        metric: inboxPoll.function.metricErrors({ period: fiveMinutes, statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      new cloudwatch.Alarm(this, 'NotifyErrorsAlarm', {
        alarmDescription: 'studio-mail: the notify function failed to send a notification.',
        metric: notify.function.metricErrors({ period: fiveMinutes, statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      new cloudwatch.Alarm(this, 'Api5xxAlarm', {
        alarmDescription: 'studio-mail: the HTTP API answered with 5xx errors.',
        metric: this.api.stage.metricServerError({ period: fiveMinutes, statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      ...Object.values(this.deadLetterQueues).map((dlq) => dlq.alarm),
      this.bulk.deadLetters.alarm,
      this.bulk.eventsDeadLetters.alarm,
    );
    const alarmAction = new cwActions.SnsAction(this.alarmTopic);
    for (const alarm of this.alarms) {
      alarm.addAlarmAction(alarmAction);
      alarm.addOkAction(alarmAction);
    }

    // ---- Outputs -------------------------------------------------------------------------------
    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'Base URL of the HTTP API' });
    new CfnOutput(this, 'JwtIssuer', { value: this.auth.issuer, description: 'Issuer the API accepts' });
    if (this.auth.userPool && this.auth.userPoolClient) {
      new CfnOutput(this, 'UserPoolId', { value: this.auth.userPool.userPoolId });
      new CfnOutput(this, 'UserPoolClientId', { value: this.auth.userPoolClient.userPoolClientId });
    }
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
  }

  private scheduleGroupArn(name: string): string {
    return this.formatArn({ service: 'scheduler', resource: 'schedule-group', resourceName: name });
  }
}
