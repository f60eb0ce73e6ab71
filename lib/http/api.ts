/**
 * The HTTP edge shared by the API functions: routes API Gateway v2 (payload 2.0) events by
 * `routeKey`, reads the caller from JWT claims, parses JSON, and maps named errors to status
 * codes. Handlers behind it only see an ApiRequest and return an ApiResult.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type {
  APIGatewayProxyEventV2WithJWTAuthorizer,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import type { z } from 'zod';
import { AppError, ForbiddenError, UnauthorizedError, ValidationError } from '#lib/domain/errors';

export interface Caller {
  /** The JWT subject; also the user's id in this system. */
  userId: string;
  studioId: string;
  groups: string[];
  isAdmin: boolean;
}

export interface ApiRequest {
  routeKey: string;
  params: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  /** Absent only on public routes. */
  caller: Caller;
  requestId: string;
}

export interface ApiResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type RouteHandler = (req: ApiRequest) => Promise<ApiResult>;

export interface ApiOptions {
  logger: Logger;
  /** JWT claim holding the studio id. */
  studioClaim: string;
  /** Route keys that need no caller (health, OpenAPI document). */
  publicRoutes?: string[];
  /** Name of the group whose members are admins. */
  adminGroup?: string;
}

const defaults = { publicRoutes: [] as string[], adminGroup: 'admins' };

export type ApiEvent = APIGatewayProxyEventV2WithJWTAuthorizer;

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
  const groups = parseGroups(claims['cognito:groups'] ?? claims.groups);
  return { userId: String(claims.sub), studioId, groups, isAdmin: groups.includes(adminGroup) };
}

/** Turns zod issues into field issues with a dotted path and a sentence. */
export function fieldIssues(error: z.ZodError, prefix = ''): ValidationError {
  return new ValidationError(
    error.issues.map((i) => ({
      field: [prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(body)',
      message: i.message,
    })),
  );
}

/** Parses `value` with `schema`, throwing a ValidationError that names each bad field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw fieldIssues(result.error, prefix);
  return result.data;
}

export function requireAdmin(caller: Caller): void {
  if (!caller.isAdmin) throw new ForbiddenError('Only a studio admin may do this.');
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
  // Request input is parsed with parse(), which throws ValidationError. A bare ZodError comes from
  // reading stored data that no longer fits its schema: our fault, not the caller's, so a 500.
  if (error instanceof AppError) {
    if (error.status >= 500)
      logger.warn('request failed upstream', { code: error.code, message: error.message });
    const fields = error instanceof ValidationError ? error.issues : undefined;
    const field = 'field' in error && typeof error.field === 'string' ? error.field : undefined;
    return json(error.status, {
      error: { code: error.code, message: error.message, fields, field, requestId },
    });
  }
  // Unknown errors are logged by name and message only; their text is not returned.
  const e = error instanceof Error ? error : new Error(String(error));
  logger.error('unhandled error', { errorName: e.name, errorMessage: e.message, stack: e.stack });
  return json(500, {
    error: {
      code: 'internal_error',
      message: `Something went wrong on our side. Quote request id ${requestId} when you report it.`,
      requestId,
    },
  });
}

/** Builds the Lambda handler for a set of routes. */
export function httpApi(routes: Record<string, RouteHandler>, options: ApiOptions) {
  const opts = { ...defaults, ...options };

  async function route(event: ApiEvent, context: Context): Promise<APIGatewayProxyStructuredResultV2> {
    const requestId = event.requestContext?.requestId ?? context.awsRequestId;
    try {
      const handler = routes[event.routeKey];
      if (!handler)
        return json(404, { error: { code: 'no_route', message: `No route ${event.routeKey}.`, requestId } });
      const isPublic = opts.publicRoutes.includes(event.routeKey);
      const caller = callerFrom(event, opts.studioClaim, opts.adminGroup);
      if (!caller && !isPublic) {
        throw new UnauthorizedError(
          'Sign in first: the request carries no valid token with a user and a studio.',
        );
      }
      const result = await handler({
        routeKey: event.routeKey,
        params: (event.pathParameters ?? {}) as Record<string, string>,
        query: (event.queryStringParameters ?? {}) as Record<string, string>,
        headers: lowerCaseHeaders(event.headers),
        body: parseBody(event),
        caller: caller as Caller,
        requestId,
      });
      // A text body with its own content type (the docs page and its files) goes out as it is.
      if (typeof result.body === 'string' && result.headers?.['content-type'])
        return { statusCode: result.status, headers: result.headers, body: result.body };
      return json(result.status, result.body, result.headers);
    } catch (error) {
      return errorResult(error, requestId, opts.logger);
    }
  }

  return middy<ApiEvent, APIGatewayProxyStructuredResultV2>()
    .use(injectLambdaContext(opts.logger, { resetKeys: true }))
    .handler(route);
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
