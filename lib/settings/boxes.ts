/**
 * Email boxes: where incoming mail is collected, and what happens to it (department, user, task,
 * auto-reply), and when it is polled (its schedule). Saving a POP3 or IMAP box logs in to its server first
 * unless told not to; the password goes to the secret store, the box keeps the reference; the
 * schedule goes to EventBridge Scheduler before the record is written, and is put back if the
 * record cannot be (lib/schedules/sync.ts).
 */

import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Stored } from '#lib/data/repositories';
import { ConflictError, ValidationError } from '#lib/domain/errors';
import type { BoxAuthentication, EmailBox } from '#lib/domain/model';
import {
  localPartProblem,
  receivingAddress,
  receivingLocalPart,
  takesPoll,
  takesPush,
} from '#lib/domain/receiving';
import { isGraphConnection } from '#lib/graph/detect';
import { defaultPort } from '#lib/inbox/connect';
import { PENDING_GRANT } from '#lib/oauth/grant';
import { legacyNameOf, nameOf, planScheduleOps } from '#lib/schedules/definition';
import { readDeployed, withScheduleOps } from '#lib/schedules/sync';
import type { Pop3Target, ProbeResult } from './connection-test.ts';
import type { SettingsContext } from './context.ts';
import { ConnectionFailedError } from './errors.ts';
import { type PatchRequest, patchRecord } from './patch.ts';
import { redirectedFields, requirePasswordOnRedirect } from './redirect.ts';
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

export function boxView(
  box: Stored<EmailBox>,
  verification?: Verification,
  receiving: Pick<BoxView, 'receivingAddress' | 'forwardingConfirmation'> = {},
): BoxView {
  const { passwordRef, ...connection } = box.connection;
  // An OAuth2 box's secret exists from the start; what counts is whether it holds a sign-in.
  const passwordSet =
    connection.authentication === 'oauth2' ? Boolean(connection.oauth) : Boolean(passwordRef);
  return { ...box, connection: { ...connection, passwordSet }, verification, ...receiving };
}

/** The box's receiving address (push or both), on the deployment's receiving domain. */
export function receivingAddressOf(
  ctx: Pick<SettingsContext, 'receivingDomain'>,
  sid: string,
  box: EmailBox,
) {
  if (!takesPush(box.intake) || !ctx.receivingDomain) return {};
  return {
    receivingAddress: receivingAddress(
      receivingLocalPart(sid, box.id, box.receivingLocalPart),
      ctx.receivingDomain,
    ),
  };
}

