/**
 * The HTTP edge shared by the API functions: routes API Gateway v2 (payload 2.0) events by
 * `routeKey` through a function's route table (lib/http/routes.ts), reads the caller from JWT
 * claims, enforces the route's access, validates path parameters, query and body once (every
 * problem of a request in one 400), and serialises errors in one place (lib/http/errors.ts).
 * Handlers behind it only see a parsed ApiRequest and return an ApiResult.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type {
  APIGatewayProxyEventV2WithJWTAuthorizer,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import {
  AppError,
  type FieldIssue,
  ForbiddenError,
  NoRouteError,
  UnauthorizedError,
  ValidationError,
} from '#lib/domain/errors';
import { CursorCodec, listOf } from './cursor.ts';
import { errorBody } from './errors.ts';
import {
  type ApiResult,
  type Caller,
  type Handler,
  type Handlers,
  MAX_PATH_ID_LENGTH,
  PATH_ID,
  type RouteSpec,
  type RouteTable,
} from './routes.ts';
import { check } from './validate.ts';

export type { ApiRequest, ApiResult, Caller } from './routes.ts';
export { MAX_PATH_ID_LENGTH } from './routes.ts';

export interface ApiOptions {
  logger: Logger;
  /** JWT claim holding the studio id. */
  studioClaim: string;
  /** Name of the group whose members are admins. */
  adminGroup?: string;
  /** The secret paging cursors are signed with (lib/http/cursor.ts); needed when a route is paged. */
  cursorKey?: string;
}

/** Studio ids go into every key (`ST#<studio>`): the claim must be one, or the caller is refused. */
const STUDIO_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** The subject goes into keys too (user settings, idempotency scopes). */
const SUBJECT = /^[\x21\x22\x24-\x7e]{1,128}$/;

export type ApiEvent = APIGatewayProxyEventV2WithJWTAuthorizer;
export type ApiHandler = (event: ApiEvent, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

/** Groups arrive as an array, a JSON array string, or Cognito's "[a b]" form depending on the issuer. */
function parseGroups(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== 'string' || value === '') return [];
  const text = value.trim();
  if (text.startsWith('[') && text.includes('"')) {
    try {
      return (JSON.parse(text) as unknown[]).map(String);
    } catch {
      // fall through to the space/comma form
    }
  }
  return text
    .replace(/^\[|\]$/g, '')
    .split(/[\s,]+/)
    .filter(Boolean);
}

export function callerFrom(event: ApiEvent, studioClaim: string, adminGroup: string): Caller | undefined {
  const claims = event.requestContext.authorizer?.jwt?.claims;
  if (!claims?.sub) return undefined;
  const studioId = claims[studioClaim];
  if (typeof studioId !== 'string' || studioId === '') return undefined;
  if (!STUDIO_ID.test(studioId) || !SUBJECT.test(String(claims.sub)))
    throw new UnauthorizedError(
      'The token names no valid studio or user: the studio claim must be 1 to 64 letters, digits, "-" or "_".',
    );
  const groups = parseGroups(claims['cognito:groups'] ?? claims.groups);
  return { userId: String(claims.sub), studioId, groups, isAdmin: groups.includes(adminGroup) };
}

function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: body === undefined ? '' : JSON.stringify(body),
  };
}

export function errorResult(
  error: unknown,
  requestId: string,
  logger: Logger,
): APIGatewayProxyStructuredResultV2 {
  // Request input is validated from the route table and throws ValidationError. A bare ZodError
  // comes from reading stored data that no longer fits its schema: our fault, not the caller's, so a 500.
  if (error instanceof AppError) {
    if (error.status >= 500)
      logger.warn('request failed upstream', { code: error.code, message: error.message });
  } else {
    // Unknown errors are logged by name and message only; their text is not returned.
    const e = error instanceof Error ? error : new Error(String(error));
    logger.error('unhandled error', { errorName: e.name, errorMessage: e.message, stack: e.stack });
  }
  const { status, body } = errorBody(error, requestId);
  return json(status, body);
}

/** Who may call: 401 without a caller, 403 when the route's access excludes them. */
function authorise(spec: RouteSpec, caller: Caller | undefined, params: Record<string, string>): void {
  if (spec.access === 'public') return;
  if (!caller)
    throw new UnauthorizedError(
      'Sign in first: the request carries no valid token with a user and a studio.',
    );
  if (spec.access === 'admin' && !caller.isAdmin)
    throw new ForbiddenError('Only a studio admin may do this.');
  if (spec.access === 'self') {
    const id = params.id === 'me' ? caller.userId : params.id;
    if (id !== caller.userId && !caller.isAdmin)
      throw new ForbiddenError(
        'This belongs to another user: you may only read or change your own (`/users/me/…`); a studio admin may do it for anyone.',
      );
    params.id = id ?? '';
  }
}

/** Path ids without a schema of their own: 400 naming the parameter. */
function pathIdIssues(spec: RouteSpec, params: Record<string, string>): FieldIssue[] {
  const own = spec.params ? Object.keys(spec.params.shape) : [];
  return Object.entries(params)
    .filter(([name]) => !own.includes(name))
    .flatMap(([field, value]): FieldIssue[] => {
      if (value.length === 0) return [{ field, message: 'must not be empty.' }];
      if (value.length > MAX_PATH_ID_LENGTH)
        return [
          { field, message: `is not an id this API gives out (at most ${MAX_PATH_ID_LENGTH} characters).` },
        ];
      if (!PATH_ID.test(value))
        return [
          { field, message: 'is not an id this API gives out (visible ASCII characters other than "#").' },
        ];
      return [];
    });
}

/** Whether the route pages with `?cursor=` (its query declares one). */
const isPaged = (spec: RouteSpec) => Boolean(spec.query && 'cursor' in spec.query.shape);

