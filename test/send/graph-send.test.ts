// @vitest-environment node
/**
 * Method graph: Microsoft Graph sendMail with app credentials, against the local Graph stand-in
 * (test/support/graph-server.ts): the MIME sent is the raw copy stored, throttling is waited out,
 * and the token service's and Graph's refusals become diagnoses naming the transport field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransportRecord } from '#lib/domain/model';
import type { TestDeps } from '#test/support/api';
import { testDeps } from '#test/support/api';
import { type GraphServer, startGraphServer } from '#test/support/graph-server';
import { type Call, SID, seedCompany, sendApi } from './fixtures.ts';

const MAILBOX = 'hello@lumen.test';
const SECRET = 'graph-client-secret-Quokka-1183';

let graph: GraphServer;
let d: TestDeps;
let send: Call;

beforeAll(async () => {
  graph = await startGraphServer();
  graph.addApp({ tenant: 'lumen-tenant', clientId: 'app-1', secret: SECRET });
  graph.addApp({ tenant: 'lumen-tenant', clientId: 'app-no-send', secret: SECRET, mailPermission: false });
  graph.addApp({ tenant: 'lumen-tenant', clientId: 'app-no-consent', secret: SECRET, consented: false });
  graph.addMailbox(MAILBOX);
  d = await testDeps();
  send = sendApi(d, {
    probe: false,
    env: { GRAPH_API_BASE: graph.apiBase, GRAPH_LOGIN_BASE: graph.loginBase },
  });
});

afterAll(async () => {
  await graph?.stop();
});

async function useApp(clientId: string, tenantId = 'lumen-tenant'): Promise<void> {
  const transport: TransportRecord = {
    method: 'graph',
    authentication: 'app',
    tenantId,
    clientId,
    passwordRef: await d.secrets.create(`${SID}/graph-${clientId}-${Date.now()}`, SECRET),
  };
  await seedCompany(d, transport, { emailAddress: MAILBOX });
}

describe('sending through Microsoft Graph sendMail (method graph)', () => {
  it('sends the stored raw copy byte for byte as the sending mailbox', async () => {
    // Prepare
    await useApp('app-1');
    const before = graph.sent(MAILBOX).length;
    // Act
    const res = await send('POST', '/emails', {
      body: { to: ['client@example.com'], subject: 'Your gallery', text: 'Ready to view.' },
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, accepted: ['client@example.com'], response: '202 Accepted' });
    const sent = graph.sent(MAILBOX).slice(before);
    expect(sent).toHaveLength(1);
    const stored = await d.blobs.getBuffer(`raw/${SID}/out/${res.body.id}.eml`);
    expect(sent[0]!.equals(stored)).toBe(true);
    const post = graph.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/sendMail')).at(-1);
    expect(post?.status).toBe(202);
  });

  it('waits out a 429 with Retry-After and then sends', async () => {
    // Prepare
    await useApp('app-1');
    const before = graph.sent(MAILBOX).length;
    graph.throttle(1, 1);
    const started = Date.now();
    // Act
    const res = await send('POST', '/settings/company/email/test', { body: { to: 'client@example.com' } });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.transport).toMatchObject({ method: 'graph', mailbox: MAILBOX, authentication: 'app' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(graph.sent(MAILBOX).length - before).toBe(1);
  });

  it('does not post a message again after a 503, which may come after Exchange took it', async () => {
    // Prepare
    await useApp('app-1');
    const before = graph.sent(MAILBOX).length;
    graph.throttle(1, 0, 503);
    // Act
    const res = await send('POST', '/settings/company/email/test', { body: { to: 'client@example.com' } });
    // Assess: nothing posted twice, and the caller is told it may have gone (not "try again")
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({ retryable: false, kind: 'unknown' });
    expect(res.body.diagnosis.advice).toMatch(/Sent Items/);
    expect(graph.sent(MAILBOX).length - before).toBe(0);
  });

  it('diagnoses an app without the Mail.Send permission (403 ErrorAccessDenied) on the clientId field', async () => {
    // Prepare
    await useApp('app-no-send');
    // Act
    const res = await send('POST', '/settings/company/email/test', { body: {} });
    // Assess
    expect(res.status).toBe(422);
    expect(res.body.diagnosis).toMatchObject({
      field: 'transport.clientId',
      kind: 'permission',
      serverCode: 403,
      retryable: false,
    });
    expect(res.body.diagnosis.advice).toContain('Mail.Send');
  });

  it('diagnoses a wrong tenant and missing consent on their fields, never echoing the secret', async () => {
    // Prepare
    await useApp('app-1', 'no-such-tenant');
    // Act
    const tenant = await send('POST', '/settings/company/email/test', { body: {} });
    await useApp('app-no-consent');
    const consent = await send('POST', '/settings/company/email/test', { body: {} });
    // Assess
    expect(tenant.body.diagnosis).toMatchObject({ field: 'transport.tenantId', kind: 'auth' });
    expect(consent.body.diagnosis).toMatchObject({ field: 'transport.clientId', kind: 'consent' });
    expect(JSON.stringify([tenant.body, consent.body])).not.toContain(SECRET);
  });

  it('refuses Bcc, which a MIME send through Graph would silently drop, naming the field', async () => {
    // Prepare
    await useApp('app-1');
    const before = graph.sent(MAILBOX).length;
    // Act: a Bcc address that is also a substring of the To address must not pass for named.
    const res = await send('POST', '/emails', {
      body: { to: ['client@example.com'], bcc: ['hidden@example.com'], subject: 'Hi', text: 'Hello' },
    });
    const inside = await send('POST', '/emails', {
      body: { to: ['alice.bob@example.com'], bcc: ['bob@example.com'], subject: 'Hi', text: 'Hello' },
    });
    // Assess: refused before anything is stored or sent
    for (const r of [res, inside]) {
      expect(r.status).toBe(400);
      expect(r.body.error.fields.map((f: { field: string }) => f.field)).toEqual(['bcc']);
    }
    expect(graph.sent(MAILBOX).length).toBe(before);
  });
});
