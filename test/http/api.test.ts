import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { httpApi } from '#lib/http/api';
import { defineRoutes, type Handlers } from '#lib/http/routes';
import { createLogger } from '#lib/logger';
import { apiClient } from '#test/support/api';

const routes = defineRoutes({
  'GET /stored': { tag: 't', access: 'user', summary: 'Stored data.' },
  'POST /input': {
    tag: 't',
    access: 'user',
    summary: 'Input.',
    body: z.strictObject({ port: z.number() }),
    query: z.object({ limit: z.coerce.number().int().max(10).optional() }),
  },
  'GET /public': { tag: 't', access: 'public', summary: 'Public.' },
  'GET /admin': { tag: 't', access: 'admin', summary: 'Admins only.' },
  'GET /users/{id}/thing': { tag: 't', access: 'self', summary: 'The user themself.' },
});
const handler = httpApi(
  routes,
  {
    // Stored data that no longer fits its schema.
    'GET /stored': async () => ({ status: 200, body: z.object({ n: z.number() }).parse({ n: 'x' }) }),
    'POST /input': async ({ body, query }) => ({ status: 200, body: { ...body, ...query } }),
    'GET /public': async ({ caller }) => ({ status: 200, body: { signedIn: Boolean(caller) } }),
    'GET /admin': async () => ({ status: 200, body: {} }),
    'GET /users/{id}/thing': async ({ params }) => ({ status: 200, body: { id: params.id } }),
  },
  { logger: createLogger('test'), studioClaim: 'custom:studioId' },
);
const call = apiClient(handler, routes);

describe('the HTTP edge', () => {
  it('answers 400 naming the field for bad input', async () => {
    const res = await call('POST', '/input', { body: { port: 'x' } });
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].field).toBe('port');
  });

  it('reports body and query problems of one request together', async () => {
    // Act
    const res = await call('POST', '/input?limit=99', { body: { port: 'x', prot: 1 } });
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.fields.map((f: { field: string }) => f.field).sort()).toEqual([
      'limit',
      'port',
      'prot',
    ]);
    expect(res.body.error.fields.find((f: { field: string }) => f.field === 'prot').message).toMatch(
      /Did you mean "port"\?/,
    );
  });

  it('hands the handler the parsed values', async () => {
    const res = await call('POST', '/input?limit=3', { body: { port: 1 } });
    expect(res).toMatchObject({ status: 200, body: { port: 1, limit: 3 } });
  });

  it('answers 400 for a body that is not JSON', async () => {
    const res = await call('POST', '/input', { body: '{nope' });
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].field).toBe('(body)');
  });

  it('answers 500 with a request id, not the schema details, when stored data does not fit', async () => {
    const res = await call('GET', '/stored');
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('internal_error');
    expect(res.text).not.toContain('expected number');
  });

  it('answers 401 without a token, except on public routes', async () => {
    expect((await call('POST', '/input', { token: null, body: { port: 1 } })).status).toBe(401);
    const pub = await call('GET', '/public', { token: null });
    expect(pub).toMatchObject({ status: 200, body: { signedIn: false } });
  });

  it('enforces the access the table declares: admin routes refuse other users', async () => {
    expect((await call('GET', '/admin', { token: 'dev:studio-1:user-1:' })).status).toBe(403);
    expect((await call('GET', '/admin')).status).toBe(200);
  });

  it('lets a user reach their own self route as `me` or by id, and another user only as an admin', async () => {
    const user = 'dev:studio-1:user-1:';
    expect(await call('GET', '/users/me/thing', { token: user })).toMatchObject({
      status: 200,
      body: { id: 'user-1' },
    });
    expect((await call('GET', '/users/user-1/thing', { token: user })).status).toBe(200);
    expect((await call('GET', '/users/user-2/thing', { token: user })).status).toBe(403);
    expect(await call('GET', '/users/user-2/thing')).toMatchObject({ status: 200, body: { id: 'user-2' } });
  });

  it('refuses a table whose routes are not all bound to handlers', () => {
    expect(() =>
      httpApi(routes, {} as never, { logger: createLogger('test'), studioClaim: 'custom:studioId' }),
    ).toThrow(/no handler for GET \/stored/);
  });

  it('makes a declared route without a handler a type error', () => {
    // Assess (checked by tsc: the directive fails the typecheck if the line ever compiles)
    // @ts-expect-error 'POST /input' and the others have no handler
    const partial: Handlers<typeof routes> = { 'GET /stored': async () => ({ status: 200 }) };
    expect(Object.keys(partial)).toEqual(['GET /stored']);
  });
});
