/**
 * Notification state in the single table, in the box's partition:
 * - `NOTIFY`: the alert state (lib/notify/decide.ts), versioned for optimistic locking;
 * - `NOTIFY#RUN#<runId>`: the claim of one run's notification, written together with the state it
 *   produced, so a redelivered event neither counts twice nor sends twice. Claims expire after 30 days.
 */

import { boxPk } from '#lib/data/keys';
import { ConditionFailed, type Table } from '#lib/data/table';
import { initialState, type NotificationKind, type NotifyState } from './decide.ts';

/** `none`: nothing to send; `sending`: claimed, send in progress or in doubt; `failed`: may be retried. */
export type ClaimStatus = 'none' | 'sending' | 'sent' | 'failed';

export interface NotifyClaim {
  runId: string;
  status: ClaimStatus;
  email?: NotificationKind;
  to?: string;
  /** The streak the email reports on, fixed when decided so a retry writes the same email. */
  failingSince?: string;
  failedRuns?: number;
  alertKind?: string;
  attempts: number;
  messageId?: string;
  error?: string;
}

const CLAIM_DAYS = 30;

export class NotifyStore {
  constructor(
    private readonly table: Table,
    private readonly nowMs: () => number = Date.now,
  ) {}

  private stateKey(sid: string, boxId: string) {
    return { PK: boxPk(sid, boxId), SK: 'NOTIFY' };
  }

  private claimKey(sid: string, boxId: string, runId: string) {
    return { PK: boxPk(sid, boxId), SK: `NOTIFY#RUN#${runId}` };
  }

  async state(sid: string, boxId: string): Promise<NotifyState> {
    const item = await this.table.get(this.stateKey(sid, boxId));
    if (!item) return initialState();
    const { PK: _pk, SK: _sk, entity: _e, ...rest } = item;
    return { ...initialState(), ...(rest as Partial<NotifyState>) };
  }

  async claim(sid: string, boxId: string, runId: string): Promise<NotifyClaim | undefined> {
    const item = await this.table.get(this.claimKey(sid, boxId, runId));
    if (!item) return undefined;
    const { PK: _pk, SK: _sk, entity: _e, ttl: _t, ...rest } = item;
    return rest as unknown as NotifyClaim;
  }

  /**
   * Writes the run's claim and (unless undefined) the next state in one transaction. Throws
   * ConditionFailed when the run was claimed already or the state moved since `expectedVersion`.
   */
  async commit(
    sid: string,
    boxId: string,
    claim: NotifyClaim,
    next: NotifyState | undefined,
    expectedVersion: number,
  ): Promise<void> {
    const claimPut = {
      Put: {
        Item: {
          ...this.claimKey(sid, boxId, claim.runId),
          entity: 'NOTIFYCLAIM',
          ...claim,
          ttl: Math.floor(this.nowMs() / 1000) + CLAIM_DAYS * 86400,
        },
        ConditionExpression: 'attribute_not_exists(PK)',
      },
    };
    if (!next) {
      await this.table.transact([claimPut]);
      return;
    }
    const { version: _v, ...fields } = next;
    await this.table.transact([
      claimPut,
      {
        Put: {
          Item: { ...this.stateKey(sid, boxId), entity: 'NOTIFY', ...fields, version: expectedVersion + 1 },
          ConditionExpression: expectedVersion === 0 ? 'attribute_not_exists(PK)' : '#v = :v',
          ...(expectedVersion === 0
            ? {}
            : {
                ExpressionAttributeNames: { '#v': 'version' },
                ExpressionAttributeValues: { ':v': expectedVersion },
              }),
        },
      },
    ]);
  }

  /**
   * Records that an alert about `kind` went out for the run that finished `at`: only while the box
   * is still failing and no later alert is recorded; the version moves, so a decision made on the
   * state before this is decided again.
   */
  async recordAlert(sid: string, boxId: string, kind: string, at: string): Promise<void> {
    try {
      await this.table.update({
        Key: this.stateKey(sid, boxId),
        UpdateExpression: 'SET alertKind = :k, alertedAt = :at, #v = #v + :one',
        ConditionExpression:
          'attribute_exists(PK) AND failing = :t AND (attribute_not_exists(alertedAt) OR alertedAt < :at)',
        ExpressionAttributeNames: { '#v': 'version' },
        ExpressionAttributeValues: { ':k': kind, ':at': at, ':one': 1, ':t': true },
      });
    } catch (error) {
      // Recovered, or a later alert is recorded already: this one is history.
      if (!(error instanceof ConditionFailed)) throw error;
    }
  }

  /** Moves a claim from one status to another; false when it was not in `from` (someone else moved it). */
  async move(
    sid: string,
    boxId: string,
    runId: string,
    from: ClaimStatus,
    to: ClaimStatus,
    extra: { messageId?: string; error?: string } = {},
  ): Promise<boolean> {
    const sets = ['#s = :to', ...(to === 'sending' ? ['attempts = attempts + :one'] : [])];
    const values: Record<string, unknown> = { ':from': from, ':to': to };
    if (to === 'sending') values[':one'] = 1;
    if (extra.messageId) {
      sets.push('messageId = :m');
      values[':m'] = extra.messageId;
    }
    if (extra.error) {
      sets.push('#e = :e');
      values[':e'] = extra.error.slice(0, 1000);
    }
    try {
      await this.table.update({
        Key: this.claimKey(sid, boxId, runId),
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: '#s = :from',
        ExpressionAttributeNames: { '#s': 'status', ...(extra.error ? { '#e': 'error' } : {}) },
        ExpressionAttributeValues: values,
      });
      return true;
    } catch (error) {
      if (error instanceof ConditionFailed) return false;
      throw error;
    }
  }
}
