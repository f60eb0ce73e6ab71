/**
 * How every function declares its HTTP routes: one table per function, one shape for all. The
 * table is plain data (route metadata and zod schemas, no handlers, no SDK), so CDK, the local
 * runner and the OpenAPI generator import it without loading a handler.
 *
 * ## Declaring (functions/<fn>/routes.ts)
 *
 *     export const fooRoutes = defineRoutes({
 *       'POST /email-boxes/{id}/poll': {
 *         tag: 'Inbox', access: 'admin', summary: 'Poll the box now.',
 *         body: pollInput,              // request body (zod); omit for none
 *         query: z.object({ wait: z.enum(['true', 'false']).default('false').describe('…') }),
 *         response: pollOutcome,        // success body (zod); omit for 204
 *         status: 202,                  // success status, default 200
 *         errors: [409, 502],           // besides those implied by access, params, query and body
 *       },
 *     });
 *
 * The key is the API Gateway route key (`METHOD /path`, `{name}` for a path parameter). Path
 * parameters are non-empty strings unless `params` says otherwise.
 *
 * ## Binding (functions/<fn>/app.ts)
 *
 *     const handlers: Handlers<typeof fooRoutes> = {
 *       'POST /email-boxes/{id}/poll': async ({ caller, params, body, query }) => ({ status: 202, body: … }),
 *     };
 *
 * `Handlers<T>` makes a missing or an extra handler a type error. The edge (lib/http/api.ts)
 * enforces `access` and validates params, query and body before a handler runs, reporting every
 * problem together as one 400; a handler receives the parsed values.
 *
 * ## Porting a `{ doc, handle }` route
 *
 * `doc.key` becomes the table key; `doc.request` becomes `body`; `doc.query: QueryParam[]` becomes
 * one `z.object` whose fields carry their description (`.describe()`); `handle` moves into the
 * function's `Handlers` under the same key, minus its `requireAdmin` and `validate` calls.
 *
 * Access: `public` (no token), `user` (any signed-in user of the studio), `self` (path parameter
 * `id` is the caller — `me` or their own id — or the caller is an admin; the edge replaces `me`
 * with the caller's id), `admin` (group `admins`).
 */
import type { z } from 'zod';

export type Access = 'public' | 'user' | 'self' | 'admin';
export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type RouteKey = `${Method} /${string}`;

export interface RouteSpec {
  summary: string;
  description?: string;
  tag: string;
  access: Access;
  /** Path parameters; default: each `{name}` of the path is a non-empty string. */
  params?: z.ZodObject;
  /** Query parameters; give each field a description (`.describe()`). */
  query?: z.ZodObject;
  /** The request body. A missing body is validated as `{}`. */
  body?: z.ZodType;
  /** Media types the body is accepted in; default `application/json`. */
  bodyTypes?: readonly string[];
  /** The success body; absent for 204. */
  response?: z.ZodType;
  /** Success status; default 200. */
  status?: number;
  /** Error statuses besides the ones implied by access, params, query and body. */
  errors?: readonly number[];
}

export type RouteTable = Readonly<Record<RouteKey, RouteSpec>>;

export interface Caller {
  /** The JWT subject; also the user's id in this system. */
  userId: string;
  studioId: string;
  groups: string[];
  isAdmin: boolean;
}

/** What the edge hands a handler: the request with params, query and body already validated. */
export interface ApiRequest<Body = unknown, Query = Record<string, unknown>> {
  routeKey: string;
  params: Record<string, string>;
  query: Query;
  headers: Record<string, string>;
  body: Body;
  /** Absent only on public routes. */
  caller: Caller;
  requestId: string;
}

export interface ApiResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Parsed<S, Else> = S extends z.ZodType ? z.output<S> : Else;

export type RequestOf<R extends RouteSpec> = ApiRequest<
  Parsed<R['body'], undefined>,
  Parsed<R['query'], Record<string, never>>
>;

export type Handler<R extends RouteSpec = RouteSpec> = (req: RequestOf<R>) => Promise<ApiResult>;

/** One handler per declared route, under the same key: a missing or extra one is a type error. */
export type Handlers<T extends RouteTable> = {
  [K in keyof T]: T[K] extends RouteSpec ? Handler<T[K]> : never;
};

/**
 * Every path parameter without its own schema (the edge checks it, the OpenAPI document says it):
 * at most 64 visible ASCII characters (the ids this API gives out are UUIDs, `si-…` digests or
 * client ids of letters, digits, `-` and `_`), and no `#`, the separator of the table's keys.
 */
export const MAX_PATH_ID_LENGTH = 64;
export const PATH_ID = /^[\x21\x22\x24-\x7e]+$/;

const KEY = /^(GET|POST|PUT|PATCH|DELETE) (\/[A-Za-z0-9._~{}/-]*)$/;

export function splitRouteKey(key: string): { method: Method; path: string; pathParams: string[] } {
  const m = KEY.exec(key);
  if (!m) throw new Error(`Invalid route key "${key}" (expected e.g. "GET /email-boxes/{id}")`);
  const path = m[2] as string;
  return {
    method: m[1] as Method,
    path,
    pathParams: [...path.matchAll(/\{(\w+)\}/g)].map((p) => p[1] as string),
  };
}

/** Checks the keys and the path parameters of a table once, where it is declared. */
export function defineRoutes<const T extends RouteTable>(table: T): T {
  for (const [key, spec] of Object.entries(table) as [string, RouteSpec][]) {
    const { pathParams } = splitRouteKey(key);
    if (spec.params) {
      const declared = Object.keys(spec.params.shape).sort();
      if (declared.join() !== [...pathParams].sort().join())
        throw new Error(
          `${key}: params declares ${declared.join(', ')} but the path has ${pathParams.join(', ')}`,
        );
    }
    if (spec.access === 'self' && !pathParams.includes('id'))
      throw new Error(`${key}: access "self" needs an {id} path parameter`);
  }
  return table;
}

/** Every route key of the tables, each with the function that serves it. */
export function routeKeysOf(tables: Readonly<Record<string, RouteTable>>): { key: string; fn: string }[] {
  return Object.entries(tables).flatMap(([fn, table]) => Object.keys(table).map((key) => ({ key, fn })));
}