/** One box as GET shows it: with its receiving address and a pending forwarding confirmation. */
export async function readBox(ctx: SettingsContext, sid: string, id: string): Promise<BoxView> {
  const box = await ctx.repos.emailBoxes.require(sid, id);
  const state = takesPush(box.intake) ? await ctx.repos.boxState.get(sid, id) : undefined;
  return boxView(box, undefined, {
    ...receivingAddressOf(ctx, sid, box),
    ...(state?.forwardingConfirmation ? { forwardingConfirmation: state.forwardingConfirmation } : {}),
  });
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
  const authentication = authenticationOf(c);
  if (c.spa && authentication !== 'ntlm')
    issues.add(
      'connection.spa',
      `is SPA, the NTLM log-in; it cannot be on with authentication "${authentication}": turn it off, or set authentication to "ntlm".`,
    );
  const graph = isGraphConnection(c);
  if (graph) checkGraph(issues, c, authentication, isCreate && takesPoll(fields.intake));
  else {
    if (c.access !== undefined)
      issues.add('connection.access', 'is for Exchange boxes only (graph: Exchange Online); leave it out.');
    for (const field of ['tenantId', 'clientId'] as const)
      if (c[field] !== undefined)
        issues.add(
          `connection.${field}`,
          'is for Exchange Online boxes read through Microsoft Graph only (type exchange, access graph); leave it out.',
        );
  }
  if (c.type === 'exchange' && !graph && !c.domain?.trim())
    issues.add('connection.domain', 'is required for Exchange: the Windows domain of the mailbox account.');
  if (c.type !== 'exchange' && c.domain !== undefined && authentication !== 'ntlm')
    issues.add(
      'connection.domain',
      `is for Exchange only; leave it out for a${c.type === 'imap' ? 'n IMAP' : ' POP3'} box, unless it logs in with SPA (spa on, or authentication "ntlm").`,
    );
  const afterImport = checkAfterImport(issues, c, fields.leaveOnServer, graph);
  const leaveOnServer = fields.leaveOnServer ?? true;
  if (authentication === 'oauth2') {
    if (!c.provider) issues.add('connection.provider', 'is required with OAuth2: google or microsoft.');
    if (c.password !== undefined)
      issues.add(
        'connection.password',
        'is not used with OAuth2: after saving, sign in with the provider (GET /oauth/{provider}/start?boxId=…).',
      );
  } else if (c.provider !== undefined)
    issues.add('connection.provider', 'only applies with authentication "oauth2"; leave it out.');
  if (takesPush(fields.intake) && !ctx.receivingDomain)
    issues.add(
      'intake',
      'push needs a receiving domain, and this deployment has none (RECEIVING_DOMAIN); choose poll.',
    );
  if (fields.receivingLocalPart !== undefined) {
    const problem = localPartProblem(fields.receivingLocalPart);
    if (problem) issues.add('receivingLocalPart', problem);
  }
  if (fields.intake === 'push' && schedule?.enabled)
    issues.add(
      'schedule.enabled',
      'a push-only box is not polled: turn the schedule off, or choose intake both to poll it too.',
    );
  if (
    isCreate &&
    !graph &&
    c.password === undefined &&
    authentication !== 'oauth2' &&
    takesPoll(fields.intake)
  )
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

  const {
    password: _password,
    port,
    domain,
    provider,
    authentication: _authentication,
    afterImport: _afterImport,
    ...connection
  } = c;
  return {
    ...fields,
    // keep and mark-read leave mail on the server; move and delete take it off the folder.
    leaveOnServer: afterImport ? afterImport === 'keep' || afterImport === 'mark-read' : leaveOnServer,
    connection: {
      ...connection,
      ...(afterImport ? { afterImport } : {}),
      ...((c.type === 'exchange' && !graph) || authentication === 'ntlm' ? { domain } : {}),
      // Graph is HTTPS; the port is only kept for the record.
      port: port ?? (graph ? 443 : defaultPort(c.type, c.ssl)),
      spa: authentication === 'ntlm',
      authentication,
      ...(authentication === 'oauth2' ? { provider } : {}),
    },
  };
}

/** The rules of a box read through Microsoft Graph. */
function checkGraph(
  issues: Issues,
  c: BoxInput['connection'],
  authentication: BoxAuthentication,
  needsSecret: boolean,
): void {
  if (authentication === 'ntlm')
    issues.add(
      'connection.authentication',
      'SPA (NTLM) is for Exchange on-premises; Microsoft Graph signs in with app credentials (password) or oauth2.',
    );
  if (authentication === 'oauth2' && c.provider !== undefined && c.provider !== 'microsoft')
    issues.add('connection.provider', 'must be microsoft for an Exchange Online box.');
  if (authentication === 'password') {
    if (!c.tenantId)
      issues.add(
        'connection.tenantId',
        'is required for Microsoft Graph with app credentials: the Directory (tenant) ID of the app registration.',
      );
    if (!c.clientId)
      issues.add(
        'connection.clientId',
        'is required for Microsoft Graph with app credentials: the Application (client) ID of the app registration.',
      );
    if (needsSecret && c.password === undefined)
      issues.add(
        'connection.password',
        "is required for a new box: the app registration's client secret (its Value), or sign in with authentication oauth2.",
      );
  }
}

/**
 * What becomes of stored mail (afterImport, moveToFolder) and the folder read, checked against the
 * box type and leaveOnServer; returns the afterImport an IMAP or Graph box stores (keep or delete
 * by leaveOnServer when not given), undefined for POP3 (and Exchange on-premises over POP3).
 */
