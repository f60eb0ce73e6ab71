/**
 * OpenAPI 3.1 document generated from the zod schemas the handlers validate with, so the document
 * cannot drift from what the API accepts. JSON Schema 2020-12 is OpenAPI 3.1's own dialect.
 */
import * as z from 'zod';
import { requestSchemas, responseSchemas } from './schemas.ts';

export type Access = 'public' | 'user' | 'self' | 'admin';

export interface QueryParam {
  name: string;
  description: string;
  schema: z.ZodType;
  required?: boolean;
}

export interface OperationDoc {
  /** Route key, e.g. `GET /email-boxes/{id}`. */
  key: string;
  summary: string;
  description?: string;
  tag: string;
  access: Access;
  /** Registered in `requestSchemas`. */
  request?: z.ZodType;
  /** Registered in `responseSchemas`; absent for 204. */
  response?: z.ZodType;
  /** Success status; default 200. */
  status?: number;
  query?: QueryParam[];
  /** Error statuses besides the ones implied by access, path and body. */
  errors?: number[];
}

const ACCESS_TEXT: Record<Access, string> = {
  public: 'No token needed.',
  user: 'Any signed-in user of the studio.',
  self: 'The user themself (`me`) or a studio admin.',
  admin: 'Studio admins only (group `admins`).',
};

const ERROR_TEXT: Record<number, string> = {
  400: 'Validation failed: `error.fields` names each bad field with a sentence.',
  401: 'No valid token with a user and a studio.',
  403: 'The caller may not do this.',
  404: 'No such record in this studio.',
  409: 'Conflict: a stale `version`, an id already taken, or a record still in use (the message names it).',
  422: 'The mail server login failed: `error.field` names the field to fix, `error.serverReply` quotes the server. Nothing was saved.',
  501: 'Not implemented yet.',
  502: 'A remote system failed.',
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

function ref(registry: typeof requestSchemas, schema: z.ZodType, key: string): { $ref: string } {
  const id = registry.get(schema)?.id;
  if (!id) throw new Error(`${key}: schema is not registered for the OpenAPI document`);
  return { $ref: uri(id) };
}

function operation(op: OperationDoc) {
  const [method = '', path = ''] = op.key.split(' ');
  const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
  const errors = new Set<number>(op.errors ?? []);
  if (op.access !== 'public') errors.add(401);
  if (op.access === 'admin' || op.access === 'self') errors.add(403);
  if (pathParams.length > 0) errors.add(404);
  if (op.request || op.query?.length) errors.add(400);
  if (method === 'PUT' || method === 'POST') errors.add(409);

  const status = op.status ?? 200;
  const responses: Record<string, unknown> = {
    [status]: op.response
      ? {
          description: 'OK',
          content: { 'application/json': { schema: ref(responseSchemas, op.response, op.key) } },
        }
      : status === 204
        ? { description: 'Done; no body.' }
        : {
            description: ERROR_TEXT[status] ?? 'See the description.',
            content: { 'application/json': { schema: { $ref: uri('Error') } } },
          },
  };
  for (const code of [...errors].sort())
    responses[code] = {
      description: ERROR_TEXT[code] ?? 'Error.',
      content: { 'application/json': { schema: { $ref: uri('Error') } } },
    };

  return {
    [method.toLowerCase()]: {
      operationId: op.key.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, ''),
      summary: op.summary,
      description: [op.description, ACCESS_TEXT[op.access]].filter(Boolean).join('\n\n'),
      tags: [op.tag],
      ...(op.access === 'public' ? { security: [] } : {}),
      parameters: [
        ...pathParams.map((name) => ({
          name,
          in: 'path',
          required: true,
          schema: { type: 'string' },
          ...(name === 'id' && path.startsWith('/users/')
            ? { description: 'The user id (their token `sub`), or `me` for the caller.' }
            : {}),
        })),
        ...(op.query ?? []).map((q) => ({
          name: q.name,
          in: 'query',
          required: q.required ?? false,
          description: q.description,
          schema: plain(z.toJSONSchema(q.schema, { io: 'input', unrepresentable: 'any' })),
        })),
      ],
      ...(op.request
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: ref(requestSchemas, op.request, op.key) } },
            },
          }
        : {}),
      responses,
    },
  };
}

/** The whole document; every operation's schemas must be registered in lib/settings/schemas.ts. */
export function buildOpenApi(
  ops: OperationDoc[],
  info: { title: string; version: string; description?: string },
) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of ops) {
    const path = op.key.split(' ')[1] ?? '';
    paths[path] = { ...paths[path], ...operation(op) };
  }
  return {
    openapi: '3.1.0',
    info,
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
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
