/**
 * The OpenAPI 3.1 document, generated from the route tables of every function (lib/http/routes.ts)
 * and the zod schemas the edge validates with, so the document cannot drift from what the API
 * accepts. JSON Schema 2020-12 is OpenAPI 3.1's own dialect.
 */
import * as z from 'zod';
import { requestSchemas, responseSchemas } from './registry.ts';
import {
  type Access,
  MAX_PATH_ID_LENGTH,
  PATH_ID,
  type RouteSpec,
  type RouteTable,
  splitRouteKey,
} from './routes.ts';

const ACCESS_TEXT: Record<Access, string> = {
  public: 'No token needed.',
  user: 'Any signed-in user of the studio.',
  self: 'The user themself (`me`) or a studio admin.',
  admin: 'Studio admins only (group `admins`).',
};

const ERROR_TEXT: Record<number, string> = {
  400: 'Validation failed: `error.fields` names each bad field (body, query or path) with a sentence, all at once.',
  401: 'No valid token with a user and a studio.',
  403: 'The caller may not do this.',
  404: 'No such record in this studio.',
  409: 'Conflict: a stale `version`, an id already taken, a record still in use, or a box already being polled (`box_busy`); the message names it.',
  412: 'The `If-Match` version is not the stored one: someone saved the record since you read it. Read it again (GET gives the `ETag`) and re-apply the change.',
  415: 'PATCH takes `application/merge-patch+json` only.',
  428: "PATCH needs `If-Match` with the record's `ETag` (its version, quoted) from your last read.",
  422: 'Refused for good: a mail server login failed (`error.field` names the field to fix, `error.details.serverReply` quotes the server), or a send was refused. Nothing was saved.',
  501: 'Not implemented yet.',
  502: 'A remote system failed; it may work later.',
  503: 'A part the API depends on does not answer.',
};

const uri = (id: string) => `#/components/schemas/${id}`;

/** Drops the standalone-document keys that do not belong inside an OpenAPI document. */
function plain(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

function components(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [registry, io] of [
    [requestSchemas, 'input'],
    [responseSchemas, 'output'],
  ] as const) {
    const { schemas } = z.toJSONSchema(registry, { io, uri, unrepresentable: 'any' }) as {
      schemas: Record<string, Record<string, unknown>>;
    };
    for (const [id, schema] of Object.entries(schemas)) out[id] = plain(schema);
  }
  return out;
}

/** A `$ref` to the registered schema, or the schema inline when it has no id. */
function schemaOf(registry: typeof requestSchemas, schema: z.ZodType, io: 'input' | 'output') {
  const id = registry.get(schema)?.id;
  if (id) return { $ref: uri(id) };
  return plain(z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>);
}

const errorResponse = (code: number) => ({
  description: ERROR_TEXT[code] ?? 'Error.',
  content: { 'application/json': { schema: { $ref: uri('Error') } } },
});

/** Required unless it may be left out (optional or defaulted). */
const isRequired = (schema: z.ZodType) => !schema.safeParse(undefined).success;

function parameters(path: string, pathParams: string[], spec: RouteSpec) {
  const shape = (spec.params?.shape ?? {}) as Record<string, z.ZodType>;
  return [
    ...pathParams.map((name) => {
      const declared = shape[name];
      const description =
        declared?.description ??
        (name === 'id' && path.startsWith('/users/')
          ? 'The user id (their token `sub`), or `me` for the caller.'
          : undefined);
      return {
        name,
        in: 'path',
        required: true,
        schema: declared
          ? plain(
              z.toJSONSchema(declared, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>,
            )
          : { type: 'string', minLength: 1, maxLength: MAX_PATH_ID_LENGTH, pattern: PATH_ID.source },
        ...(description ? { description } : {}),
      };
    }),
    ...Object.entries((spec.query?.shape ?? {}) as Record<string, z.ZodType>).map(([name, schema]) => ({
      name,
      in: 'query',
      required: isRequired(schema),
      ...(schema.description ? { description: schema.description } : {}),
      schema: plain(
        z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>,
      ),
    })),
  ];
}

/** Error statuses implied by the route's access, inputs and method, plus the declared ones. */
export function errorStatuses(key: string, spec: RouteSpec): number[] {
  const { method, pathParams } = splitRouteKey(key);
  const errors = new Set<number>(spec.errors ?? []);
  if (spec.access !== 'public') errors.add(401);
  if (spec.access === 'admin' || spec.access === 'self') errors.add(403);
  if (pathParams.length > 0) errors.add(404);
  // Path parameters are validated too (non-empty at least), so any route with one can answer 400.
  if (spec.body || spec.query || spec.params || pathParams.length > 0) errors.add(400);
  if (method === 'PUT' || method === 'POST' || method === 'PATCH') errors.add(409);
  errors.add(500);
  return [...errors].sort();
}

function operation(key: string, spec: RouteSpec) {
  const { method, path, pathParams } = splitRouteKey(key);
  const status = spec.status ?? 200;
  const responses: Record<string, unknown> = {
    [status]: spec.response
      ? {
          description: 'OK',
          content: { 'application/json': { schema: schemaOf(responseSchemas, spec.response, 'output') } },
        }
      : status === 204
        ? { description: 'Done; no body.' }
        : { description: 'OK' },
  };
  for (const code of errorStatuses(key, spec))
    responses[code] =
      code === 500
        ? { ...errorResponse(500), description: 'Our fault; quote `error.requestId`.' }
        : errorResponse(code);

  return {
    operationId: key.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, ''),
    summary: spec.summary,
    description: [spec.description, ACCESS_TEXT[spec.access]].filter(Boolean).join('\n\n'),
    tags: [spec.tag],
    ...(spec.access === 'public' ? { security: [] } : {}),
    parameters: parameters(path, pathParams, spec),
    ...(spec.body
      ? {
          requestBody: {
            required: !spec.body.safeParse({}).success,
            content: Object.fromEntries(
              (spec.bodyTypes ?? ['application/json']).map((type) => [
                type,
                { schema: schemaOf(requestSchemas, spec.body as z.ZodType, 'input') },
              ]),
            ),
          },
        }
      : {}),
    responses,
    _method: method.toLowerCase(),
  };
}

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

/** The whole document for every route of every table. */
export function buildOpenApi(tables: readonly RouteTable[], info: OpenApiInfo) {
  const paths: Record<string, Record<string, unknown>> = {};
  const tags = new Set<string>();
  for (const table of tables) {
    for (const [key, spec] of Object.entries(table) as [string, RouteSpec][]) {
      const { path } = splitRouteKey(key);
      const { _method, ...op } = operation(key, spec);
      tags.add(spec.tag);
      paths[path] = { ...paths[path], [_method]: op };
    }
  }
  return {
    openapi: '3.1.0',
    info,
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
    tags: [...tags].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'A Cognito JWT carrying `sub`, the studio claim and `cognito:groups`.',
        },
      },
      schemas: components(),
    },
  };
}
