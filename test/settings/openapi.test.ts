import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settingsRoutes } from '#functions/settings/routes';
import type { CallResult } from '#test/support/api';
import { type SettingsHarness, settingsHarness, unreachableProbe } from './harness.ts';

let h: SettingsHarness;
/** The document as parsed JSON (typed loosely, like every response in these tests). */
let doc: CallResult['body'];

beforeAll(async () => {
  h = await settingsHarness({ probePop3: unreachableProbe });
  doc = (await h.call('GET', '/openapi.json', { token: null })).body;
});

afterAll(() => h.output.restore());

/** Follows a local `$ref` to its schema. */
function resolve(ref: string) {
  return doc.components.schemas[ref.replace('#/components/schemas/', '')];
}

describe('GET /openapi.json', () => {
  it('is served without a token as an OpenAPI 3.1 document', async () => {
    // Act
    const res = await h.call('GET', '/openapi.json', { token: null });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    expect(res.body.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('lists every route of the settings function', () => {
    // Act
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops as object).map((method) => `${method.toUpperCase()} ${path}`),
    );
    // Assess
    expect(documented.sort()).toEqual(expect.arrayContaining(Object.keys(settingsRoutes)));
  });

  it('resolves every $ref to a component schema', () => {
    // Prepare
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1] as string);
    // Assess
    expect(refs.length).toBeGreaterThan(50);
    for (const ref of refs) expect(resolve(ref), ref).toBeDefined();
  });

  it('describes request and response bodies from the zod schemas, passwords write-only', () => {
    // Prepare
    const post = doc.paths['/email-boxes'].post;
    const input = resolve(post.requestBody.content['application/json'].schema.$ref);
    const output = resolve(post.responses['201'].content['application/json'].schema.$ref);
    // Assess
    expect(input.additionalProperties).toBe(false);
    expect(input.properties.connection.properties.password.type).toBe('string');
    expect(input.properties.excludeBefore.format).toBe('date');
    expect(output.properties.connection.properties.passwordSet.type).toBe('boolean');
    expect(output.properties.connection.properties.password).toBeUndefined();
    expect(output.properties.connection.properties.passwordRef).toBeUndefined();
    expect(post.parameters.map((p: { name: string }) => p.name)).toEqual(['verify']);
    expect(Object.keys(post.responses)).toEqual(
      expect.arrayContaining(['201', '400', '401', '403', '409', '422']),
    );
  });

  it('marks public routes as needing no token, and says who may call the others', () => {
    // Assess
    expect(doc.paths['/health'].get.security).toEqual([]);
    expect(doc.paths['/openapi.json'].get.security).toEqual([]);
    expect(doc.paths['/settings/company/email'].put.description).toMatch(/admins only/);
    expect(doc.paths['/users/{id}/email-settings'].get.parameters[0].description).toMatch(/`me`/);
  });

  it('documents the paged client list with limit and cursor', () => {
    // Prepare
    const list = doc.paths['/clients'].get;
    // Assess
    expect(list.parameters.map((p: { name: string }) => p.name)).toEqual(['limit', 'cursor']);
    expect(
      resolve(list.responses['200'].content['application/json'].schema.$ref).properties.nextCursor,
    ).toBeDefined();
  });
});
