import { readFileSync } from 'node:fs';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { bulkRoutes } from '#functions/bulk/routes';
import { inboxPollRoutes } from '#functions/inbox-poll/routes';
import { sendRoutes } from '#functions/send/routes';
import { settingsRoutes } from '#functions/settings/routes';
import { publicRouteKeys } from '#infra/constructs/api';
import { tableSchema } from '#infra/table-schema';
import {
  account,
  asArray,
  buildStack,
  logicalId,
  type Resources,
  region,
  roleStatements,
  type Statement,
  statementsFor,
} from './fixture.ts';

const { stack, template } = buildStack();
const resources = template.toJSON().Resources as Resources;

const functionPrefixes = {
  settings: 'SettingsFunction',
  send: 'SendFunction',
  'inbox-poll': 'InboxPollFunction',
  notify: 'NotifyFunction',
  bulk: 'BulkApiFunction',
  'bulk-worker': 'BulkWorkerFunction',
  'bulk-events': 'BulkEventsFunction',
} as const;

function functionProps(prefix: string): Record<string, unknown> {
  return resources[logicalId(template, 'AWS::Lambda::Function', prefix)]!.Properties!;
}

function envOf(prefix: string): Record<string, unknown> {
  return (functionProps(prefix).Environment as { Variables: Record<string, unknown> }).Variables;
}

const ref = (prefix: string, type: string) => ({ Ref: logicalId(template, type, prefix) });
const arnOf = (prefix: string, type: string) => ({
  'Fn::GetAtt': [logicalId(template, type, prefix), 'Arn'],
});

/** `arn:aws:<service>:<region>:<account>:<rest>` (the test stack has a concrete account and region). */
const arn = (service: string, rest: string) => `arn:aws:${service}:${region}:${account}:${rest}`;