function checkAfterImport(
  issues: Issues,
  c: BoxInput['connection'],
  leaveGiven: boolean | undefined,
  graph: boolean,
) {
  const leaveOnServer = leaveGiven ?? true;
  if (c.type !== 'imap' && !graph) {
    for (const field of ['folder', 'afterImport', 'moveToFolder'] as const)
      if (c[field] !== undefined)
        issues.add(
          `connection.${field}`,
          'is for IMAP and Microsoft Graph boxes only; a POP3 box reads its one mailbox and keeps or deletes mail as leaveOnServer says.',
        );
    return undefined;
  }
  if (graph && c.folder !== undefined)
    issues.add('connection.folder', 'is for IMAP boxes; Microsoft Graph reads the Inbox. Leave it out.');
  const afterImport = c.afterImport ?? (leaveOnServer ? 'keep' : 'delete');
  if (!leaveOnServer && (afterImport === 'keep' || afterImport === 'mark-read'))
    issues.add(
      'connection.afterImport',
      `"${afterImport}" leaves mail on the server, but leaveOnServer is false: choose move or delete, or set leaveOnServer true.`,
    );
  // Said both ways: mail must not leave the server against an explicit leaveOnServer.
  if (leaveGiven === true && (afterImport === 'move' || afterImport === 'delete'))
    issues.add(
      'connection.afterImport',
      `"${afterImport}" takes mail off the server, but leaveOnServer is true: choose keep or mark-read, or set leaveOnServer false (or leave it out).`,
    );
  if (afterImport === 'move' && !c.moveToFolder?.trim())
    issues.add(
      'connection.moveToFolder',
      'is required with afterImport "move": the folder imported mail goes to.',
    );
  if (afterImport !== 'move' && c.moveToFolder !== undefined)
    issues.add('connection.moveToFolder', 'only applies with afterImport "move"; leave it out.');
  if (
    afterImport === 'move' &&
    c.moveToFolder?.trim().toLowerCase() === (c.folder?.trim() || 'INBOX').toLowerCase()
  )
    issues.add('connection.moveToFolder', 'must be another folder than the one read (connection.folder).');
  return afterImport;
}

/** The log-in a box input asks for: `authentication`, else ntlm when SPA is on, else password. */
export function authenticationOf(c: { authentication?: BoxAuthentication | undefined; spa: boolean }) {
  return c.authentication ?? (c.spa ? 'ntlm' : 'password');
}

