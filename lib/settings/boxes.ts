/**
 * Email boxes: where incoming mail is collected, and what happens to it (department, user, task,
 * auto-reply), and when it is polled (its schedule). Saving a POP3 box logs in to its server first
 * unless told not to; the password goes to the secret store, the box keeps the reference; the
 * schedule goes to EventBridge Scheduler before the record is written, and is put back if the
 * record cannot be (lib/schedules/sync.ts).
 */

import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Stored } from '#lib/data/repositories';
import { ConflictError, ValidationError } from '#lib/domain/errors';
import type { EmailBox } from '#lib/domain/model';
import { legacyNameOf, nameOf, planScheduleOps } from '#lib/schedules/definition';
import { readDeployed, withScheduleOps } from '#lib/schedules/sync';
import type { Pop3Target, ProbeResult } from './connection-test.ts';
import type { SettingsContext } from './context.ts';
import { ConnectionFailedError } from './errors.ts';
import { type PatchRequest, patchRecord } from './patch.ts';
import { requirePasswordOnRedirect } from './redirect.ts';
import { checkSchedule, resolveSchedule } from './schedules.ts';
import {
  type BoxInput,
  type BoxView,
  boxInput,
  type ConnectionTestView,
  type verificationView,
} from './schemas.ts';
import { retireSecret, saveWithSecret, secretName } from './secrets.ts';
import { checkRefs } from './usage.ts';
import { Issues } from './validation.ts';

type Verification = z.infer<typeof verificationView>;

export const EXCHANGE_NOT_AVAILABLE =
  'The Exchange connector is not available yet, so Exchange boxes cannot be tested or polled; the settings are stored for when it is.';

export function boxView(box: Stored<EmailBox>, verification?: Verification): BoxView {
  const { passwordRef, ...connection } = box.connection;
  return { ...box, connection: { ...connection, passwordSet: Boolean(passwordRef) }, verification };
}

type BoxRecord = Omit<EmailBox, 'id' | 'connection' | 'schedule'> & {
  connection: Omit<EmailBox['connection'], 'passwordRef'>;
};

/** Checks the rules between fields and the references; returns the record to store (sans secret). */
async function checkBox(
  ctx: SettingsContext,
  sid: string,
  input: BoxInput,
  isCreate: boolean,
): Promise<BoxRecord> {
  const { id: _id, version: _version, connection: c, schedule, ...fields } = input;
  const issues = new Issues();
  checkSchedule(issues, schedule);
  if (fields.autoCreateTask) {
    if (!fields.taskTypeId)
      issues.add('taskTypeId', 'is required when autoCreateTask is on: choose the type of task to create.');
    if (!fields.taskStatusId)
      issues.add(
        'taskStatusId',
        'is required when autoCreateTask is on: choose the status new tasks start in.',
      );
  }
  if (fields.sendAutoReply && !fields.autoReplyFormLetterId)
    issues.add(
      'autoReplyFormLetterId',
      'is required when sendAutoReply is on: choose the form letter or HTML email to send.',
    );
  if (!fields.sendAutoReply) {
    if (fields.autoReplyToAll)
      issues.add(
        'autoReplyToAll',
        'only applies when sendAutoReply is on; turn that on or leave this false.',
      );
    if (fields.autoReplyFirstEmailOnly)
      issues.add(
        'autoReplyFirstEmailOnly',
        'only applies when sendAutoReply is on; turn that on or leave this false.',
      );
  }
  if (c.type === 'exchange' && !c.domain?.trim())
    issues.add('connection.domain', 'is required for Exchange: the Windows domain of the mailbox account.');
  if (c.type === 'pop3' && c.domain !== undefined)
    issues.add('connection.domain', 'is for Exchange only; leave it out for a POP3 box.');
  if (isCreate && c.password === undefined)
    issues.add(
      'connection.password',
      'is required for a new box: the password of the mailbox (Gmail: an app password).',
    );

  await checkRefs(ctx.repos, sid, issues, [
    ['departmentId', 'departments', fields.departmentId],
    ['userId', 'users', fields.userId],
    ['taskTypeId', 'taskTypes', fields.taskTypeId],
    ['taskStatusId', 'taskStatuses', fields.taskStatusId],
    ['emailTypeId', 'emailTypes', fields.emailTypeId],
    ['emailStatusId', 'emailStatuses', fields.emailStatusId],
    ['autoReplyFormLetterId', 'formLetters', fields.autoReplyFormLetterId],
  ]);
  const badRef = (field: string) => issues.list.some((i) => i.field === field);
  if (fields.userId && fields.departmentId && !badRef('departmentId') && !badRef('userId')) {
    const user = await ctx.repos.users.get(sid, fields.userId);
    if (user && user.departmentId !== fields.departmentId)
      issues.add(
        'userId',
        `is not in department "${fields.departmentId}"; choose a user of that department, or leave the department out.`,
      );
  }
  issues.throwIfAny();

  const { password: _password, port, domain, ...connection } = c;
  return {
    ...fields,
    connection: {
      ...connection,
      ...(c.type === 'exchange' ? { domain } : {}),
      port: port ?? (c.ssl ? 995 : 110),
    },
  };
}

