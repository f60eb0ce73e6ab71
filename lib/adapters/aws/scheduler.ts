import {
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  GetScheduleCommand,
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

/** By name, so that errors from another copy of the SDK (or a test double) are recognised too. */
const isError = (error: unknown, name: string) => (error as { name?: string } | null)?.name === name;

/**
 * EventBridge Scheduler: one schedule per email box in the stack's schedule group. Every write
 * sends the whole definition (UpdateSchedule resets what it is not given). The target input is the
 * definition's input as JSON; Scheduler replaces `<aws.scheduler.scheduled-time>` in it on each
 * invocation.
 */
export class AwsScheduler implements Scheduler {
  constructor(
    private readonly client: SchedulerClient,
    private readonly options: AwsSchedulerOptions,
  ) {}

  private input(def: ScheduleDefinition): CreateScheduleCommandInput {
    return {
      Name: def.name,
      GroupName: this.options.group,
      Description: def.description,
      ScheduleExpression: def.expression,
      ScheduleExpressionTimezone: def.timeZone,
      State: def.enabled ? 'ENABLED' : 'DISABLED',
      // Exactly on the minute: the poller checks the window at the scheduled minute.
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: this.options.targetArn,
        RoleArn: this.options.roleArn,
        Input: JSON.stringify(def.input),
        // A missed poll is repeated by the next one; retrying late would poll outside the window.
        RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 },
        ...(this.options.deadLetterArn ? { DeadLetterConfig: { Arn: this.options.deadLetterArn } } : {}),
      },
    };
  }

  async put(def: ScheduleDefinition): Promise<void> {
    // Only the settings function is given these; checked here so other functions can still build deps.
    if (!this.options.targetArn || !this.options.roleArn)
      throw new Error(
        'Schedules need the poller ARN (POLLER_ARN) and the scheduler role (SCHEDULER_ROLE_ARN).',
      );
    const input = this.input(def);
    try {
      await this.client.send(new UpdateScheduleCommand(input));
    } catch (error) {
      if (!isError(error, 'ResourceNotFoundException')) throw error;
      try {
        await this.client.send(new CreateScheduleCommand(input));
      } catch (createError) {
        // Created concurrently by another request: update to our definition.
        if (!isError(createError, 'ConflictException')) throw createError;
        await this.client.send(new UpdateScheduleCommand(input));
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
        input: parseInput(out.Target?.Input),
      };
    } catch (error) {
      if (isError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteScheduleCommand({ Name: name, GroupName: this.options.group }));
    } catch (error) {
      if (!isError(error, 'ResourceNotFoundException')) throw error;
    }
  }
}

/** The target input as an object; a console edit that is not a JSON object is kept as `{ raw }`. */
function parseInput(text: string | undefined): Record<string, unknown> {
  if (!text) return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  return { raw: text };
}
