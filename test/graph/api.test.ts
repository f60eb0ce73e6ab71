import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldsOf, type SettingsHarness, settingsHarness, unreachableProbe } from '#test/settings/harness';
import { type GraphServer, startGraphServer } from '#test/support/graph-server';

const TENANT = 'lumen.onmicrosoft.com';
const CLIENT_ID = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const SECRET = 'Qx8~graph-client-secret-value';
const MAILBOX = 'sales@lumen.test';

let h: SettingsHarness;
let graph: GraphServer;

beforeAll(async () => {
  graph = await startGraphServer();
  graph.addApp({ tenant: TENANT, clientId: CLIENT_ID, secret: SECRET });
  graph.addMailbox(MAILBOX);
  graph.deliver(MAILBOX, Buffer.from('Subject: hi\r\n\r\nhi\r\n'));
  h = await settingsHarness({
    probePop3: unreachableProbe,
    env: { GRAPH_API_BASE: graph.apiBase, GRAPH_LOGIN_BASE: graph.loginBase },
  });
});

afterAll(async () => {
  h.output.restore();
  await graph.stop();
});

const graphBox = (connection: Record<string, unknown> = {}, over: Record<string, unknown> = {}) => ({
  description: 'Sales (Microsoft 365)',
  leaveOnServer: true,
  ...over,
  connection: {
    type: 'exchange',
    access: 'graph',
    server: 'outlook.office365.com',
    emailAddress: MAILBOX,
    userName: MAILBOX,
    tenantId: TENANT,
    clientId: CLIENT_ID,
    password: SECRET,
    ...connection,
  },
});

describe('Exchange Online boxes over the settings API', () => {
  it('saves a Graph box after reading its inbox, with the client secret in the secret store', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', {
      body: { id: 'm365', ...graphBox({ afterImport: 'mark-read' }) },
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body.connection).toMatchObject({
      type: 'exchange',
      access: 'graph',
      tenantId: TENANT,
      clientId: CLIENT_ID,
      afterImport: 'mark-read',
      port: 443,
      passwordSet: true,
    });
    expect(res.body.verification).toMatchObject({ tested: true, ok: true, messageCount: 1 });
  });

  it('answers POST /email-boxes/{id}/test with the inbox read through Graph', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes/m365/test');
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, messageCount: 1 });
  });

  it('refuses a save whose client secret Microsoft rejects, naming the password', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', {
      body: { id: 'm365-bad', ...graphBox({ password: 'wrong-secret' }) },
    });
    // Assess
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(fieldsOf(res)).toEqual(['connection.password']);
    expect((await h.call('GET', '/email-boxes/m365-bad')).status).toBe(404);
  });

  it('reports a wrong tenant on the on-demand test as data naming the tenant id', async () => {
    // Prepare
    await h.call('POST', '/email-boxes?verify=false', {
      body: { id: 'm365-tenant', ...graphBox({ tenantId: 'fabrikam.onmicrosoft.com' }) },
    });
    // Act
    const res = await h.call('POST', '/email-boxes/m365-tenant/test');
    // Assess
    expect(res.body).toMatchObject({ ok: false, field: 'connection.tenantId', kind: 'tenant-unknown' });
  });

  it.each([
    ['connection.tenantId', graphBox({ tenantId: undefined })],
    ['connection.clientId', graphBox({ clientId: undefined })],
    ['connection.tenantId', graphBox({ tenantId: '../evil' })],
    ['connection.afterImport', graphBox({ afterImport: 'mark-read' }, { leaveOnServer: false })],
    ['connection.moveToFolder', graphBox({ moveToFolder: 'Done' })],
    ['connection.moveToFolder', graphBox({ afterImport: 'move' }, { leaveOnServer: false })],
    ['connection.folder', graphBox({ folder: 'Clients' })],
    ['connection.authentication', graphBox({ authentication: 'ntlm', spa: true, domain: 'LUMEN' })],
  ])('refuses a Graph box input naming %s', async (field, body) => {
    // Act
    const res = await h.call('POST', '/email-boxes?verify=false', { body });
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toContain(field);
  });

  it('refuses Graph fields on a POP3 box', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes?verify=false', {
      body: graphBox({ type: 'pop3', access: undefined, server: 'pop.lumen.test' }),
    });
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toEqual(expect.arrayContaining(['connection.tenantId', 'connection.clientId']));
  });

  it('never shows the client secret in a response or a log line', () => {
    h.assertNeverLeaked([SECRET, 'wrong-secret']);
  });
});
