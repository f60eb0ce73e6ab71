/**
 * Reference data the email features point at: departments, users, signatures, task and email
 * types and statuses, form letters and clients. One generic create/replace/delete with a small
 * spec per kind for its own rules (derived fields, references, what may not be deleted).
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Repositories, Stored } from '#lib/data/repositories';
import type { TxItem } from '#lib/data/table';
import { ValidationError } from '#lib/domain/errors';
import { mergeFieldIssues, mergeFieldNames } from '#lib/domain/merge-fields';
import type { SettingsContext } from './context.ts';
import { type PatchRequest, patchRecord } from './patch.ts';
import { type RefPath, refKinds } from './ref-kinds.ts';
import type * as s from './schemas.ts';
import { assertUnused, checkRefs, type RefKind } from './usage.ts';
import { Issues } from './validation.ts';

type Record_ = { id: string } & Record<string, unknown>;

/** The repository methods the generic service needs (RefRepository and ClientRepository have them). */
interface Repo {
  get(sid: string, id: string): Promise<Stored<Record_> | undefined>;
  require(sid: string, id: string): Promise<Stored<Record_>>;
  list(sid: string): Promise<Stored<Record_>[]>;
  page(
    sid: string,
    limit: number,
    cursor?: string,
  ): Promise<{ items: Stored<Record_>[]; nextCursor?: string }>;
  create(sid: string, id: string, value: never, also?: TxItem[]): Promise<Stored<Record_>>;
  replace(
    sid: string,
    id: string,
    value: never,
    expectedVersion?: number,
    also?: TxItem[],
  ): Promise<Stored<Record_>>;
  clearing(sid: string, others: readonly Stored<Record_>[]): TxItem[];
  delete(sid: string, id: string): Promise<Stored<Record_>>;
}

export interface RefSpec {
  /** Path segment, e.g. `task-types`. */
  path: RefPath;
  /** Key in Repositories. */
  repo: RefKind | 'clients';
  label: string;
  input: z.ZodType<{ id?: string; version?: number }>;
  view: z.ZodType;
  list: z.ZodType;
  paged?: boolean;
  /** Ids must be given on POST (users: the person's sign-in subject). */
  idRequired?: string;
  /** Kind-specific checks and derived fields; add problems to `issues`. */
  build?: (ctx: SettingsContext, sid: string, value: Record_, issues: Issues) => Promise<Record_>;
  /** Fields derived on save (not part of the input), e.g. a form letter's `mergeFields`. */
  derived?: readonly string[];
  /** Only one record of the kind may be the default (`isDefault`). */
  singleDefault?: boolean;
}

/**
 * Only one task type (status, email type, email status) is the default: saving one as the default
 * clears the others in the same transaction as the save (lib/data RefRepository.clearing).
 */
async function clearOtherDefaults(
  ctx: SettingsContext,
  spec: RefSpec,
  sid: string,
  id: string,
  value: Record_,
) {
  if (!spec.singleDefault || !value.isDefault) return [];
  const r = repoOf(ctx.repos, spec);
  const others = (await r.list(sid)).filter((o) => o.id !== id && o.isDefault);
  return r.clearing(sid, others);
}

/** A form letter or signature with an unknown merge field is refused on save, not at send time. */
function addMergeFieldIssues(issues: Issues, value: Record_, keys: string[]): void {
  const parts = keys.map((k): [string, string | undefined] => [k, value[k] as string | undefined]);
  for (const issue of mergeFieldIssues(parts)) issues.add(issue.field, issue.message);
}

function lookupSpec(
  path: 'task-types' | 'task-statuses' | 'email-types' | 'email-statuses',
  repo: RefKind,
): RefSpec {
  return { path, repo, ...refKinds[path], singleDefault: true };
}