describe('the Lambda functions', () => {
  it('creates exactly the seven functions on Node.js 24, arm64, with active tracing and source maps', () => {
    // Prepare
    const functions = template.findResources('AWS::Lambda::Function');

    // Act
    const props = Object.values(functionPrefixes).map(functionProps);

    // Assess
    expect(Object.keys(functions)).toHaveLength(7);
    for (const p of props) {
      expect(p).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: expect.anything() },
      });
    }
    for (const prefix of Object.values(functionPrefixes)) {
      expect(envOf(prefix).NODE_OPTIONS).toBe('--enable-source-maps');
    }
  });

  it('gives inbox-poll five minutes, 1024 MB and a poll budget of its timeout minus 30 seconds', () => {
    // Prepare
    const props = functionProps(functionPrefixes['inbox-poll']);

    // Act
    const budget = Number(envOf(functionPrefixes['inbox-poll']).POLL_BUDGET_MS);

    // Assess
    expect(props.Timeout).toBe(300);
    expect(props.MemorySize).toBe(1024);
    expect(budget).toBe((300 - 30) * 1000);
  });

  it('keeps the API functions within the 29-second integration limit', () => {
    // Prepare
    const apiFunctions = [functionPrefixes.settings, functionPrefixes.send];

    // Act
    const timeouts = apiFunctions.map((prefix) => functionProps(prefix).Timeout);

    // Assess
    expect(timeouts).toEqual([29, 29]);
  });

  it('wires every environment variable lib/config.ts reads, with the stack’s own resources', () => {
    // Prepare
    const configSource = readFileSync(new URL('../../lib/config.ts', import.meta.url), 'utf8');
    const readByConfig = new Set([...configSource.matchAll(/env\.([A-Z0-9_]+)/g)].map((m) => m[1]!));
    const localOnly = new Set(['DYNAMODB_ENDPOINT', 'BLOB_DIR', 'SECRET_DIR', 'SES_ENDPOINT', 'AWS_REGION']);
    // Set only with the feature (test/infra/receiving.test.ts checks it there).
    const withFeatureOnly = new Set(['RECEIVING_DOMAIN']);
    const perFunctionExtras = new Set([
      'NODE_OPTIONS',
      'POWERTOOLS_SERVICE_NAME',
      'POWERTOOLS_METRICS_NAMESPACE',
      'LOG_LEVEL',
      'POLL_BUDGET_MS',
      'SCHEDULE_DLQ_ARN',
      // Read by lib/graph/box.ts and lib/oauth/providers.ts (test/infra/mail-auth.test.ts).
      'GRAPH_API_BASE',
      'GRAPH_LOGIN_BASE',
      // The bulk functions read theirs in functions/bulk/aws.ts.
      ...[
        ...readFileSync(new URL('../../functions/bulk/aws.ts', import.meta.url), 'utf8').matchAll(
          /env\.([A-Z0-9_]+)/g,
        ),
      ].map((m) => m[1]!),
    ]);

    // Act
    const settingsEnv = envOf(functionPrefixes.settings);

    // Assess
    for (const name of readByConfig) {
      if (!localOnly.has(name) && !withFeatureOnly.has(name)) expect(settingsEnv, name).toHaveProperty(name);
    }
    for (const prefix of Object.values(functionPrefixes)) {
      for (const name of Object.keys(envOf(prefix))) {
        expect(readByConfig.has(name) || perFunctionExtras.has(name), `${prefix} sets unknown ${name}`).toBe(
          true,
        );
      }
    }
    expect(settingsEnv).toMatchObject({
      STUDIO_MAIL_ADAPTERS: 'aws',
      TABLE_NAME: ref('Table', 'AWS::DynamoDB::Table'),
      BLOB_BUCKET: ref('BlobBucket', 'AWS::S3::Bucket'),
      SECRET_PREFIX: 'studio-mail/',
      SES_CONFIGURATION_SET: ref('ConfigurationSet', 'AWS::SES::ConfigurationSet'),
      EVENT_BUS_NAME: ref('EventBus', 'AWS::Events::EventBus'),
      SCHEDULE_GROUP: 'studio-mail-test',
      SCHEDULER_ROLE_ARN: arnOf('SchedulerRole', 'AWS::IAM::Role'),
      POLLER_ARN: arnOf('InboxPollFunction', 'AWS::Lambda::Function'),
      SCHEDULE_DLQ_ARN: arnOf('ScheduleDlq', 'AWS::SQS::Queue'),
      NOTIFICATION_SENDER: 'notifications@mail.example.com',
      STUDIO_CLAIM: 'custom:studioId',
      ACCOUNT_ID: account,
      POWERTOOLS_SERVICE_NAME: 'studio-mail-settings',
      POWERTOOLS_METRICS_NAMESPACE: 'StudioMail',
      LOG_LEVEL: 'INFO',
    });
    // The cursor key: one generated secret for every instance, by dynamic reference, never a literal.
    expect(JSON.stringify(settingsEnv.CURSOR_KEY)).toMatch(
      /\{\{resolve:secretsmanager:.*CursorKey.*:SecretString/,
    );
  });

  it('forbids private, loopback and metadata mail hosts in every deployed function', () => {
    // Act
    const values = Object.values(functionPrefixes).map((prefix) => envOf(prefix).ALLOW_PRIVATE_MAIL_HOSTS);
    // Assess
    expect(values).toEqual(Object.values(functionPrefixes).map(() => 'false'));
  });

  it('gives every function its own log group with a retention and no managed policies', () => {
    // Prepare
    const roles = Object.values(template.findResources('AWS::IAM::Role') as Resources);

    // Act
    const logGroups = template.findResources('AWS::Logs::LogGroup') as Resources;

    // Assess
    for (const prefix of Object.values(functionPrefixes)) {
      const group = (functionProps(prefix).LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(logGroups[group]?.Properties?.RetentionInDays).toBe(30);
    }
    for (const role of roles) expect(role.Properties?.ManagedPolicyArns).toBeUndefined();
  });
});

describe('the DynamoDB table', () => {
  it('uses the shared key schema, on-demand billing, PITR, AWS-managed encryption and TTL', () => {
    // Prepare
    const key = (name: string, type: string) => ({ AttributeName: name, KeyType: type });

    // Act
    const gsis = tableSchema.indexes.map((index) => ({
      IndexName: index.name,
      KeySchema: [key(index.pk, 'HASH'), key(index.sk, 'RANGE')],
      Projection: { ProjectionType: index.projection },
    }));

    // Assess
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [key('PK', 'HASH'), key('SK', 'RANGE')],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
      GlobalSecondaryIndexes: gsis,
      AttributeDefinitions: Match.arrayWith(
        ['PK', 'SK', 'GSI1PK', 'GSI1SK', 'GSI2PK', 'GSI2SK', 'GSI3PK', 'GSI3SK'].map((name) => ({
          AttributeName: name,
          AttributeType: 'S',
        })),
      ),
    });
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain' });
  });

  it('turns deletion protection off when the context says so', () => {
    // Prepare
    const { template: unprotected } = buildStack({ deletionProtection: false });

    // Act
    const tables = unprotected.findResources('AWS::DynamoDB::Table') as Resources;

    // Assess
    expect(Object.values(tables)[0]?.Properties?.DeletionProtectionEnabled).toBe(false);
  });
});

