/**
 * One contract: the routes the local runner serves, the routes API Gateway gets (synthesised
 * template) and the paths of the OpenAPI document are the same set, each served by the same
 * function, and the document is a well-formed OpenAPI 3.1 document (checked structurally, offline).
 */
import { describe, expect, it } from 'vitest';
import { apiTables } from '#functions/routes';
import { openApiDocument } from '#functions/settings/app';
import { routeKeysOf } from '#lib/http/routes';
import { compileRoutes } from '#local/http';
import { buildStack, type Resources } from '#test/infra/fixture';

// biome-ignore lint/suspicious/noExplicitAny: the document is walked as plain JSON.
type Json = any;

const doc = (await openApiDocument()) as Json;
const { template } = buildStack();

const logicalIdOf: Record<string, string> = {
  settings: 'SettingsFunction',
  send: 'SendFunction',
  'inbox-poll': 'InboxPollFunction',
  bulk: 'BulkApiFunction',
};

function gatewayRoutes(): { key: string; fn: string }[] {
  const routes = template.findResources('AWS::ApiGatewayV2::Route') as Resources;
  const integrations = template.findResources('AWS::ApiGatewayV2::Integration') as Resources;
  return Object.values(routes).map((r) => {
    const target = r.Properties?.Target as { 'Fn::Join': [string, [string, { Ref: string }]] };
    const uri = integrations[target['Fn::Join'][1][1].Ref]?.Properties?.IntegrationUri as {
      'Fn::GetAtt': [string, string];
    };
    const logical = uri['Fn::GetAtt'][0];
    const fn = Object.entries(logicalIdOf).find(([, prefix]) => logical.startsWith(prefix))?.[0] ?? logical;
    return { key: r.Properties?.RouteKey as string, fn };
  });
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function documentedKeys(): string[] {
  return Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((k) => METHODS.includes(k))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
}

const operations = (): [string, Json][] =>
  Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([k]) => METHODS.includes(k))
      .map(([m, op]) => [`${m.toUpperCase()} ${path}`, op] as [string, Json]),
  );

describe('the route contract', () => {
  it('serves locally, deploys to API Gateway and documents exactly the same routes, each by the same function', () => {
    // Prepare
    const local = compileRoutes(apiTables).map((r) => `${r.routeKey} → ${r.fn}`);
    const declared = routeKeysOf(apiTables).map((r) => `${r.key} → ${r.fn}`);
    // Act
    const gateway = gatewayRoutes().map((r) => `${r.key} → ${r.fn}`);
    const documented = documentedKeys();
    // Assess
    expect(local.length).toBeGreaterThan(70);
    expect(local.sort()).toEqual(declared.sort());
    expect(gateway.sort()).toEqual(local.sort());
    expect(documented.sort()).toEqual(
      routeKeysOf(apiTables)
        .map((r) => r.key)
        .sort(),
    );
  });

  it('includes the routes of the send and inbox-poll functions in the document', () => {
    expect(documentedKeys()).toEqual(
      expect.arrayContaining(['POST /emails', 'POST /emails/preview', 'POST /email-boxes/{id}/poll']),
    );
  });

  it('leaves exactly the public routes of the tables without a JWT authorizer', () => {
    // Prepare
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route') as Resources);
    const publicKeys = Object.values(apiTables).flatMap((t) =>
      Object.entries(t)
        .filter(([, s]) => s.access === 'public')
        .map(([k]) => k),
    );
    // Act
    const open = routes
      .filter((r) => r.Properties?.AuthorizationType !== 'JWT')
      .map((r) => r.Properties?.RouteKey);
    const unsecured = operations()
      .filter(([, op]) => Array.isArray(op.security) && op.security.length === 0)
      .map(([k]) => k);
    // Assess
    expect(open.sort()).toEqual(publicKeys.sort());
    expect(unsecured.sort()).toEqual(publicKeys.sort());
  });
});

