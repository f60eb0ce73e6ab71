import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { account, asArray, buildStack, logicalId, type Statement } from './fixture.ts';

const receiving = { receivingDomain: 'in.lumen.example.com' };

describe('push intake infrastructure', () => {
  it('adds a receipt rule for the receiving domain that scans, requires TLS, stores under inbound/ and notifies', () => {
    // Act
    const { template } = buildStack(receiving);
    // Assess
    template.resourceCountIs('AWS::SES::ReceiptRuleSet', 1);
    template.hasResourceProperties('AWS::SES::ReceiptRule', {
      Rule: Match.objectLike({
        Enabled: true,
        Recipients: ['in.lumen.example.com'],
        ScanEnabled: true,
        TlsPolicy: 'Require',
        Actions: [
          {
            S3Action: Match.objectLike({
              BucketName: { Ref: logicalId(template, 'AWS::S3::Bucket', 'BlobBucket') },
              ObjectKeyPrefix: 'inbound/',
              TopicArn: { Ref: Match.stringLikeRegexp('^ReceivingNotices') },
            }),
          },
        ],
      }),
    });
  });

  it('lets only SES of this account write received mail into the bucket, under inbound/ only', () => {
    // Act
    const { template } = buildStack(receiving);
    // Assess
    const policies = Object.values(template.findResources('AWS::S3::BucketPolicy'));
    const statements = policies.flatMap((p) => asArray(p.Properties.PolicyDocument.Statement as Statement[]));
    const ses = statements.filter((s) =>
      JSON.stringify((s as { Principal?: unknown }).Principal ?? {}).includes('ses.amazonaws.com'),
    );
    expect(ses).toHaveLength(1);
    expect(asArray(ses[0]?.Action)).toEqual(['s3:PutObject']);
    expect(JSON.stringify(ses[0]?.Resource)).toContain('/inbound/*');
    expect(ses[0]?.Condition).toEqual({ StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } });
  });

  it('queues the notices with a dead-letter queue and feeds the importer with partial batch failures', () => {
    // Act
    const { template } = buildStack(receiving);
    // Assess
    const dlq = logicalId(template, 'AWS::SQS::Queue', 'ReceivingDlq');
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: 5 },
      SqsManagedSseEnabled: true,
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'sqs',
      TopicArn: { Ref: Match.stringLikeRegexp('^ReceivingNotices') },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: Match.stringLikeRegexp('^InboxPoll') },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('pushed messages'),
    });
  });

  it('tells the functions the receiving domain, and builds none of it without one', () => {
    // Act
    const withDomain = buildStack(receiving).template;
    const without = buildStack().template;
    // Assess
    withDomain.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ RECEIVING_DOMAIN: 'in.lumen.example.com' }) },
    });
    without.resourceCountIs('AWS::SES::ReceiptRuleSet', 0);
    const inboxMappings = Object.values(without.findResources('AWS::Lambda::EventSourceMapping')).filter(
      (r) => JSON.stringify(r.Properties.FunctionName).includes('InboxPoll'),
    );
    expect(inboxMappings).toEqual([]);
  });

  it('refuses to synthesise push intake in a region where SES does not receive email', () => {
    // Act
    const build = () => buildStack({ ...receiving, env: { account, region: 'ap-east-1' } });
    // Assess
    expect(build).toThrow(/does not receive email in ap-east-1/);
  });

  it('stays clean under cdk-nag with push intake', () => {
    // Prepare
    const { app, stack } = buildStack(receiving);
    // Act
    const report = new AwsSolutionsChecks(app, { verbose: true }).validateScope(stack);
    // Assess
    expect(
      report.violations.map(
        (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
    ).toEqual([]);
  }, 120_000);
});
