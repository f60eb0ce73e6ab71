import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  GetScheduleCommand,
  ResourceNotFoundException,
  type SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import type { ScheduleDefinition, Scheduler } from '#lib/ports/index';

export interface AwsSchedulerOptions {
  group: string;
  /** Lambda ARN of the inbox poller. */
  targetArn: string;
  /** Role EventBridge Scheduler assumes to invoke the poller. */
  roleArn: string;
  deadLetterArn?: string;
}

/** EventBridge Scheduler: one schedule per email box in the stack's schedule group. */
export class AwsScheduler implements Scheduler {
  constructor(
    private readonly client: SchedulerClient,
    private readonly options: AwsSchedulerOptions,
  ) {}

  private input(def: ScheduleDefinition) {
    return {
      Name: def.name,
      GroupName: this.options.group,
      Description: def.description,
      ScheduleExpression: def.expression,
      ScheduleExpressionTimezone: def.timeZone,
      State: def.enabled ? ('ENABLED' as const) : ('DISABLED' as const),
      FlexibleTimeWindow: { Mode: 'OFF' as const },
      Target: {
        Arn: this.options.targetArn,
        RoleArn: this.options.roleArn,
        Input: JSON.stringify(def.input),
        // A missed poll is repeated by the next one; retrying late would poll outside the window.
        RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 },
        DeadLetterConfig: this.options.deadLetterArn ? { Arn: this.options.deadLetterArn } : undefined,
      },
    };
  }

  async put(def: ScheduleDefinition): Promise<void> {
    try {
      await this.client.send(new UpdateScheduleCommand(this.input(def)));
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
      try {
        await this.client.send(new CreateScheduleCommand(this.input(def)));
      } catch (createError) {
        // Created concurrently by another request: update to our definition.
        if (!(createError instanceof ConflictException)) throw createError;
        await this.client.send(new UpdateScheduleCommand(this.input(def)));
      }
    }
  }

  async get(name: string): Promise<ScheduleDefinition | undefined> {
    try {
      const out = await this.client.send(
        new GetScheduleCommand({ Name: name, GroupName: this.options.group }),
      );
      return {
        name,
        description: out.Description,
        expression: out.ScheduleExpression ?? '',
        timeZone: out.ScheduleExpressionTimezone ?? 'UTC',
        enabled: out.State === 'ENABLED',
        input: out.Target?.Input ? (JSON.parse(out.Target.Input) as Record<string, unknown>) : {},
      };
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return undefined;
      throw error;
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteScheduleCommand({ Name: name, GroupName: this.options.group }));
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
    }
  }
}
