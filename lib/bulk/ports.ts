/**
 * Ports of bulk email: the queue the work fans out through, the one-off timer that starts or
 * continues a job later, and the provider's sending limits. Each has an AWS adapter and a local
 * twin in ./adapters.
 */
import type { BulkMessage } from './model.ts';

/** At-least-once delivery: a message may arrive twice, and again if its handler did not finish. */
export interface BulkQueue {
  send(messages: BulkMessage[]): Promise<void>;
}

/** One-off "at this time, put this message on the queue" (EventBridge Scheduler `at()` in AWS). */
export interface JobTimer {
  /** Replaces a timer of the same name. */
  at(name: string, when: Date, message: BulkMessage): Promise<void>;
  cancel(name: string): Promise<void>;
}

/** What the provider lets the studio send now. */
export interface SendLimits {
  /** Messages per second at most. */
  ratePerSecond: number;
  /** Left of the provider's own 24-hour quota (SES), when it has one. */
  remaining24h?: number;
}

/** SES: the account's MaxSendRate and what is left of Max24HourSend (GetAccount). */
export interface ProviderQuota {
  ses(): Promise<SendLimits>;
}