/** Where a box's saved password is sent (lib/settings/redirect.ts). */
function boxDestination(c: {
  type: string;
  server: string;
  port: number;
  ssl: boolean;
  userName: string;
  domain?: string | undefined;
  tenantId?: string | undefined;
  clientId?: string | undefined;
}) {
  // A Graph client secret is sent to its tenant's token service, for its app.
  return {
    type: c.type,
    server: c.server,
    port: c.port,
    ssl: c.ssl,
    userName: c.userName,
    domain: c.domain,
    tenantId: c.tenantId,
    clientId: c.clientId,
  };
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

function logProbe(
  ctx: SettingsContext,
  message: string,
  boxId: string,
  c: { server: string; port: number; ssl: boolean },
  result: ProbeResult,
): void {
  ctx.log.info(message, {
    boxId,
    server: c.server,
    port: c.port,
    ssl: c.ssl,
    ok: result.ok,
    kind: result.ok ? undefined : result.kind,
    ms: result.ms,
  });
}

/** Logs in to the box's server with `password`; throws ConnectionFailedError when it fails. */
async function verify(
  ctx: SettingsContext,
  sid: string,
  boxId: string,
  record: BoxRecord,
  password: string | undefined,
  wanted: boolean,
): Promise<Verification> {
  if (!wanted) return { tested: false, note: 'Not tested: saved with verify=false.' };
  if (!takesPoll(record.intake))
    return { tested: false, note: 'Not tested: a push-only box is never logged in to.' };
  if (!password && record.connection.authentication !== 'oauth2')
    throw new ConnectionFailedError(
      'connection.password',
      'is required to poll this box: the password of the mailbox (Gmail: an app password).',
    );
  const c = record.connection;
  if (isGraphConnection(c)) {
    if (c.authentication === 'oauth2' && !c.oauth)
      return {
        tested: false,
        note: `Not tested yet: sign in with microsoft (GET /oauth/microsoft/start?boxId=${boxId}); the box is tested then.`,
      };
    if (!ctx.probeGraph)
      return { tested: false, note: 'Not tested: Microsoft Graph is not configured here.' };
    const result = await ctx.probeGraph({ ...record, id: boxId }, password ?? '', sid);
    logProbe(ctx, 'email box connection verified on save', boxId, c, result);
    if (!result.ok)
      throw new ConnectionFailedError(result.field, result.message, result.serverReply, result.kind);
    return { tested: true, ok: true, greeting: result.greeting, messageCount: result.messageCount };
  }
  // Exchange on-premises is read through its POP3 endpoint (SPA = NTLM with the Domain): tested as POP3.
  if (c.authentication === 'oauth2') {
    // The sign-in comes after the save; a box already signed in is tested with its tokens.
    if (!c.oauth || !ctx.oauthToken)
      return {
        tested: false,
        note: `Not tested yet: sign in with ${c.provider} (GET /oauth/${c.provider}/start?boxId=${boxId}); the box is tested then.`,
      };
  }
  const result = await probe(
    ctx,
    'email box connection verified on save',
    boxId,
    targetOf(ctx, sid, boxId, c, password ?? ''),
  );
  if (!result.ok)
    throw new ConnectionFailedError(result.field, result.message, result.serverReply, result.kind);
  return { tested: true, ok: true, greeting: result.greeting, messageCount: result.messageCount };
}

/** What the connection test needs of a box: where, and how it logs in. */
function targetOf(
  ctx: SettingsContext,
  sid: string,
  boxId: string,
  c: BoxRecord['connection'],
  password: string,
): Pop3Target {
  const { server, port, ssl, userName, authentication, domain } = c;
  const token = ctx.oauthToken;
  return {
    server,
    port,
    ssl,
    userName,
    password,
    ...(c.type === 'imap'
      ? {
          protocol: 'imap' as const,
          folder: c.folder,
          afterImport: c.afterImport,
          moveToFolder: c.moveToFolder,
        }
      : {}),
    // USER/PASS is the default: a password box's target stays as it always was.
    ...(authentication && authentication !== 'password' ? { authentication } : {}),
    ...(authentication === 'ntlm' ? { domain } : {}),
    ...(authentication === 'oauth2' && token ? { accessToken: () => token(sid, boxId) } : {}),
  };
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
  // An OAuth2 box's secret starts as an empty grant; the sign-in's callback fills it.
  const password = record.connection.authentication === 'oauth2' ? PENDING_GRANT : input.connection.password;
  const schedule = await resolveSchedule(ctx, sid, input.schedule, undefined);
  // Verify before writing anything: a failed login leaves no secret and no box behind.
  const verification = await verify(ctx, sid, id, record, password, options.verify);
  const ops = planScheduleOps({ studioId: sid, after: { id, description: record.description, schedule } });
  // Schedule first, then secret and record; a failed record write takes both back.
  const saved = await withScheduleOps(ctx.scheduler, ctx.log, { studioId: sid, boxId: id }, ops, () =>
    saveWithSecret(
      ctx.secrets,
      ctx.log,
      {
        password,
        // A push-only box may be saved without one: it is never logged in to.
        wantsSecret: password !== undefined,
        name: () => secretName(sid, 'boxes', id, record.connection.type),
        tags: { studioId: sid, credential: 'email-box', boxId: id },
      },
      (ref) =>
        ctx.repos.emailBoxes.create(sid, id, {
          ...record,
          id,
          schedule,
          connection: { ...record.connection, passwordRef: ref },
        }),
    ),
  );
  return boxView(saved, verification, receivingAddressOf(ctx, sid, saved));
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
  const before = boxDestination(current.connection);
  const afterDestination = boxDestination({
    ...input.connection,
    port: input.connection.port ?? defaultPort(input.connection.type, input.connection.ssl),
  });
  const wasOAuth = current.connection.authentication === 'oauth2';
  const isOAuth = authenticationOf(input.connection) === 'oauth2';
  // An OAuth2 box has no password to give again: a new destination drops its sign-in instead
  // (below), so no token of it ever goes to a server it was not signed in for.
  if (!isOAuth) {
    const redirect = new Issues();
    requirePasswordOnRedirect(
      redirect,
      'connection.password',
      input.connection.password !== undefined,
      before,
      afterDestination,
    );
    redirect.throwIfAny();
  }
  const record = await checkBox(ctx, sid, input, false);
  // The stored secret of an OAuth2 box is its token grant, not a password to keep.
  if (wasOAuth && !isOAuth && input.connection.password === undefined)
    throw ValidationError.field(
      'connection.password',
      'is required when a box stops using OAuth2: the password of the mailbox.',
    );
  // The sign-in stays with the box while it signs in with the same provider to the same mailbox.
  const keepsSignIn =
    isOAuth &&
    wasOAuth &&
    current.connection.provider === record.connection.provider &&
    redirectedFields(before, afterDestination).length === 0;
  if (keepsSignIn && current.connection.oauth) record.connection.oauth = current.connection.oauth;
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
    sid,
    id,
    record,
    newPassword ?? (options.verify && !isOAuth && currentRef ? await ctx.secrets.get(currentRef) : ''),
    options.verify,
  );
  const saved = await withScheduleOps(ctx.scheduler, ctx.log, { studioId: sid, boxId: id }, ops, () =>
    saveWithSecret(
      ctx.secrets,
      ctx.log,
      {
        currentRef,
        // Joining OAuth2, or moving an OAuth2 box elsewhere, empties the secret until a new sign-in.
        password: isOAuth && !keepsSignIn ? PENDING_GRANT : newPassword,
        // Kept while there is one (switching to push-only does not drop a saved password).
        wantsSecret: isOAuth || newPassword !== undefined || currentRef !== undefined,
        name: () => secretName(sid, 'boxes', id, record.connection.type),
        // A new password is a new secret, which IAM lets settings create only with these tags.
        tags: { studioId: sid, credential: 'email-box', boxId: id },
      },
      (ref) =>
        ctx.repos.emailBoxes.replace(
          sid,
          id,
          { ...record, id, schedule, connection: { ...record.connection, passwordRef: ref } },
          version,
        ),
    ),
  );
  return boxView(saved, verification, receivingAddressOf(ctx, sid, saved));
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
  // The sign-in facts are the server's (replaceBox carries them over), never part of the input.
  const { oauth: _oauth, afterImport, ...rest } = stored.connection;
  // leaveOnServer and afterImport say one thing two ways: a patch naming only one of them has the
  // other worked out again from it, not kept from the stored record to contradict it.
  const body = (req.body ?? {}) as { leaveOnServer?: unknown; connection?: unknown };
  const names = (o: unknown, key: string) => typeof o === 'object' && o !== null && key in o;
  const newAfterImport = names(body.connection, 'afterImport');
  const newLeave = names(body, 'leaveOnServer');
  const connection = { ...rest, ...(afterImport && !(newLeave && !newAfterImport) ? { afterImport } : {}) };
  const { leaveOnServer, ...others } = stored;
  const editable = {
    ...others,
    ...(newAfterImport && !newLeave ? {} : { leaveOnServer }),
    connection,
  };
  return patchRecord(req, {
    label: `the email box "${id}"`,
    stored: editable,
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
  if (removed.connection.passwordRef)
    await retireSecret(ctx.secrets, ctx.log, removed.connection.passwordRef);
}

/** Logs in with the stored password and reports the outcome as data (the test itself worked). */
export async function testBox(ctx: SettingsContext, sid: string, id: string): Promise<ConnectionTestView> {
  const box = await ctx.repos.emailBoxes.require(sid, id);
  const { server, port, ssl } = box.connection;
  const base = { boxId: id, server, port, ssl };
  if (isGraphConnection(box.connection)) {
    if (box.connection.authentication === 'oauth2' && !box.connection.oauth)
      return {
        ...base,
        ok: false,
        field: 'connection.authentication',
        kind: 'not_signed_in',
        message: `This box signs in with microsoft and has not yet: sign in (GET /oauth/microsoft/start?boxId=${id}).`,
        ms: 0,
      };
    if (!ctx.probeGraph)
      return {
        ...base,
        ok: false,
        field: 'connection.access',
        kind: 'not_available',
        message: 'Microsoft Graph is not configured here.',
        ms: 0,
      };
    const ref = box.connection.passwordRef;
    const secret = box.connection.authentication === 'oauth2' || !ref ? '' : await ctx.secrets.get(ref);
    const result = await ctx.probeGraph(box, secret, sid);
    logProbe(ctx, 'email box connection test', id, box.connection, result);
    return { ...base, ...result };
  }
  if (box.connection.authentication === 'oauth2' && (!box.connection.oauth || !ctx.oauthToken))
    return {
      ...base,
      ok: false,
      field: 'connection.authentication',
      kind: 'not_signed_in',
      message: `This box signs in with ${box.connection.provider} and has not yet: sign in (GET /oauth/${box.connection.provider}/start?boxId=${id}).`,
      ms: 0,
    };
  const ref = box.connection.passwordRef;
  if (box.connection.authentication !== 'oauth2' && !ref)
    return {
      ...base,
      ok: false,
      field: 'connection.password',
      kind: 'auth',
      message: 'This box has no saved password (it takes pushed mail only); add one to poll it.',
      ms: 0,
    };
  const password = box.connection.authentication === 'oauth2' || !ref ? '' : await ctx.secrets.get(ref);
  const result = await probe(
    ctx,
    'email box connection test',
    id,
    targetOf(ctx, sid, id, box.connection, password),
  );
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