/** Where a box's saved password is sent (lib/settings/redirect.ts). */
function boxDestination(c: {
  type: string;
  server: string;
  port: number;
  ssl: boolean;
  userName: string;
  domain?: string | undefined;
}) {
  return { type: c.type, server: c.server, port: c.port, ssl: c.ssl, userName: c.userName, domain: c.domain };
}

/** Runs the POP3 login and logs its outcome (never the password). */
async function probe(
  ctx: SettingsContext,
  message: string,
  boxId: string,
  target: Pop3Target,
): Promise<ProbeResult> {
  const result = await ctx.probePop3(target);
  const { server, port, ssl } = target;
  ctx.log.info(message, {
    boxId,
    server,
    port,
    ssl,
    ok: result.ok,
    kind: result.ok ? undefined : result.kind,
    ms: result.ms,
  });
  return result;
}

/** Logs in to the box's server with `password`; throws ConnectionFailedError when it fails. */
async function verify(
  ctx: SettingsContext,
  boxId: string,
  record: BoxRecord,
  password: string,
  wanted: boolean,
): Promise<Verification> {
  if (!wanted) return { tested: false, note: 'Not tested: saved with verify=false.' };
  if (record.connection.type === 'exchange') return { tested: false, note: EXCHANGE_NOT_AVAILABLE };
  const { server, port, ssl, userName } = record.connection;
  const result = await probe(ctx, 'email box connection verified on save', boxId, {
    server,
    port,
    ssl,
    userName,
    password,
  });
  if (!result.ok)
    throw new ConnectionFailedError(result.field, result.message, result.serverReply, result.kind);
  const note = record.connection.spa
    ? 'SPA is stored, but POP3 boxes log in with USER/PASS (SPA applies to Exchange).'
    : undefined;
  return { tested: true, ok: true, greeting: result.greeting, messageCount: result.messageCount, note };
}

export async function createBox(
  ctx: SettingsContext,
  sid: string,
  input: BoxInput,
  options: { verify: boolean },
): Promise<BoxView> {
  const id = input.id ?? randomUUID();
  const record = await checkBox(ctx, sid, input, true);
  if (await ctx.repos.emailBoxes.get(sid, id))
    throw new ConflictError(`An email box with id "${id}" already exists.`);
  const password = input.connection.password as string;
  const schedule = await resolveSchedule(ctx, sid, input.schedule, undefined);
  // Verify before writing anything: a failed login leaves no secret and no box behind.
  const verification = await verify(ctx, id, record, password, options.verify);
  const ops = planScheduleOps({ studioId: sid, after: { id, description: record.description, schedule } });
  // Schedule first, then secret and record; a failed record write takes both back.
  const saved = await withScheduleOps(ctx.scheduler, ctx.log, { studioId: sid, boxId: id }, ops, () =>
    saveWithSecret(
      ctx.secrets,
      ctx.log,
      {
        password,
        wantsSecret: true,
        name: () => secretName(sid, 'boxes', id, record.connection.type),
        tags: { studioId: sid, credential: 'email-box', boxId: id },
      },
      (ref) =>
        ctx.repos.emailBoxes.create(sid, id, {
          ...record,
          id,
          schedule,
          connection: { ...record.connection, passwordRef: ref as string },
        }),
    ),
  );
  return boxView(saved, verification);
}

