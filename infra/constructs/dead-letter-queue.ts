import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge } from '#infra/nag';

export interface DeadLetterQueueProps {
  /** What fails into this queue, for the nag reason and the alarm description. */
  readonly purpose: string;
}

/**
 * An SQS dead-letter queue for one asynchronous path: SSE-SQS encrypted, TLS-only, 14 days of
 * retention, and an alarm when anything lands in it (`ApproximateNumberOfMessagesVisible > 0`).
 */
export class DeadLetterQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly alarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: DeadLetterQueueProps) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.alarm = new cloudwatch.Alarm(this, 'DepthAlarm', {
      alarmDescription: `studio-mail: messages in the dead-letter queue for ${props.purpose}.`,
      metric: this.queue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    acknowledge(
      this.queue,
      'AwsSolutions-SQS3',
      `This queue is itself the dead-letter destination for ${props.purpose}; a DLQ of a DLQ would only hide messages from the depth alarm.`,
    );
  }
}