/** Path parameters, query and body against the route's schemas; every problem in one ValidationError. */
function validateInput(
  spec: RouteSpec,
  event: ApiEvent,
  params: Record<string, string>,
  cursors: { codec: CursorCodec | undefined; studioId: string },
) {
  const issues: FieldIssue[] = pathIdIssues(spec, params);
  const take = <T>(result: { ok: true; data: T } | { ok: false; issues: FieldIssue[] }, fallback: T): T => {
    if (result.ok) return result.data;
    issues.push(...result.issues);
    return fallback;
  };
  const parsedParams = spec.params ? take(check(spec.params, params), params) : params;
  const rawQuery = (event.queryStringParameters ?? {}) as Record<string, string>;
  const query: Record<string, unknown> = spec.query ? take(check(spec.query, rawQuery), {}) : {};
  // The client's cursor is ours sealed; the handler gets the repository's cursor inside it.
  if (cursors.codec && typeof query.cursor === 'string' && issues.length === 0) {
    const binding = { studioId: cursors.studioId, list: listOf(event.routeKey, parsedParams, query) };
    try {
      query.cursor = cursors.codec.open(query.cursor, binding);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      issues.push(...error.issues);
    }
  }
  let body: unknown;
  let raw: unknown;
  try {
    raw = parseBody(event);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    issues.push(...error.issues);
  }
  if (spec.body && issues.every((i) => i.field !== '(body)'))
    body = take(check(spec.body, raw ?? {}), undefined);
  if (issues.length > 0) throw new ValidationError(issues);
  return { params: parsedParams as Record<string, string>, query, body };
}

/** Every declared route must have a handler and every handler a declaration (checked at composition). */
function assertBound(table: RouteTable, handlers: Record<string, unknown>): void {
  const declared = Object.keys(table);
  const missing = declared.filter((k) => !handlers[k]);
  const extra = Object.keys(handlers).filter((k) => !(k in table));
  if (missing.length || extra.length)
    throw new Error(
      `route table and handlers differ: no handler for ${missing.join(', ') || '-'}; undeclared ${extra.join(', ') || '-'}`,
    );
}

/** The plain request router for a table (no middleware); `httpApi` wraps it for Lambda. */
export function apiRouter<T extends RouteTable>(
  table: T,
  handlers: Handlers<T>,
  options: ApiOptions,
): ApiHandler {
  const adminGroup = options.adminGroup ?? 'admins';
  const bound = handlers as unknown as Record<string, Handler>;
  assertBound(table, bound);
  const paged = Object.entries(table as Record<string, RouteSpec>).filter(([, spec]) => isPaged(spec));
  if (paged.length > 0 && !options.cursorKey)
    throw new Error(`${paged[0]?.[0]} is paged: the edge needs a cursorKey to sign its cursors.`);
  const codec = options.cursorKey ? new CursorCodec(options.cursorKey) : undefined;
  return async (event, context) => {
    const requestId = event.requestContext?.requestId ?? context.awsRequestId;
    try {
      const spec = (table as Record<string, RouteSpec>)[event.routeKey];
      const handler = bound[event.routeKey];
      if (!spec || !handler) throw new NoRouteError(`No route ${event.routeKey}.`);
      const caller = callerFrom(event, options.studioClaim, adminGroup);
      const params = { ...((event.pathParameters ?? {}) as Record<string, string>) };
      authorise(spec, caller, params);
      const studioId = caller?.studioId ?? '';
      const input = validateInput(spec, event, params, { codec, studioId });
      const result = await handler({
        routeKey: event.routeKey,
        ...input,
        headers: lowerCaseHeaders(event.headers),
        caller: caller as Caller,
        requestId,
      } as Parameters<Handler>[0]);
      if (codec && isPaged(spec))
        sealNextCursor(result, codec, {
          studioId,
          list: listOf(event.routeKey, input.params, input.query as Record<string, unknown>),
        });
      // A text body with its own content type (the docs page and its files) goes out as it is.
      if (typeof result.body === 'string' && result.headers?.['content-type'])
        return { statusCode: result.status, headers: result.headers, body: result.body };
      return json(result.status, result.body, result.headers);
    } catch (error) {
      return errorResult(error, requestId, options.logger);
    }
  };
}

/**
 * A Lambda handler with the middleware every function uses: Powertools' logger context (request
 * id, cold start, function name on every line; keys reset between invocations).
 */
export function lambdaHandler<E, R>(logger: Logger, fn: (event: E, context: Context) => Promise<R>) {
  return middy<E, R>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(fn);
}

/** The Lambda handler for an API function: its route table, its handlers and the shared edge. */
export function httpApi<T extends RouteTable>(table: T, handlers: Handlers<T>, options: ApiOptions) {
  return lambdaHandler(options.logger, apiRouter(table, handlers, options));
}

/** A page's `nextCursor` goes out sealed to the list it belongs to. */
function sealNextCursor(result: ApiResult, codec: CursorCodec, binding: { studioId: string; list: string }) {
  const body = result.body as { nextCursor?: unknown } | undefined;
  if (body && typeof body === 'object' && typeof body.nextCursor === 'string')
    result.body = { ...body, nextCursor: codec.seal(body.nextCursor, binding) };
}

function lowerCaseHeaders(headers: Record<string, string | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) if (v !== undefined) out[k.toLowerCase()] = v;
  return out;
}

function parseBody(event: ApiEvent): unknown {
  if (!event.body) return undefined;
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  try {
    return JSON.parse(text);
  } catch {
    throw ValidationError.field(
      '(body)',
      'is not valid JSON; send a JSON object with content-type application/json.',
    );
  }
}