export const refSpecs: RefSpec[] = [
  {
    path: 'departments',
    repo: 'departments',
    ...refKinds.departments,
  },
  {
    path: 'users',
    repo: 'users',
    ...refKinds.users,
    idRequired: "is required for a user: use the person's sign-in subject (the `sub` of their token).",
    build: async (ctx, sid, value, issues) => {
      const departmentId = value.departmentId as string | undefined;
      await checkRefs(ctx.repos, sid, issues, [['departmentId', 'departments', departmentId]]);
      // A box that assigns mail to this user in a department needs the user to stay in it.
      const boxes = (await ctx.repos.emailBoxes.list(sid)).filter(
        (b) => b.userId === value.id && b.departmentId !== undefined && b.departmentId !== departmentId,
      );
      if (boxes.length > 0)
        issues.add(
          'departmentId',
          `must stay "${boxes[0]?.departmentId}": the user is assigned to ${boxes.map((b) => `email box "${b.id}" (${b.description})`).join(', ')} of that department. Change the box first.`,
        );
      return value;
    },
  },
  {
    path: 'signatures',
    repo: 'signatures',
    ...refKinds.signatures,
    build: async (_ctx, _sid, value, issues) => {
      if (!String(value.html).trim() && !String(value.text).trim())
        issues.add(
          'html',
          'and text are both empty: give the signature an HTML or a plain-text version (or both).',
        );
      addMergeFieldIssues(issues, value, ['html', 'text']);
      return value;
    },
  },
  lookupSpec('task-types', 'taskTypes'),
  lookupSpec('task-statuses', 'taskStatuses'),
  lookupSpec('email-types', 'emailTypes'),
  lookupSpec('email-statuses', 'emailStatuses'),
  {
    path: 'form-letters',
    repo: 'formLetters',
    ...refKinds['form-letters'],
    derived: ['mergeFields'],
    build: async (_ctx, _sid, value, issues) => {
      const { subject, html, text } = value as unknown as { subject: string; html?: string; text?: string };
      if (!html?.trim() && !text?.trim())
        issues.add(
          'html',
          'and text are both empty: give the letter an HTML or a plain-text body (or both).',
        );
      addMergeFieldIssues(issues, value, ['subject', 'html', 'text']);
      return { ...value, mergeFields: mergeFieldNames(subject, html, text) };
    },
  },
  {
    path: 'clients',
    repo: 'clients',
    ...refKinds.clients,
    build: async (_ctx, _sid, value, issues) => {
      const c = value as unknown as z.output<typeof s.clientInput>;
      if (!c.firstName.trim() && !c.lastName.trim() && !c.company?.trim())
        issues.add('lastName', 'is needed, or a first name or company: a client must have some name.');
      const seen = new Set<string>();
      c.emails.forEach((e, i) => {
        const key = e.address.toLowerCase();
        if (seen.has(key)) issues.add(`emails.${i}.address`, `repeats ${e.address}; list each address once.`);
        seen.add(key);
      });
      const emails =
        // A single address is the primary one without saying so.
        c.emails.length === 1 ? [{ ...c.emails[0]!, primary: true }] : c.emails;
      const primaries = emails.filter((e) => e.primary).length;
      if (emails.length > 1 && primaries !== 1)
        issues.add('emails', `must mark exactly one address as primary (${primaries} are).`);
      return { ...value, emails, groups: [...new Set(c.groups)] };
    },
  },
];

export const refSpecByPath = Object.fromEntries(refSpecs.map((spec) => [spec.path, spec]));

const repoOf = (repos: Repositories, spec: RefSpec) => repos[spec.repo] as unknown as Repo;

export async function listRefs(
  ctx: SettingsContext,
  spec: RefSpec,
  sid: string,
  page: { limit: number; cursor?: string },
): Promise<{ items: object[]; nextCursor?: string }> {
  if (spec.repo === 'clients') return ctx.repos.clients.page(sid, page.limit, page.cursor);
  if (spec.paged) return repoOf(ctx.repos, spec).page(sid, page.limit, page.cursor);
  return { items: await repoOf(ctx.repos, spec).list(sid) };
}

export function getRef(ctx: SettingsContext, spec: RefSpec, sid: string, id: string) {
  return repoOf(ctx.repos, spec).require(sid, id);
}

async function build(
  ctx: SettingsContext,
  spec: RefSpec,
  sid: string,
  id: string,
  input: Record<string, unknown>,
) {
  const { version: _v, ...rest } = input;
  const issues = new Issues();
  const value = spec.build ? await spec.build(ctx, sid, { ...rest, id }, issues) : { ...rest, id };
  issues.throwIfAny();
  return value;
}

export async function createRef(
  ctx: SettingsContext,
  spec: RefSpec,
  sid: string,
  input: { id?: string; version?: number },
) {
  if (input.version !== undefined)
    throw ValidationError.field('version', 'is only for PUT (replacing); leave it out when creating.');
  if (spec.idRequired && input.id === undefined) throw ValidationError.field('id', spec.idRequired);
  const id = input.id ?? randomUUID();
  const value = await build(ctx, spec, sid, id, input);
  const also = await clearOtherDefaults(ctx, spec, sid, id, value);
  return repoOf(ctx.repos, spec).create(sid, id, value as never, also);
}

export async function replaceRef(
  ctx: SettingsContext,
  spec: RefSpec,
  sid: string,
  id: string,
  input: { id?: string; version?: number },
) {
  if (input.id !== undefined && input.id !== id)
    throw ValidationError.field('id', `must match the id in the path ("${id}"); ids cannot change.`);
  const repo = repoOf(ctx.repos, spec);
  await repo.require(sid, id);
  const value = await build(ctx, spec, sid, id, input);
  const also = await clearOtherDefaults(ctx, spec, sid, id, value);
  return repo.replace(sid, id, value as never, input.version, also);
}

/** Changes the fields a merge patch names (If-Match required), through replaceRef. */
export async function patchRef(
  ctx: SettingsContext,
  spec: RefSpec,
  sid: string,
  id: string,
  req: PatchRequest,
) {
  const stored = await repoOf(ctx.repos, spec).require(sid, id);
  return patchRecord(req, {
    label: `the ${spec.label} "${id}"`,
    stored,
    schema: spec.input,
    derived: spec.derived,
    save: (input) => replaceRef(ctx, spec, sid, id, input),
  });
}

/** Refuses (409) while anything still points at the record. */
export async function deleteRef(ctx: SettingsContext, spec: RefSpec, sid: string, id: string): Promise<void> {
  const repo = repoOf(ctx.repos, spec);
  await repo.require(sid, id);
  if (spec.repo !== 'clients') await assertUnused(ctx.repos, sid, spec.repo, id);
  await repo.delete(sid, id);
}
