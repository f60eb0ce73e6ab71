/**
 * Which records point at which: references must exist when saved, and a record still referenced
 * cannot be deleted (409 naming every user of it).
 */
import type { Repositories } from '#lib/data/repositories';
import { ConflictError } from '#lib/domain/errors';
import type { Issues } from './validation.ts';

export type RefKind =
  | 'departments'
  | 'users'
  | 'signatures'
  | 'taskTypes'
  | 'taskStatuses'
  | 'emailTypes'
  | 'emailStatuses'
  | 'formLetters';

export const refLabels: Record<RefKind, string> = {
  departments: 'department',
  users: 'user',
  signatures: 'signature',
  taskTypes: 'task type',
  taskStatuses: 'task status',
  emailTypes: 'email type',
  emailStatuses: 'email status',
  formLetters: 'form letter',
};

/** Adds an issue for every reference that names no existing record. */
export async function checkRefs(
  repos: Repositories,
  sid: string,
  issues: Issues,
  refs: [field: string, kind: RefKind, id: string | undefined][],
): Promise<void> {
  const found = await Promise.all(
    refs.map(async ([, kind, id]) => (id === undefined ? true : Boolean(await repos[kind].get(sid, id)))),
  );
  refs.forEach(([field, kind, id], i) => {
    if (!found[i])
      issues.add(
        field,
        `names no ${refLabels[kind]} that exists ("${id}"); create it first or choose another.`,
      );
  });
}

const BOX_FIELDS: Partial<
  Record<
    RefKind,
    (
      | 'departmentId'
      | 'userId'
      | 'taskTypeId'
      | 'taskStatusId'
      | 'emailTypeId'
      | 'emailStatusId'
      | 'autoReplyFormLetterId'
    )[]
  >
> = {
  departments: ['departmentId'],
  users: ['userId'],
  taskTypes: ['taskTypeId'],
  taskStatuses: ['taskStatusId'],
  emailTypes: ['emailTypeId'],
  emailStatuses: ['emailStatusId'],
  formLetters: ['autoReplyFormLetterId'],
};

/** Sentences naming each record that refers to `kind`/`id`. */
export async function usesOf(repos: Repositories, sid: string, kind: RefKind, id: string): Promise<string[]> {
  const uses: string[] = [];
  const boxFields = BOX_FIELDS[kind];
  if (boxFields) {
    for (const box of await repos.emailBoxes.list(sid))
      for (const f of boxFields)
        if (box[f] === id) uses.push(`email box "${box.id}" (${box.description}, ${f})`);
  }
  if (kind === 'users') {
    // Their own email settings (and the secret behind them) would outlive them, and apply again to
    // whoever is created later under the same sign-in subject.
    if (await repos.userEmail.get(sid, id))
      uses.push(`their own email settings (DELETE /users/${id}/email-settings first)`);
  }
  if (kind === 'departments') {
    for (const user of await repos.users.list(sid))
      if (user.departmentId === id) uses.push(`user "${user.id}" (${user.firstName} ${user.lastName})`);
  }
  if (kind === 'signatures') {
    const company = await repos.companyEmail.get(sid, 'company');
    if (company?.defaultSignatureId === id) uses.push('the company email settings (defaultSignatureId)');
    for (const s of await repos.userEmail.list(sid))
      if (s.defaultSignatureId === id)
        uses.push(`the email settings of user "${s.userId}" (defaultSignatureId)`);
  }
  return uses;
}

/** Throws a ConflictError naming what still uses the record. */
export async function assertUnused(
  repos: Repositories,
  sid: string,
  kind: RefKind,
  id: string,
): Promise<void> {
  const uses = await usesOf(repos, sid, kind, id);
  if (uses.length === 0) return;
  throw new ConflictError(
    `The ${refLabels[kind]} "${id}" is still used by ${uses.join('; ')}. Change or delete those first.`,
  );
}