describe('the blob bucket', () => {
  it('is encrypted, private, versioned and logs access to the log bucket', () => {
    // Prepare
    const logBucket = ref('AccessLogBucket', 'AWS::S3::Bucket');

    // Act
    const blob = resources[logicalId(template, 'AWS::S3::Bucket', 'BlobBucket')]!.Properties;

    // Assess
    expect(blob).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LoggingConfiguration: { DestinationBucketName: logBucket, LogFilePrefix: 'blob-bucket/' },
    });
  });

  it('expires quarantined objects after 90 days and non-current versions after 30', () => {
    // Prepare
    const blob = resources[logicalId(template, 'AWS::S3::Bucket', 'BlobBucket')]!.Properties!;

    // Act
    const rules = (blob.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;

    // Assess
    expect(rules).toContainEqual(
      expect.objectContaining({ Prefix: 'quarantine/', ExpirationInDays: 90, Status: 'Enabled' }),
    );
    expect(rules).toContainEqual(
      expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }),
    );
  });

  it('denies every request that does not use TLS, on both buckets', () => {
    // Prepare
    const policies = Object.values(template.findResources('AWS::S3::BucketPolicy') as Resources);

    // Act
    const tlsDenials = policies.filter((p) =>
      (p.Properties!.PolicyDocument as { Statement: Statement[] }).Statement.some(
        (s) =>
          s.Effect === 'Deny' && JSON.stringify(s.Condition) === '{"Bool":{"aws:SecureTransport":"false"}}',
      ),
    );

    // Assess
    expect(policies).toHaveLength(2);
    expect(tlsDenials).toHaveLength(2);
  });
});

describe('Secrets Manager access', () => {
  const secrets = arn('secretsmanager', 'secret:studio-mail/*');

  it('lets settings read, update and delete secrets under the prefix, and create only tagged ones', () => {
    // Act
    const statements = roleStatements(template, 'SettingsRole').filter((s) =>
      asArray(s.Action).some((a) => a.startsWith('secretsmanager:')),
    );

    // Assess
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: [
          'secretsmanager:DeleteSecret',
          'secretsmanager:GetSecretValue',
          'secretsmanager:PutSecretValue',
        ],
        Resource: secrets,
      },
      {
        Effect: 'Allow',
        Action: ['secretsmanager:CreateSecret', 'secretsmanager:TagResource'],
        Resource: secrets,
        Condition: {
          Null: { 'aws:RequestTag/studioId': 'false' },
          'ForAllValues:StringEquals': { 'aws:TagKeys': ['studioId', 'credential', 'boxId'] },
        },
      },
    ]);
    expect(JSON.stringify(statements)).not.toContain('DescribeSecret');
  });

  it('lets send and inbox-poll read secret values under the prefix and write them back (renewed OAuth2 tokens), and notify none', () => {
    // Act
    const [send, poll, notify] = ['SendRole', 'InboxPollRole', 'NotifyRole'].map((role) =>
      roleStatements(template, role).filter((s) =>
        asArray(s.Action).some((a) => a.startsWith('secretsmanager:')),
      ),
    );

    // Assess
    for (const role of [send, poll]) {
      expect(role?.flatMap((s) => asArray(s.Action)).sort()).toEqual([
        'secretsmanager:GetSecretValue',
        'secretsmanager:PutSecretValue',
      ]);
      expect(role?.every((s) => JSON.stringify(s.Resource) === JSON.stringify(secrets))).toBe(true);
    }
    expect(notify).toEqual([]);
  });
});

describe('S3 access', () => {
  it('gives notify no access to stored mail and settings only reads (HeadObject)', () => {
    // Act
    const s3Of = (role: string) =>
      roleStatements(template, role)
        .flatMap((s) => asArray(s.Action))
        .filter((a) => a.startsWith('s3:'))
        .sort();

    // Assess
    expect(s3Of('NotifyRole')).toEqual([]);
    expect(s3Of('SettingsRole')).toEqual(['s3:GetObject', 's3:ListBucket']);
    expect(s3Of('SendRole')).toContain('s3:PutObject');
  });

  it('grants no BatchWriteItem to any function', () => {
    // Act
    const all = ['SettingsRole', 'SendRole', 'InboxPollRole', 'NotifyRole'].flatMap((r) =>
      roleStatements(template, r).flatMap((s) => asArray(s.Action)),
    );

    // Assess
    expect(all).not.toContain('dynamodb:BatchWriteItem');
    expect(all).toContain('dynamodb:PutItem');
  });
});