export async function replaceBox(
  ctx: SettingsContext,
  sid: string,
  id: string,
  input: BoxInput,
  options: { verify: boolean; syncSchedule?: boolean },
): Promise<BoxView> {
  if (input.id !== undefined && input.id !== id)
    throw ValidationError.field('id', `must match the id in the path ("${id}"); a box's id cannot change.`);
  const current = await ctx.repos.emailBoxes.require(sid, id);
  const redirect = new Issues();
  requirePasswordOnRedirect(
    redirect,
    'connection.password',
    input.connection.password !== undefined,
    boxDestination(current.connection),
    boxDestination({
      ...input.connection,
      port: input.connection.port ?? (input.connection.ssl ? 995 : 110),
    }),
  );
  redirect.throwIfAny();
  const record = await checkBox(ctx, sid, input, false);
  const version = input.version ?? current.version;
  // Refused before anything is written, so a stale save does not touch the schedule either.
  if (version !== current.version)
    throw new ConflictError(
      `The email box "${id}" was changed by someone else (version ${current.version}, you sent ${version}); reload and try again.`,
    );
  const schedule = await resolveSchedule(ctx, sid, input.schedule, current.schedule);
  const after = { id, description: record.description, schedule };
  // A rename with unchanged settings moves the deployed schedule, console edits and all.
  const deployedBefore =
    current.schedule && schedule && nameOf(sid, current) !== nameOf(sid, after)
      ? await readDeployedOf(ctx, sid, current)
      : undefined;
  const ops = planScheduleOps({
    studioId: sid,
    before: current,
    after,
    force: options.syncSchedule,
    deployedBefore,
  });
  const currentRef = current.connection.passwordRef;
  const newPassword = input.connection.password;
  const verification = await verify(
    ctx,
    id,
    record,
    newPassword ?? (options.verify ? await ctx.secrets.get(currentRef) : ''),
    options.verify,
  );
  const saved = await withScheduleOps(ctx.scheduler, ctx.log, { studioId: sid, boxId: id }, ops, () =>
    saveWithSecret(
      ctx.secrets,
      ctx.log,
      {
        currentRef,
        password: newPassword,
        wantsSecret: true,
        name: () => secretName(sid, 'boxes', id, record.connection.type),
      },
      (ref) =>
        ctx.repos.emailBoxes.replace(
          sid,
          id,
          { ...record, id, schedule, connection: { ...record.connection, passwordRef: ref as string } },
          version,
        ),
    ),
  );
  return boxView(saved, verification);
}

/**
 * Changes the fields a merge patch names (If-Match required), through replaceBox: the login test,
 * the schedule sync and the secret work as on PUT. `schedule: null` removes the schedule.
 */
export async function patchBox(
  ctx: SettingsContext,
  sid: string,
  id: string,
  req: PatchRequest,
  options: { verify: boolean; syncSchedule?: boolean },
): Promise<BoxView> {
  const stored = await ctx.repos.emailBoxes.require(sid, id);
  return patchRecord(req, {
    label: `the email box "${id}"`,
    stored,
    schema: boxInput,
    keptWhenAbsent: ['schedule'],
    save: (input) => replaceBox(ctx, sid, id, input, options),
  });
}

/** Deletes the box's schedule, then the box (the schedule comes back if that fails), then its password. */
export async function deleteBox(ctx: SettingsContext, sid: string, id: string): Promise<void> {
  const current = await ctx.repos.emailBoxes.require(sid, id);
  const ops = planScheduleOps({ studioId: sid, before: current });
  const removed = await withScheduleOps(ctx.scheduler, ctx.log, { studioId: sid, boxId: id }, ops, () =>
    ctx.repos.emailBoxes.delete(sid, id),
  );
  await retireSecret(ctx.secrets, ctx.log, removed.connection.passwordRef);
}

/** Logs in with the stored password and reports the outcome as data (the test itself worked). */
export async function testBox(ctx: SettingsContext, sid: string, id: string): Promise<ConnectionTestView> {
  const box = await ctx.repos.emailBoxes.require(sid, id);
  const { server, port, ssl, userName, type } = box.connection;
  const base = { boxId: id, server, port, ssl };
  if (type === 'exchange')
    return {
      ...base,
      ok: false,
      field: 'connection.type',
      kind: 'not_available',
      message: EXCHANGE_NOT_AVAILABLE,
      ms: 0,
    };
  const password = await ctx.secrets.get(box.connection.passwordRef);
  const result = await probe(ctx, 'email box connection test', id, { server, port, ssl, userName, password });
  return { ...base, ...result };
}

/** The box's deployed schedule, under its name or the legacy one (lib/schedules/definition.ts). */
async function readDeployedOf(ctx: SettingsContext, sid: string, box: Stored<EmailBox>) {
  const legacy = legacyNameOf(sid, box);
  return (
    (await readDeployed(ctx.scheduler, nameOf(sid, box))) ??
    (legacy ? await readDeployed(ctx.scheduler, legacy) : undefined)
  );
}
