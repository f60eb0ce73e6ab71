/**
 * Key builders for the single table. Every key starts with the studio (tenant) id so that no
 * query can cross studios. See docs/data-model.md for the access patterns.
 */
import { addressKey } from '#lib/domain/addresses';

export const studioPk = (sid: string) => `ST#${sid}`;
export const refSk = (kind: string, id: string) => `${kind}#${id}`;

export const addressPk = (sid: string, address: string) => `ST#${sid}#ADDR#${addressKey(address)}`;
export const clientListPk = (sid: string) => `ST#${sid}#CLIENTS`;

export const boxPk = (sid: string, boxId: string) => `ST#${sid}#BOX#${boxId}`;
export const messagePk = (sid: string, id: string) => `ST#${sid}#MSG#${id}`;
export const messageIdPk = (sid: string, messageId: string) => `ST#${sid}#MID#${messageId.toLowerCase()}`;
export const clientTimelinePk = (sid: string, clientId: string) => `ST#${sid}#CLIENT#${clientId}`;
export const unassignedPk = (sid: string) => `ST#${sid}#UNASSIGNED`;
export const quarantinePk = (sid: string) => `ST#${sid}#QUARANTINE`;
export const threadPk = (sid: string, threadId: string) => `ST#${sid}#THREAD#${threadId}`;
/** GSI3: a box's mail in one of its states, by date. */
export const boxMailPk = (sid: string, boxId: string, state: string) =>
  `ST#${sid}#BOX#${boxId}#MAIL#${state}`;
export const taskPk = (sid: string, id: string) => `ST#${sid}#TASK#${id}`;
export const taskListPk = (sid: string) => `ST#${sid}#TASKS`;
export const idempotencyPk = (sid: string, scope: string, key: string) => `ST#${sid}#IDEM#${scope}#${key}`;