describe('EventBridge Scheduler', () => {
  it('creates the schedule group and a role that only invokes inbox-poll and writes its DLQ', () => {
    // Prepare
    const roleId = logicalId(template, 'AWS::IAM::Role', 'SchedulerRole');

    // Act
    const statements = roleStatements(template, 'SchedulerRole');

    // Assess
    template.hasResourceProperties('AWS::Scheduler::ScheduleGroup', { Name: 'studio-mail-test' });
    expect(resources[roleId]?.Properties?.AssumeRolePolicyDocument).toMatchObject({
      Statement: [
        {
          Principal: { Service: 'scheduler.amazonaws.com' },
          Condition: {
            StringEquals: { 'aws:SourceAccount': account },
            ArnEquals: { 'aws:SourceArn': arn('scheduler', 'schedule-group/studio-mail-test') },
          },
        },
      ],
    });
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: arnOf('InboxPollFunction', 'AWS::Lambda::Function'),
      },
      { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: arnOf('ScheduleDlq', 'AWS::SQS::Queue') },
    ]);
  });

  it('lets settings manage schedules in its group and pass only the scheduler role to the scheduler', () => {
    // Prepare
    const scheduleActions = [
      'scheduler:CreateSchedule',
      'scheduler:DeleteSchedule',
      'scheduler:GetSchedule',
      'scheduler:UpdateSchedule',
    ];

    // Act
    const schedules = statementsFor(template, 'SettingsRole', 'scheduler:CreateSchedule');
    const passRole = statementsFor(template, 'SettingsRole', 'iam:PassRole');

    // Assess
    expect(schedules).toEqual([
      { Effect: 'Allow', Action: scheduleActions, Resource: arn('scheduler', 'schedule/studio-mail-test/*') },
    ]);
    expect(passRole).toEqual([
      {
        Effect: 'Allow',
        Action: 'iam:PassRole',
        Resource: arnOf('SchedulerRole', 'AWS::IAM::Role'),
        Condition: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      },
    ]);
    for (const role of ['SendRole', 'InboxPollRole', 'NotifyRole']) {
      expect(statementsFor(template, role, 'iam:PassRole')).toEqual([]);
    }
  });
});

describe('the event bus', () => {
  it('routes poll outcomes to notify with a DLQ and at most two delivery retries', () => {
    // Prepare
    const bus = ref('EventBus', 'AWS::Events::EventBus');

    // Act
    const rules = Object.values(template.findResources('AWS::Events::Rule') as Resources).filter(
      (r) => JSON.stringify(r.Properties?.EventBusName) === JSON.stringify(bus),
    );

    // Assess
    expect(rules).toHaveLength(1);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: bus,
      EventPattern: {
        source: ['studio-mail.inbox-poll'],
        'detail-type': ['Inbox Poll Succeeded', 'Inbox Poll Failed'],
      },
      Targets: [
        {
          Arn: arnOf('NotifyFunction', 'AWS::Lambda::Function'),
          DeadLetterConfig: { Arn: arnOf('NotifyRuleDlq', 'AWS::SQS::Queue') },
          RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
        },
      ],
    });
  });

  it('lets only inbox-poll put events, and only on the stack’s bus', () => {
    // Prepare
    const others = ['SettingsRole', 'SendRole', 'NotifyRole'];

    // Act
    const statements = statementsFor(template, 'InboxPollRole', 'events:PutEvents');

    // Assess
    expect(statements).toEqual([
      { Effect: 'Allow', Action: 'events:PutEvents', Resource: arnOf('EventBus', 'AWS::Events::EventBus') },
    ]);
    for (const role of others) expect(statementsFor(template, role, 'events:PutEvents')).toEqual([]);
  });
});

describe('the poller invoking itself', () => {
  it('lets only inbox-poll invoke inbox-poll, and nothing else', () => {
    // Prepare
    const others = ['SettingsRole', 'SendRole', 'NotifyRole'];

    // Act
    const statements = statementsFor(template, 'InboxPollRole', 'lambda:InvokeFunction');

    // Assess
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: arnOf('InboxPollFunction', 'AWS::Lambda::Function'),
      },
    ]);
    for (const role of others) expect(statementsFor(template, role, 'lambda:InvokeFunction')).toEqual([]);
  });
});

