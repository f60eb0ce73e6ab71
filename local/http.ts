/**
 * Turns a Node HTTP request into an API Gateway HTTP API (payload 2.0) event for the same
 * handlers Lambda runs, matching the request against the functions' route keys.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { ApiEvent } from '#lib/http/api';
import { errorBody } from '#lib/http/errors';
import { type RouteTable, splitRouteKey } from '#lib/http/routes';

export type LambdaHandler = (event: ApiEvent, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

export interface LocalRoute {
  routeKey: string;
  method: string;
  pattern: RegExp;
  names: string[];
  fn: string;
}

/** Matchers for every route of the functions' tables (functions/routes.ts), as API Gateway routes them. */
export function compileRoutes(tables: Readonly<Record<string, RouteTable>>): LocalRoute[] {
  const routes: LocalRoute[] = [];
  for (const [fn, table] of Object.entries(tables)) {
    for (const routeKey of Object.keys(table)) {
      const { method, path } = splitRouteKey(routeKey);
      const names: string[] = [];
      const source = path.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '{' || c === '}' ? c : `\\${c}`));
      const pattern = new RegExp(
        `^${source.replace(/\{(\w+)\}/g, (_, n: string) => {
          names.push(n);
          return '([^/]+)';
        })}$`,
      );
      routes.push({ routeKey, method, pattern, names, fn });
    }
  }
  // Literal segments win over parameters, as in API Gateway (e.g. /users/me before /users/{id}).
  return routes.sort((a, b) => a.names.length - b.names.length);
}

/**
 * Local stand-in for the JWT authorizer: `Authorization: Bearer dev:STUDIO:USER[:group,group]`.
 * It checks nothing; it exists only in the local runner, never in a deployed function.
 */
export function devClaims(authorization: string | undefined, studioClaim: string) {
  const token = authorization?.replace(/^Bearer\s+/i, '') ?? '';
  const [scheme, studioId, userId, groups = ''] = token.split(':');
  if (scheme !== 'dev' || !studioId || !userId) return undefined;
  return { sub: userId, [studioClaim]: studioId, 'cognito:groups': `[${groups.split(',').join(' ')}]` };
}

export function lambdaContext(functionName: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/local/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

async function readBody(req: IncomingMessage, limit = 10 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    // API Gateway refuses payloads over 10 MB; so do we.
    if (size > limit) throw Object.assign(new Error('Request body is over 10 MB.'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** JSON, text and form bodies are passed as text; anything else (files) as base64. */
function isText(contentType: string | undefined): boolean {
  if (!contentType) return true;
  return /^(text\/|application\/(json|merge-patch\+json|x-www-form-urlencoded|xml))/i.test(contentType);
}

export async function toEvent(
  req: IncomingMessage,
  route: LocalRoute,
  params: Record<string, string>,
  studioClaim: string,
): Promise<ApiEvent> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
  const body = await readBody(req);
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const claims = devClaims(headers.authorization, studioClaim);
  const now = Date.now();
  return {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    headers,
    queryStringParameters: Object.keys(query).length ? query : undefined,
    pathParameters: Object.keys(params).length ? params : undefined,
    // As API Gateway does: a body that is not text arrives base64-encoded (an attachment upload).
    ...(body.length && !isText(headers['content-type'])
      ? { body: body.toString('base64'), isBase64Encoded: true }
      : { body: body.length ? body.toString('utf8') : undefined, isBase64Encoded: false }),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: url.host,
      domainPrefix: 'local',
      http: {
        method: route.method,
        path: url.pathname,
        protocol: 'HTTP/1.1',
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: route.routeKey,
      stage: '$default',
      time: new Date(now).toISOString(),
      timeEpoch: now,
      authorizer: { principalId: '', integrationLatency: 0, jwt: { claims: claims ?? {}, scopes: [] } },
    },
  } as unknown as ApiEvent;
}

export function match(routes: LocalRoute[], method: string, path: string) {
  let pathMatched = false;
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    pathMatched = true;
    if (r.method !== method) continue;
    const params: Record<string, string> = {};
    for (const [i, n] of r.names.entries()) {
      const raw = m[i + 1] ?? '';
      try {
        params[n] = decodeURIComponent(raw);
      } catch {
        // A malformed escape ("%E0"): refused like any other bad request, never a crash.
        return { pathMatched, badPath: true };
      }
    }
    return { route: r, params };
  }
  return { pathMatched };
}

/** An error answered by the runner itself (no route, bad path), in the API's one error shape. */
export function errorResponse(error: unknown): APIGatewayProxyStructuredResultV2 {
  const { status, body } = errorBody(error);
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(body),
  };
}

export function send(res: ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  res.writeHead(result.statusCode ?? 200, result.headers as Record<string, string>);
  // As API Gateway does: a base64 body (an image) goes out as its bytes.
  res.end(result.isBase64Encoded && result.body ? Buffer.from(result.body, 'base64') : (result.body ?? ''));
}

/**
 * The local API answers only requests addressed to a loopback name. A web page on another site
 * could otherwise reach it through a DNS name it points at 127.0.0.1 (DNS rebinding).
 */
export function isLoopbackHost(hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  const host = hostHeader
    .replace(/:\d+$/, '')
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}
