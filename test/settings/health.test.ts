import { beforeAll, describe, expect, it } from 'vitest';
import { settingsFunction } from '#functions/settings/app';
import { settingsRoutes } from '#functions/settings/routes';
import { apiClient, type TestDeps, testDeps } from '#test/support/api';

let call: ReturnType<typeof apiClient>;
let d: TestDeps;

beforeAll(async () => {
  d = await testDeps();
  const handler = settingsFunction(d);
  call = apiClient(handler, settingsRoutes);
});

describe('GET /health', () => {
  it('reports the database and blob store as up without a token', async () => {
    // Act
    const res = await call('GET', '/health', { token: null });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    expect(res.body.parts.database.up).toBe(true);
    expect(res.body.parts.blobStore.up).toBe(true);
  });

  it('reports a part that does not answer as down with 503', async () => {
    // Prepare
    d.healthChecks.ses = async () => {
      throw new Error('User: arn:aws:sts::123456789012:assumed-role/x is not authorized');
    };
    // Act
    const res = await call('GET', '/health', { token: null });
    delete d.healthChecks.ses;
    // Assess
    expect(res.status).toBe(503);
    expect(res.body.parts.ses).toMatchObject({ up: false, error: 'not answering' });
    expect(res.text).not.toContain('123456789012');
  });
});