describe('SES', () => {
  it('lets notify send only as the notification sender, and send and inbox-poll as studio identities', () => {
    // Prepare
    const notification = [
      arn('ses', 'identity/notifications@mail.example.com'),
      arn('ses', 'identity/mail.example.com'),
    ];

    // Act
    const [send, poll, notify] = ['SendRole', 'InboxPollRole', 'NotifyRole'].map((role) =>
      statementsFor(template, role, 'ses:SendRawEmail'),
    );

    // Assess
    template.resourceCountIs('AWS::SES::ConfigurationSet', 1);
    for (const s of [send, poll, notify]) {
      expect(s).toHaveLength(1);
      expect(asArray(s![0]!.Action).sort()).toEqual(['ses:SendEmail', 'ses:SendRawEmail']);
      expect(JSON.stringify(s![0]!.Resource)).toContain(':configuration-set/');
    }
    expect(
      asArray(notify![0]!.Resource)
        .filter((r) => typeof r === 'string' && r.includes(':identity/'))
        .sort(),
    ).toEqual([...notification].sort());
    for (const s of [send, poll]) expect(s![0]!.Resource).toContain(arn('ses', 'identity/*'));
    expect(statementsFor(template, 'SettingsRole', 'ses:SendEmail')).toEqual([]);
  });

  it('lets only settings manage sender identities', () => {
    // Act
    const settings = statementsFor(template, 'SettingsRole', 'ses:CreateEmailIdentity');
    const others = ['SendRole', 'InboxPollRole', 'NotifyRole'].flatMap((r) =>
      statementsFor(template, r, 'ses:CreateEmailIdentity'),
    );

    // Assess
    expect(settings).toEqual([
      {
        Effect: 'Allow',
        Action: [
          'ses:CreateEmailIdentity',
          'ses:DeleteEmailIdentity',
          'ses:GetEmailIdentity',
          'ses:TagResource',
        ],
        Resource: arn('ses', 'identity/*'),
      },
    ]);
    expect(others).toEqual([]);
  });
});

