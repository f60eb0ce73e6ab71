/**
 * A user's email settings: optional overrides of the company's (sending address, display name,
 * their own SMTP or Gmail credentials, default signature), and the settings that result.
 */
import type { z } from 'zod';
import type { Stored } from '#lib/data/repositories';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '#lib/domain/errors';
import type { UserEmailSettings } from '#lib/domain/model';
import { resolveSending } from '#lib/domain/settings';
import { requireCompany } from './company.ts';
import type { SettingsContext } from './context.ts';
import { SettingsMissingError } from './errors.ts';
import { type PatchRequest, patchRecord } from './patch.ts';
import { type effectiveSettingsView, userSettingsInput, type userSettingsView } from './schemas.ts';
import { retireSecret, saveWithSecret, secretName } from './secrets.ts';
import {
  passwordRefOf,
  transportRecordFrom,
  transportSecretValue,
  transportView,
  transportWantsSecret,
} from './transport.ts';
import { checkRefs } from './usage.ts';
import { Issues } from './validation.ts';

type UserSettingsView = z.infer<typeof userSettingsView>;
type EffectiveView = z.infer<typeof effectiveSettingsView>;

export interface Caller {
  userId: string;
  isAdmin: boolean;
}

/**
 * The user a `/users/{id}/…` path means: `me` is the caller. Users manage only their own settings;
 * an admin may manage anyone's, but only of a user the studio has on record.
 */
export async function targetUser(
  ctx: SettingsContext,
  sid: string,
  caller: Caller,
  id: string,
): Promise<string> {
  const userId = id === 'me' ? caller.userId : id;
  if (userId === caller.userId) return userId;
  if (!caller.isAdmin) throw new ForbiddenError('You may only read or change your own email settings.');
  if (!(await ctx.repos.users.get(sid, userId))) throw new NotFoundError('user', userId);
  return userId;
}

export function userSettingsViewOf(s: Stored<UserEmailSettings>): UserSettingsView {
  return { ...s, transport: s.transport ? transportView(s.transport, s.emailAddress) : undefined };
}

async function requireSettings(ctx: SettingsContext, sid: string, userId: string) {
  const found = await ctx.repos.userEmail.get(sid, userId);
  if (!found)
    throw new SettingsMissingError(
      `User "${userId}" has no email settings of their own, so the company's apply; create them with PUT.`,
    );
  return found;
}

export async function getUserSettings(ctx: SettingsContext, sid: string, userId: string) {
  return userSettingsViewOf(await requireSettings(ctx, sid, userId));
}

export async function putUserSettings(
  ctx: SettingsContext,
  sid: string,
  userId: string,
  input: z.output<typeof userSettingsInput>,
): Promise<{ view: UserSettingsView; created: boolean }> {
  const { version, transport, userId: bodyUserId, ...rest } = input;
  if (bodyUserId !== undefined && bodyUserId !== userId)
    throw ValidationError.field('userId', `must match the user in the path ("${userId}"), or be left out.`);
  const current = await ctx.repos.userEmail.get(sid, userId);
  if (version !== undefined && !current)
    throw new ConflictError(
      `User "${userId}" has no email settings yet to replace; leave out "version" to create them.`,
    );

  const issues = new Issues();
  const currentRef = passwordRefOf(current?.transport);
  const addresses = { current: current?.emailAddress, next: rest.emailAddress };
  const wantsSecret = transport
    ? transportWantsSecret(transport, current?.transport, issues, 'transport', addresses)
    : false;
  // Gmail logs on as the address it sends from, so the user's own Gmail needs the user's own address.
  if (transport?.method === 'gmail' && !rest.emailAddress)
    issues.add(
      'emailAddress',
      'is required with your own Gmail transport: Gmail sends only as the account it logs on to.',
    );
  await checkRefs(ctx.repos, sid, issues, [['defaultSignatureId', 'signatures', rest.defaultSignatureId]]);
  issues.throwIfAny();

  const saved = await saveWithSecret(
    ctx.secrets,
    ctx.log,
    {
      currentRef,
      password: transport ? transportSecretValue(transport, current?.transport, addresses) : undefined,
      wantsSecret,
      name: () => secretName(sid, 'users', userId, 'smtp'),
      tags: { studioId: sid, credential: 'user-smtp' },
    },
    (ref) => {
      const record = {
        ...rest,
        userId,
        transport: transport ? transportRecordFrom(transport, ref, current?.transport, addresses) : undefined,
      };
      return current
        ? ctx.repos.userEmail.replace(sid, userId, record, version ?? current.version)
        : ctx.repos.userEmail.create(sid, userId, record);
    },
  );
  return { view: userSettingsViewOf(saved), created: !current };
}

/** Changes the fields a merge patch names (If-Match required); the rest stay as stored. */
export async function patchUserSettings(
  ctx: SettingsContext,
  sid: string,
  userId: string,
  req: PatchRequest,
): Promise<UserSettingsView> {
  const stored = await requireSettings(ctx, sid, userId);
  return patchRecord(req, {
    label: `the email settings of user "${userId}"`,
    stored,
    schema: userSettingsInput,
    save: async (input) => (await putUserSettings(ctx, sid, userId, input)).view,
  });
}

/** Removes the overrides (the company's settings apply again) and retires their secret. */
export async function deleteUserSettings(ctx: SettingsContext, sid: string, userId: string): Promise<void> {
  const removed = await ctx.repos.userEmail.delete(sid, userId);
  const ref = passwordRefOf(removed.transport);
  if (ref) await retireSecret(ctx.secrets, ctx.log, ref);
}

/** What the user sends with, and whether each value is theirs or the company's. Never a password. */
export async function effectiveSettings(
  ctx: SettingsContext,
  sid: string,
  userId: string,
): Promise<EffectiveView> {
  const [company, user] = await Promise.all([requireCompany(ctx, sid), ctx.repos.userEmail.get(sid, userId)]);
  const e = resolveSending(company, user);
  // The view of the record in effect, logging on as resolveSending does (lib/domain/settings.ts).
  const own = user?.transport !== undefined;
  const transport = transportView(
    own ? user.transport! : company.transport,
    own ? e.emailAddress.value : company.emailAddress,
  );
  return {
    userId,
    studioName: e.studioName,
    timeZone: e.timeZone,
    displayName: e.displayName,
    emailAddress: e.emailAddress,
    replyTo: e.replyTo,
    transport: { value: transport, source: e.transport.source },
    signatureId: e.signatureId,
  };
}
