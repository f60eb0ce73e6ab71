/**
 * The kinds of reference data as the API declares them: path, label and schemas. Plain data, read
 * by the route table (functions/settings/routes.ts) and by the service (./reference.ts).
 */
import * as s from './schemas.ts';

export const refKinds = {
  departments: {
    label: 'department',
    input: s.departmentInput,
    view: s.departmentView,
    list: s.lists.departments,
  },
  users: { label: 'user', input: s.userInput, view: s.userView, list: s.lists.users },
  signatures: {
    label: 'signature',
    input: s.signatureInput,
    view: s.signatureView,
    list: s.lists.signatures,
    // Bodies of up to ~100 kB each: a whole list could pass Lambda's 6 MB response limit.
    paged: true,
  },
  'task-types': { label: 'task type', input: s.lookupInput, view: s.lookupView, list: s.lists.lookups },
  'task-statuses': { label: 'task status', input: s.lookupInput, view: s.lookupView, list: s.lists.lookups },
  'email-types': { label: 'email type', input: s.lookupInput, view: s.lookupView, list: s.lists.lookups },
  'email-statuses': {
    label: 'email status',
    input: s.lookupInput,
    view: s.lookupView,
    list: s.lists.lookups,
  },
  'form-letters': {
    label: 'form letter',
    input: s.formLetterInput,
    view: s.formLetterView,
    list: s.lists.formLetters,
    paged: true,
  },
  clients: {
    label: 'client',
    input: s.clientInput,
    view: s.clientView,
    list: s.lists.clients,
    paged: true,
    order: ' (by last name)',
  },
} as const;

export type RefPath = keyof typeof refKinds;
