import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as ses from 'aws-cdk-lib/aws-ses';
import * as actions from 'aws-cdk-lib/aws-ses-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DeadLetterQueue } from '#infra/constructs/dead-letter-queue';
import { acknowledge } from '#infra/nag';

/**
 * Regions where Amazon SES receives email (its `inbound-smtp.<region>.amazonaws.com` endpoints),
 * as AWS lists them; receiving is not offered everywhere SES sends. Declared once: the stack
 * refuses a receiving domain in any other region when it is synthesised.
 */
export const SES_RECEIVING_REGIONS = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'ca-central-1',
  'eu-central-1',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-north-1',
  'eu-south-1',
  'ap-south-1',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
  'sa-east-1',
  'il-central-1',
] as const;

/** The prefix SES writes received messages under (lib/inbox/push.ts reads and clears it). */
export const INBOUND_PREFIX = 'inbound/';

export interface ReceivingProps {
  /** The receiving domain (its MX record points at SES's inbound endpoint of this region). */
  readonly domain: string;
  readonly bucket: s3.IBucket;
  /** The inbox-poll function: it imports each pushed message from the queue. */
  readonly importer: lambda.IFunction;
}

/**
 * Push intake in AWS: a receipt rule for the receiving domain (spam and virus scanning on, TLS
 * required) whose S3 action stores each message under `inbound/` and publishes SES's notice to
 * an SNS topic; the topic feeds an SQS queue (DLQ after 5 receives) that the importer reads with
 * partial batch responses, so one failing message is retried alone and is never lost.
 */
export class Receiving extends Construct {
  readonly ruleSet: ses.ReceiptRuleSet;
  readonly queue: sqs.Queue;
  readonly deadLetters: DeadLetterQueue;
  readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: ReceivingProps) {
    super(scope, id);
    const region = Stack.of(this).region;
    if (!Token.isUnresolved(region) && !(SES_RECEIVING_REGIONS as readonly string[]).includes(region)) {
      throw new Error(
        `Amazon SES does not receive email in ${region}, so push intake (studio-mail:receivingDomain = ${props.domain}) cannot be deployed there. ` +
          `Deploy in one of ${SES_RECEIVING_REGIONS.join(', ')}, or leave studio-mail:receivingDomain unset (polling only).`,
      );
    }

    this.topic = new sns.Topic(this, 'Notices', {
      displayName: 'studio-mail received-mail notices',
      enforceSSL: true,
    });
    // SES publishes only to a topic its own account's receipt rules name.
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: ['sns:Publish'],
        principals: [new iam.ServicePrincipal('ses.amazonaws.com')],
        resources: [this.topic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    acknowledge(
      this.topic,
      'AwsSolutions-SNS2',
      'SES receipt notices carry no message content (that is in the encrypted bucket), only where it is stored and the verdicts; an SSE topic would need a KMS key policy for SES for no gain.',
    );

    this.deadLetters = new DeadLetterQueue(this, 'Dlq', {
      purpose: 'pushed messages the importer failed five times (received-mail queue)',
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Above the importer's timeout, so a message is not handed to a second worker mid-import.
      visibilityTimeout: Duration.minutes(16),
      retentionPeriod: Duration.days(14),
      deadLetterQueue: { queue: this.deadLetters.queue, maxReceiveCount: 5 },
    });
    this.topic.addSubscription(new subscriptions.SqsSubscription(this.queue, { rawMessageDelivery: false }));
    props.importer.addEventSource(
      new SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true, maxConcurrency: 5 }),
    );

    // The S3 action adds the bucket policy that lets SES (for this account only) write under inbound/.
    this.ruleSet = new ses.ReceiptRuleSet(this, 'RuleSet', { dropSpam: false });
    this.ruleSet.addRule('StoreAndNotify', {
      recipients: [props.domain],
      scanEnabled: true,
      tlsPolicy: ses.TlsPolicy.REQUIRE,
      actions: [new actions.S3({ bucket: props.bucket, objectKeyPrefix: INBOUND_PREFIX, topic: this.topic })],
    });
  }
}
