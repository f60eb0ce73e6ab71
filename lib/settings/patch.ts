/**
 * PATCH with JSON Merge Patch (RFC 7396) and optimistic concurrency: the patch is applied to the
 * stored record in its input shape, the result is validated with the PUT schema and saved by the
 * PUT service with the version `If-Match` named. So a patch can do nothing a PUT could not, and
 * a patch that would make the record invalid changes nothing.
 */
import type { z } from 'zod';
import {
  ConflictError,
  PreconditionFailedError,
  PreconditionRequiredError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '#lib/domain/errors';
import { applyMergePatch } from '#lib/domain/merge-patch';
import { validate } from './validation.ts';

export const MERGE_PATCH_TYPE = 'application/merge-patch+json';

/** The version an `If-Match` header names: `"3"` (our ETag), `W/"3"` or `3`; `*` means any. */
export function parseIfMatch(header: string | undefined): number | '*' | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const value = header.trim();
  if (value === '*') return '*';
  const match = /^(?:W\/)?"?(\d{1,15})"?$/.exec(value);
  if (!match)
    throw ValidationError.field(
      'If-Match',
      `must be the ETag of the record as last read, e.g. "3" (its version); got ${JSON.stringify(value.slice(0, 40))}.`,
    );
  return Number(match[1]);
}

/** The ETag of a record: its version, quoted. */
export const etagOf = (version: number) => `"${version}"`;

/** The stored record as a PUT body: no meta, no secret references, no fields derived on save. */
export function editableOf(stored: object, derived: readonly string[] = []): Record<string, unknown> {
  const skip = new Set(['version', 'createdAt', 'updatedAt', ...derived]);
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(
      Object.entries(value)
        // A secret stays where it is unless the patch names a new password.
        .filter(([k, v]) => k !== 'passwordRef' && k !== 'passwordSet' && v !== undefined)
        .map(([k, v]) => [k, strip(v)]),
    );
  };
  const out = strip(stored) as Record<string, unknown>;
  for (const k of skip) delete out[k];
  return out;
}

export interface PatchRequest {
  headers: Record<string, string>;
  body: unknown;
}

export interface PatchSpec<S extends z.ZodType, R> {
  /** What the path names, for messages: `the email box "sales"`. */
  label: string;
  /** The record as stored now. */
  stored: { version: number } & object;
  /** Fields the service derives on save (a form letter's `mergeFields`): not part of the input. */
  derived?: readonly string[];
  /**
   * Fields whose absence from a PUT body keeps the stored value (a box's `schedule`): a patch that
   * removes one (`null`) must say `null` to the PUT service.
   */
  keptWhenAbsent?: readonly string[];
  /** The PUT body schema. */
  schema: S;
  /**
   * Checks that need the record before and after the patch. Issue 12 hooks in here: changing a
   * connection's server, port, security or log-on name will require the password again.
   */
  check?: (before: Record<string, unknown>, after: z.output<S>) => void;
  /** The PUT service, given the version to replace. */
  save: (input: z.output<S> & { version: number }) => Promise<R>;
}

/**
 * Applies a merge patch request to a stored record through the PUT path. 415 for another content
 * type, 428 without `If-Match`, 412 when it names another version (also when a save slips in
 * between our read and write), 400 naming every field the patched record gets wrong.
 */
export async function patchRecord<S extends z.ZodType, R>(
  req: PatchRequest,
  spec: PatchSpec<S, R>,
): Promise<R> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== MERGE_PATCH_TYPE)
    throw new UnsupportedMediaTypeError(
      `PATCH takes a JSON Merge Patch: send content-type ${MERGE_PATCH_TYPE} (got ${type ? `"${type}"` : 'none'}); PUT replaces the whole record.`,
    );
  const ifMatch = parseIfMatch(req.headers['if-match']);
  if (ifMatch === undefined)
    throw new PreconditionRequiredError(
      `PATCH needs If-Match with the ETag of ${spec.label} as you last read it (now "${spec.stored.version}"), so that it cannot overwrite a change you have not seen.`,
    );
  if (ifMatch !== '*' && ifMatch !== spec.stored.version)
    throw new PreconditionFailedError(
      `${capitalise(spec.label)} was changed since you read it (version ${spec.stored.version} now, If-Match names ${ifMatch}); read it again and re-apply your change.`,
    );
  if (req.body === undefined)
    throw ValidationError.field('(body)', 'is missing: send a JSON object naming the fields to change.');
  if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body))
    throw ValidationError.field(
      '(body)',
      'must be a JSON object naming the fields to change (null removes one); to replace the whole record use PUT.',
    );
  if ('version' in req.body)
    throw ValidationError.field('version', 'goes in the If-Match header on PATCH; leave it out of the body.');

  const before = editableOf(spec.stored, spec.derived);
  const merged = applyMergePatch(before, req.body) as Record<string, unknown>;
  for (const key of spec.keptWhenAbsent ?? []) if (key in before && !(key in merged)) merged[key] = null;
  const after = validate(spec.schema, merged);
  spec.check?.(before, after);
  try {
    return await spec.save({ ...(after as object), version: spec.stored.version } as z.output<S> & {
      version: number;
    });
  } catch (error) {
    // The record exists and the version was current a moment ago: a conflict now is a save in between.
    if (error instanceof ConflictError) throw new PreconditionFailedError(error.message);
    throw error;
  }
}

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
