/**
 * One-off EventBridge Scheduler schedules (`at(...)`) that put a message on the bulk queue at a
 * time: a job's scheduled start, or its continuation when the studio cap's window has room. The
 * schedule deletes itself after it ran (ActionAfterCompletion DELETE).
 */
import {
  ConflictException,
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  type SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import type { BulkMessage } from '../model.ts';
import type { JobTimer } from '../ports.ts';

export interface AwsTimerOptions {
  group: string;
  queueArn: string;
  /** The role Scheduler assumes to send to the queue. */
  roleArn: string;
  deadLetterArn?: string;
}

const isNamed = (error: unknown, name: string) => (error as { name?: string } | null)?.name === name;

/** `at(2026-12-02T10:15:00)` in UTC; Scheduler has minute precision at best, seconds are kept. */
export function atExpression(when: Date): string {
  return `at(${when.toISOString().slice(0, 19)})`;
}

export class AwsTimer implements JobTimer {
  constructor(
    private readonly client: SchedulerClient,
    private readonly o: AwsTimerOptions,
  ) {}

  private input(name: string, when: Date, message: BulkMessage): CreateScheduleCommandInput {
    return {
      Name: name,
      GroupName: this.o.group,
      ScheduleExpression: atExpression(when),
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      ActionAfterCompletion: 'DELETE',
      Target: {
        Arn: this.o.queueArn,
        RoleArn: this.o.roleArn,
        Input: JSON.stringify(message),
        // The worker is idempotent: a retried start or continue costs nothing.
        RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 3600 },
        ...(this.o.deadLetterArn ? { DeadLetterConfig: { Arn: this.o.deadLetterArn } } : {}),
      },
    };
  }

  async at(name: string, when: Date, message: BulkMessage): Promise<void> {
    // A time in the past would be refused; a minute from now starts it as good as at once.
    const at = new Date(Math.max(when.getTime(), Date.now() + 60_000));
    try {
      await this.client.send(new CreateScheduleCommand(this.input(name, at, message)));
    } catch (error) {
      if (!(error instanceof ConflictException) && !isNamed(error, 'ConflictException')) throw error;
      await this.client.send(new UpdateScheduleCommand(this.input(name, at, message)));
    }
  }

  async cancel(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteScheduleCommand({ Name: name, GroupName: this.o.group }));
    } catch (error) {
      if (!isNamed(error, 'ResourceNotFoundException')) throw error;
    }
  }
}
