import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { httpApi, parse } from '#lib/http/api';
import { createLogger } from '#lib/logger';
import { apiClient } from '#test/support/api';

const routes = ['GET /stored', 'POST /input', 'GET /public'];
const handler = httpApi(
  {
    // Stored data that no longer fits its schema.
    'GET /stored': async () => ({ status: 200, body: z.object({ n: z.number() }).parse({ n: 'x' }) }),
    'POST /input': async ({ body }) => ({
      status: 200,
      body: parse(z.strictObject({ port: z.number() }), body),
    }),
    'GET /public': async ({ caller }) => ({ status: 200, body: { signedIn: Boolean(caller) } }),
  },
  { logger: createLogger('test'), studioClaim: 'custom:studioId', publicRoutes: ['GET /public'] },
);
const call = apiClient(handler, routes);

describe('the HTTP edge', () => {
  it('answers 400 naming the field for bad input', async () => {
    const res = await call('POST', '/input', { body: { port: 'x' } });
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].field).toBe('port');
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
});
