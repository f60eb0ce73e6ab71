/**
 * Named schemas of the OpenAPI document's `components`. A schema used in a route table and added
 * here appears once under its id and is referenced; one that is not is written inline.
 */
import { z } from 'zod';

/** Request bodies (read as input: defaults make a field optional). */
export const requestSchemas = z.registry<{ id: string; description?: string }>();
/** Response bodies. */
export const responseSchemas = z.registry<{ id: string; description?: string }>();

/** The body of every error answer (lib/http/errors.ts builds it). */
export const errorView = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    field: z.string().optional(),
    fields: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
    details: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('Facts a client may act on, e.g. `serverReply` and `kind` of a failed mail server login.'),
    requestId: z.string().optional(),
  }),
});
responseSchemas.add(errorView, { id: 'Error' });

/** The body of a POST that takes none: may be left out; fields sent are refused, not ignored. */
export const emptyBody = z.strictObject({}).describe('No fields; the body may be left out.');
requestSchemas.add(emptyBody, { id: 'NoBody' });