describe('dead-letter queues', () => {
  it('creates seven SSE-encrypted queues (four DLQs, the bulk queue and its two DLQs) that deny non-TLS access', () => {
    // Prepare
    const queues = template.findResources('AWS::SQS::Queue') as Resources;

    // Act
    const policies = Object.values(template.findResources('AWS::SQS::QueuePolicy') as Resources);

    // Assess
    expect(Object.keys(queues)).toHaveLength(7);
    for (const queue of Object.values(queues)) expect(queue.Properties?.SqsManagedSseEnabled).toBe(true);
    expect(policies).toHaveLength(7);
    for (const policy of policies) {
      expect(JSON.stringify(policy.Properties?.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('sends failed asynchronous inbox-poll and notify invocations to their DLQs with few retries', () => {
    // Prepare
    const config = (fn: string, dlq: string, retries: number) => ({
      FunctionName: ref(fn, 'AWS::Lambda::Function'),
      MaximumRetryAttempts: retries,
      DestinationConfig: { OnFailure: { Destination: arnOf(dlq, 'AWS::SQS::Queue') } },
    });

    // Act
    const configs = template.findResources('AWS::Lambda::EventInvokeConfig');

    // Assess
    expect(Object.keys(configs)).toHaveLength(2);
    template.hasResourceProperties(
      'AWS::Lambda::EventInvokeConfig',
      config('InboxPollFunction', 'PollerFailuresDlq', 0),
    );
    template.hasResourceProperties(
      'AWS::Lambda::EventInvokeConfig',
      config('NotifyFunction', 'NotifyFailuresDlq', 1),
    );
  });
});

describe('alarms', () => {
  it('alarms on poller errors, notify errors, API 5xx and every DLQ, all to the SNS topic', () => {
    // Prepare
    const topic = ref('AlarmTopic', 'AWS::SNS::Topic');
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm') as Resources).map(
      (a) => a.Properties!,
    );

    // Act
    const byMetric = (name: string) => alarms.filter((a) => a.MetricName === name);

    // Assess
    expect(alarms).toHaveLength(9);
    for (const alarm of alarms) expect(alarm.AlarmActions).toEqual([topic]);
    expect(byMetric('Errors').map((a) => a.Dimensions)).toEqual(
      expect.arrayContaining([
        [{ Name: 'FunctionName', Value: ref('InboxPollFunction', 'AWS::Lambda::Function') }],
        [{ Name: 'FunctionName', Value: ref('NotifyFunction', 'AWS::Lambda::Function') }],
      ]),
    );
    expect(byMetric('5xx')).toHaveLength(1);
    expect(byMetric('5xx')[0]).toMatchObject({ Namespace: 'AWS/ApiGateway' });
    const depth = byMetric('ApproximateNumberOfMessagesVisible');
    expect(depth).toHaveLength(6);
    for (const alarm of depth) {
      expect(alarm).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    }
  });

  it('subscribes the alarm email only when the context gives one', () => {
    // Prepare
    const { template: withEmail } = buildStack({ alarmEmail: 'ops@studio.example.com' });

    // Act
    const subscriptions = withEmail.findResources('AWS::SNS::Subscription');

    // Assess
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    expect(Object.values(subscriptions)).toHaveLength(1);
    withEmail.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@studio.example.com',
    });
  });
});

describe('the HTTP API', () => {
  const allRoutes = [
    ...Object.keys(settingsRoutes).map((key) => [key, 'SettingsFunction'] as const),
    ...Object.keys(sendRoutes).map((key) => [key, 'SendFunction'] as const),
    ...Object.keys(inboxPollRoutes).map((key) => [key, 'InboxPollFunction'] as const),
    ...Object.keys(bulkRoutes).map((key) => [key, 'BulkApiFunction'] as const),
  ];
  const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route') as Resources).map(
    (r) => r.Properties!,
  );
  const integrations = template.findResources('AWS::ApiGatewayV2::Integration') as Resources;

  it('declares every route key of the four API functions, each integrated with its function', () => {
    // Prepare
    const integrationOf = (route: Record<string, unknown>) => {
      const target = route.Target as { 'Fn::Join': [string, [string, { Ref: string }]] };
      return integrations[target['Fn::Join'][1][1].Ref]!.Properties!.IntegrationUri;
    };

    // Act
    const byKey = new Map(routes.map((r) => [r.RouteKey as string, r]));

    // Assess
    expect(routes).toHaveLength(allRoutes.length);
    for (const [key, fn] of allRoutes) {
      const route = byKey.get(key);
      expect(route, key).toBeDefined();
      expect(integrationOf(route!), key).toEqual(arnOf(fn, 'AWS::Lambda::Function'));
    }
  });

  it('puts the JWT authorizer on every route except health, the OpenAPI document, its page, the OAuth2 callback, the upload URL and the unsubscribe and tracking links', () => {
    // Prepare
    const authorizerId = ref('ApiHttpApiJwtAuthorizer', 'AWS::ApiGatewayV2::Authorizer');

    // Act
    const open = routes.filter((r) => r.AuthorizationType !== 'JWT').map((r) => r.RouteKey);

    // Assess
    expect(open.sort()).toEqual([
      'GET /docs',
      'GET /docs/{file}',
      'GET /health',
      'GET /oauth/{provider}/callback',
      'GET /openapi.json',
      'GET /t/c/{token}',
      'GET /t/o/{token}',
      'GET /unsubscribe/{token}',
      'POST /unsubscribe/{token}',
      'PUT /attachments/{id}/content',
    ]);
    expect(publicRouteKeys([settingsRoutes, sendRoutes, inboxPollRoutes, bulkRoutes]).sort()).toEqual(open);
    for (const route of routes.filter((r) => r.AuthorizationType === 'JWT')) {
      expect(route.AuthorizerId).toEqual(authorizerId);
    }
    for (const route of routes.filter((r) => r.AuthorizationType !== 'JWT')) {
      expect(route.AuthorizationType).toBe('NONE');
    }
  });

  it('validates tokens of the stack’s Cognito user pool client', () => {
    // Prepare
    const pool = ref('AuthUserPool', 'AWS::Cognito::UserPool');
    const client = ref('AuthUserPoolWebClient', 'AWS::Cognito::UserPoolClient');

    // Act
    const authorizers = template.findResources('AWS::ApiGatewayV2::Authorizer');

    // Assess
    expect(Object.keys(authorizers)).toHaveLength(1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: {
        Audience: [client],
        Issuer: { 'Fn::GetAtt': [pool.Ref, 'ProviderURL'] },
      },
    });
  });

  it('throttles the stage, writes JSON access logs and allows the configured CORS origins', () => {
    // Prepare
    const logGroup = arnOf('ApiAccessLogs', 'AWS::Logs::LogGroup');

    // Act
    const stage = Object.values(template.findResources('AWS::ApiGatewayV2::Stage') as Resources)[0]!
      .Properties!;

    // Assess
    expect(stage).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: { DestinationArn: logGroup },
    });
    expect(JSON.parse((stage.AccessLogSettings as { Format: string }).Format)).toMatchObject({
      requestId: '$context.requestId',
      status: '$context.status',
      routeKey: '$context.routeKey',
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: Match.objectLike({
        AllowOrigins: ['https://studio.example.com'],
        AllowHeaders: ['authorization', 'content-type', 'if-match', 'idempotency-key'],
        AllowMethods: Match.arrayWith(['PATCH']),
        ExposeHeaders: ['etag', 'idempotent-replayed'],
      }),
    });
  });

  it('leaves CORS off when no origins are configured', () => {
    // Prepare
    const { template: noCors } = buildStack({ corsOrigins: [] });

    // Act
    const api = Object.values(noCors.findResources('AWS::ApiGatewayV2::Api') as Resources)[0]!;

    // Assess
    expect(api.Properties?.CorsConfiguration).toBeUndefined();
  });

  it('uses an existing OIDC issuer and audience instead of a user pool when the context gives them', () => {
    // Prepare
    const issuer = 'https://login.example.com/';

    // Act
    const { template: external } = buildStack({ jwtIssuer: issuer, jwtAudience: ['studio-app'] });

    // Assess
    external.resourceCountIs('AWS::Cognito::UserPool', 0);
    external.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      JwtConfiguration: { Audience: ['studio-app'], Issuer: issuer },
    });
    expect(Object.keys(external.findOutputs('UserPoolId'))).toHaveLength(0);
  });

  it('refuses an issuer without an audience', () => {
    // Prepare
    const props = { jwtIssuer: 'https://login.example.com/', jwtAudience: [] };

    // Act
    const build = () => buildStack(props);

    // Assess
    expect(build).toThrow(/jwtAudience/);
  });
});

