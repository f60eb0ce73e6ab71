/** What every settings route module shares: the route shape and the small parsing helpers. */
import * as z from 'zod';
import type { ApiRequest, ApiResult, RouteHandler } from '#lib/http/api';
import type { SettingsContext } from '#lib/settings/context';
import { ConnectionFailedError } from '#lib/settings/errors';
import type { OperationDoc, QueryParam } from '#lib/settings/openapi';
import { pageQuery, validate } from '#lib/settings/validation';

/** A handler and its entry in the OpenAPI document, kept side by side so neither is forgotten. */
export interface Route {
  doc: OperationDoc;
  handle: RouteHandler;
}

export type RouteModule = (ctx: SettingsContext) => Route[];

export const ok = (body: unknown, status = 200): ApiResult => ({ status, body });
export const noContent = (): ApiResult => ({ status: 204 });

/** The JSON body, validated; a missing body is reported as such. */
export function body<S extends z.ZodType>(schema: S, req: ApiRequest): z.output<S> {
  return validate(schema, req.body ?? {});
}

const verifyParam = z
  .enum(['true', 'false'], { error: 'must be true or false, e.g. ?verify=false.' })
  .default('true');
export const verifyQuery: QueryParam = {
  name: 'verify',
  description: 'Log in to the mail server before saving (default true). `false` saves without testing.',
  schema: verifyParam,
};

export function verify(req: ApiRequest): boolean {
  return validate(z.object({ verify: verifyParam }), req.query).verify === 'true';
}

export const pageParams: QueryParam[] = [
  { name: 'limit', description: 'Items per page, 1 to 100 (default 50).', schema: pageQuery.shape.limit },
  { name: 'cursor', description: 'The `nextCursor` of the previous page.', schema: z.string() },
];

export function page(req: ApiRequest): { limit: number; cursor?: string } {
  return validate(pageQuery, req.query);
}

/**
 * Runs a box save; a failed mail server login answers 422 with the field to fix and the server's
 * own reply (the shared edge has no serverReply).
 */
export async function answeringConnectionFailure(
  req: ApiRequest,
  save: () => Promise<ApiResult>,
): Promise<ApiResult> {
  try {
    return await save();
  } catch (error) {
    if (!(error instanceof ConnectionFailedError)) throw error;
    return {
      status: error.status,
      body: {
        error: {
          code: error.code,
          message: error.message,
          field: error.field,
          fields: [{ field: error.field, message: error.message }],
          kind: error.kind,
          serverReply: error.serverReply,
          requestId: req.requestId,
        },
      },
    };
  }
}