describe('the OpenAPI document', () => {
  it('is titled "studio-mail API" and has the fields OpenAPI 3.1 requires', () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: 'studio-mail API', version: expect.any(String) });
    expect(typeof doc.paths).toBe('object');
    for (const path of Object.keys(doc.paths)) expect(path).toMatch(/^\//);
  });

  it('gives every operation a unique operationId, a summary, a tag and a description', () => {
    const ids = new Set<string>();
    for (const [key, op] of operations()) {
      expect(op.summary, key).toEqual(expect.stringMatching(/\S/));
      expect(op.tags?.length, key).toBe(1);
      expect(
        doc.tags.map((t: Json) => t.name),
        key,
      ).toContain(op.tags[0]);
      expect(ids.has(op.operationId), `${key}: duplicate operationId`).toBe(false);
      ids.add(op.operationId);
    }
  });

  it('declares every path parameter of every path, and none that the path lacks', () => {
    for (const [key, op] of operations()) {
      const inPath = [...key.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const declared = (op.parameters ?? []).filter((p: Json) => p.in === 'path');
      expect(declared.map((p: Json) => p.name).sort(), key).toEqual(inPath.sort());
      for (const p of declared) expect(p.required, `${key} ${p.name}`).toBe(true);
      for (const p of op.parameters ?? []) {
        expect(['path', 'query', 'header', 'cookie'], key).toContain(p.in);
        expect(p.schema, `${key} ${p.name}`).toBeTypeOf('object');
      }
    }
  });

  it('gives every operation its request schema: a body for each POST, PUT and PATCH, parameters for the rest', () => {
    for (const [key, op] of operations()) {
      if (/^(POST|PUT|PATCH) /.test(key)) {
        const content = op.requestBody?.content;
        expect(content, `${key} has no request body schema`).toBeTypeOf('object');
        for (const media of Object.values(content as Record<string, Json>))
          expect(media.schema, key).toBeTypeOf('object');
      } else {
        expect(op.requestBody, key).toBeUndefined();
        expect(Array.isArray(op.parameters), key).toBe(true);
      }
    }
  });

  it('gives every operation a success answer and its error answers in the one Error shape', () => {
    for (const [key, op] of operations()) {
      const codes = Object.keys(op.responses);
      expect(
        codes.some((c) => /^2\d\d$/.test(c)),
        `${key} has no success answer`,
      ).toBe(true);
      expect(codes, key).toContain('500');
      if (!(Array.isArray(op.security) && op.security.length === 0)) expect(codes, key).toContain('401');
      if (key.includes('{')) expect(codes, key).toContain('404');
      if (op.requestBody || op.parameters.some((p: Json) => p.in === 'query'))
        expect(codes, key).toContain('400');
      for (const [code, response] of Object.entries(op.responses as Record<string, Json>)) {
        expect(response.description, `${key} ${code}`).toEqual(expect.stringMatching(/\S/));
        if (/^[45]\d\d$/.test(code))
          expect(response.content['application/json'].schema, `${key} ${code}`).toEqual({
            $ref: '#/components/schemas/Error',
          });
      }
    }
    expect(doc.components.schemas.Error.properties.error.properties.details).toBeDefined();
  });

  it('resolves every $ref and names only security schemes it defines', () => {
    // Prepare
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1] as string);
    // Assess
    expect(refs.length).toBeGreaterThan(50);
    for (const ref of refs) {
      expect(ref, ref).toMatch(/^#\/components\/schemas\//);
      expect(doc.components.schemas[ref.replace('#/components/schemas/', '')], ref).toBeDefined();
    }
    const schemes = Object.keys(doc.components.securitySchemes);
    for (const requirement of [...doc.security, ...operations().flatMap(([, op]) => op.security ?? [])])
      for (const name of Object.keys(requirement)) expect(schemes).toContain(name);
  });

  it('writes only valid JSON Schema types and required fields that exist', () => {
    const TYPES = ['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'];
    const walk = (node: Json, where: string): void => {
      if (Array.isArray(node)) {
        for (const [i, n] of node.entries()) walk(n, `${where}[${i}]`);
        return;
      }
      if (!node || typeof node !== 'object') return;
      if ('type' in node && typeof node.type !== 'object') {
        const types = Array.isArray(node.type) ? node.type : [node.type];
        for (const t of types) expect(TYPES, where).toContain(t);
        if (types.includes('object') && Array.isArray(node.required) && node.properties)
          for (const r of node.required)
            expect(Object.keys(node.properties), `${where}.required`).toContain(r);
      }
      for (const [k, v] of Object.entries(node)) walk(v, `${where}.${k}`);
    };
    walk(doc.components.schemas, 'components.schemas');
    walk(doc.paths, 'paths');
  });
});