describe('the Cognito user pool', () => {
  it('is invite-only with a strong password policy, optional TOTP and an admins group', () => {
    // Prepare
    const pool = ref('AuthUserPool', 'AWS::Cognito::UserPool');

    // Act
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;

    // Assess
    template.hasResourceProperties('AWS::Cognito::UserPool', {
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
      Policies: {
        PasswordPolicy: {
          MinimumLength: 12,
          RequireLowercase: true,
          RequireUppercase: true,
          RequireNumbers: true,
          RequireSymbols: true,
        },
      },
      MfaConfiguration: 'OPTIONAL',
      EnabledMfas: ['SOFTWARE_TOKEN_MFA'],
      DeletionProtection: 'ACTIVE',
    });
    template.hasResourceProperties('AWS::Cognito::UserPoolGroup', { GroupName: 'admins', UserPoolId: pool });
    template.hasResourceProperties('AWS::Cognito::UserPoolClient', {
      GenerateSecret: false,
      ExplicitAuthFlows: Match.arrayWith(['ALLOW_USER_SRP_AUTH']),
    });
    expect(outputs.UserPoolId?.Value).toEqual(pool);
    expect(outputs.UserPoolClientId?.Value).toEqual(
      ref('AuthUserPoolWebClient', 'AWS::Cognito::UserPoolClient'),
    );
    expect(JSON.stringify(outputs.ApiUrl?.Value)).toContain('execute-api');
  });
});

describe('IAM', () => {
  /** The only statements allowed a bare `*` resource, with the reason. */
  const allowedStarActions: Record<string, string> = {
    'xray:PutTraceSegments': 'X-Ray has no resource-level permissions',
    'xray:PutTelemetryRecords': 'X-Ray has no resource-level permissions',
    'ses:GetAccount':
      'GetAccount (the sending quota the bulk worker paces by) has no resource-level permissions',
  };

  function allStatements(): { owner: string; statement: Statement }[] {
    const out: { owner: string; statement: Statement }[] = [];
    for (const [id, r] of Object.entries(resources)) {
      const docs =
        r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy'
          ? [r.Properties?.PolicyDocument]
          : r.Type === 'AWS::IAM::Role'
            ? asArray(r.Properties?.Policies as { PolicyDocument: unknown }[]).map((p) => p.PolicyDocument)
            : [];
      for (const doc of docs) {
        for (const statement of (doc as { Statement: Statement[] }).Statement)
          out.push({ owner: id, statement });
      }
    }
    return out;
  }

  it('grants a "*" resource only for actions that have no narrower resource', () => {
    // Prepare
    const statements = allStatements();

    // Act
    const starGrants = statements.filter(
      ({ statement }) => statement.Effect === 'Allow' && asArray(statement.Resource as unknown).includes('*'),
    );

    // Assess
    expect(statements.length).toBeGreaterThan(20);
    for (const { owner, statement } of starGrants) {
      for (const action of asArray(statement.Action)) {
        expect(allowedStarActions, `${owner} grants ${action} on *`).toHaveProperty(action);
      }
    }
  });

  it('never grants wildcard actions', () => {
    // Prepare
    const statements = allStatements();

    // Act
    const wildcards = statements.flatMap(({ owner, statement }) =>
      asArray(statement.Action)
        .filter((a) => a.includes('*'))
        .map((a) => `${owner}: ${a}`),
    );

    // Assess
    expect(wildcards).toEqual([]);
  });

  it('keeps table access to the table and its three indexes', () => {
    // Prepare
    const table = arnOf('Table', 'AWS::DynamoDB::Table');

    // Act
    const statements = ['SettingsRole', 'SendRole', 'InboxPollRole', 'NotifyRole'].map((role) =>
      statementsFor(template, role, 'dynamodb:Query'),
    );

    // Assess
    for (const s of statements) {
      expect(s).toHaveLength(1);
      expect(s[0]!.Resource).toEqual([
        table,
        { 'Fn::Join': ['', [table, '/index/GSI1']] },
        { 'Fn::Join': ['', [table, '/index/GSI2']] },
        { 'Fn::Join': ['', [table, '/index/GSI3']] },
      ]);
      expect(asArray(s[0]!.Action)).not.toContain('dynamodb:Scan');
    }
  });

  it('targets the stack’s account and region in every hand-written ARN', () => {
    // Prepare
    const text = JSON.stringify(template.toJSON().Resources);

    // Act
    const foreign = [...text.matchAll(/arn:aws:[a-z0-9-]+:([a-z0-9-]*):/g)].filter(
      (m) => m[1] !== '' && m[1] !== region,
    );

    // Assess
    expect(stack.account).toBe(account);
    expect(foreign).toEqual([]);
  });
});

describe('bulk email', () => {
  it('feeds the worker from the bulk queue one message at a time with partial batch failures, and redrives to a DLQ after five tries', () => {
    // Prepare
    const queue = arnOf('BulkWorkQueue', 'AWS::SQS::Queue');

    // Act
    const mapping = template.findResources('AWS::Lambda::EventSourceMapping');

    // Assess
    expect(Object.keys(mapping)).toHaveLength(1);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: queue,
      FunctionName: ref('BulkWorkerFunction', 'AWS::Lambda::Function'),
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 1800,
      RedrivePolicy: { deadLetterTargetArn: arnOf('BulkQueueDlq', 'AWS::SQS::Queue'), maxReceiveCount: 5 },
    });
  });

  it('lets EventBridge Scheduler send only to the bulk queue, and the bulk functions manage only bulk-* schedules', () => {
    // Prepare
    const policies = Object.values(template.findResources('AWS::IAM::Policy') as Resources);

    // Act
    const schedulerPolicy = policies.find((p) =>
      JSON.stringify(p.Properties?.Roles).includes('BulkSchedulerRole'),
    );
    const apiPolicy = policies.find((p) => JSON.stringify(p.Properties?.Roles).includes('BulkApiRole'));

    // Assess
    expect(JSON.stringify(schedulerPolicy?.Properties?.PolicyDocument)).toContain('sqs:SendMessage');
    expect(JSON.stringify(schedulerPolicy?.Properties?.PolicyDocument)).not.toContain('lambda:');
    expect(JSON.stringify(apiPolicy?.Properties?.PolicyDocument)).toContain(
      `schedule/studio-mail-test/bulk-*`,
    );
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: 'scheduler.amazonaws.com' } })],
      }),
      Description: Match.stringLikeRegexp('bulk queue only'),
    });
  });

  it('publishes SES delivery, bounce, complaint, open and click events to the default bus, routed to bulk-events with a DLQ', () => {
    // Prepare
    const destinations = template.findResources('AWS::SES::ConfigurationSetEventDestination') as Resources;

    // Act
    const [destination] = Object.values(destinations);

    // Assess
    expect(Object.keys(destinations)).toHaveLength(1);
    expect(destination?.Properties?.EventDestination).toMatchObject({
      Enabled: true,
      MatchingEventTypes: ['delivery', 'bounce', 'complaint', 'open', 'click'],
      EventBridgeDestination: { EventBusArn: arn('events', 'event-bus/default') },
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: 'default',
      EventPattern: {
        source: ['aws.ses'],
        'detail-type': [
          'Email Delivered',
          'Email Bounced',
          'Email Complaint Received',
          'Email Opened',
          'Email Clicked',
        ],
      },
      Targets: [
        Match.objectLike({
          Arn: arnOf('BulkEventsFunction', 'AWS::Lambda::Function'),
          DeadLetterConfig: { Arn: arnOf('BulkEventsDlq', 'AWS::SQS::Queue') },
        }),
      ],
    });
  });

  it('keeps the link-signing key in Secrets Manager and gives its ARN to the bulk functions', () => {
    // Prepare
    const secret = ref('BulkLinkKey', 'AWS::SecretsManager::Secret');

    // Act
    const env = envOf('BulkWorkerFunction');

    // Assess
    expect(env.BULK_LINK_KEY_ARN).toEqual(secret);
    expect(env.BULK_QUEUE_URL).toEqual(ref('BulkWorkQueue', 'AWS::SQS::Queue'));
    expect(envOf('BulkApiFunction').BULK_SCHEDULER_ROLE_ARN).toEqual(
      arnOf('BulkSchedulerRole', 'AWS::IAM::Role'),
    );
  });
});
