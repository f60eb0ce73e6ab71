import {
  CreateEmailIdentityCommand,
  DeleteEmailIdentityCommand,
  GetEmailIdentityCommand,
  NotFoundException,
  SESv2Client,
} from '@aws-sdk/client-sesv2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settingsFunction } from '#functions/settings/app';
import { settingsRoutes } from '#functions/settings/routes';
import { SesIdentities } from '#lib/adapters/aws/identities';
import { type Call, depsWithSes, SID, seedCompany, sendApi } from '#test/send/fixtures';
import { type SesStub, startSesStub } from '#test/send/ses-stub';
import { unreachableProbe } from '#test/settings/harness';
import { apiClient, type TestDeps } from '#test/support/api';

const ADMIN = 'dev:studio-1:admin-1:admins';
const USER = 'dev:studio-1:user-1:';
const OTHER_ADMIN = 'dev:studio-2:admin-9:admins';
const OTHER_USER = 'dev:studio-2:mallory:';

let stub: SesStub;
let d: TestDeps;
let settings: Call;
let send: Call;

beforeAll(async () => {
  stub = await startSesStub();
  d = await depsWithSes(stub.endpoint, 1);
  const handler = settingsFunction(d, { probePop3: unreachableProbe });
  settings = apiClient(handler, settingsRoutes, 'settings');
  send = sendApi(d, { probe: false });
  // Studio 1 sends through SES from hello@lumen.test; its identity is what these tests build.
  await d.repos.companyEmail.create(SID, 'company', {
    studioName: 'Lumen',
    displayName: 'Lumen',
    emailAddress: 'hello@lumen.test',
    transport: { method: 'ses' },
    timeZone: 'UTC',
  });
});

afterAll(async () => {
  await stub?.stop();
});

const mail = { to: ['client@example.test'], subject: 'Proofs', text: 'Ready.' };

describe('sender identities through the local twin, end to end', () => {
  let id: string;

  it('creates a domain identity and answers with the three Easy DKIM records to publish', async () => {
    // Act
    const res = await settings('POST', '/sender-identities', {
      token: ADMIN,
      body: { identity: 'Lumen.TEST' },
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      identity: 'lumen.test',
      type: 'domain',
      verified: false,
      dkimStatus: 'PENDING',
    });
    expect(res.body.dnsRecords).toHaveLength(3);
    for (const r of res.body.dnsRecords)
      expect(r).toMatchObject({ type: 'CNAME', name: expect.stringMatching(/\._domainkey\.lumen\.test$/) });
    id = res.body.id;
  });

  it('refuses to send through SES from an identity that is not verified yet, sending nothing', async () => {
    // Act
    const res = await send('POST', '/emails', { token: USER, body: mail });
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].field).toBe('emailAddress');
    expect(res.body.error.fields[0].message).toContain('lumen.test (not verified yet)');
    expect(stub.requests).toHaveLength(0);
  });

  it('verifies on request and then sends with the identity ARN', async () => {
    // Act
    const verified = await settings('POST', `/sender-identities/${id}/verify`, { token: ADMIN });
    const listed = await settings('GET', '/sender-identities', { token: USER });
    const res = await send('POST', '/emails', { token: USER, body: mail });
    // Assess
    expect(verified.body).toMatchObject({ verified: true, dkimStatus: 'SUCCESS' });
    expect(listed.body.items).toEqual([expect.objectContaining({ id, verified: true })]);
    expect(res.status).toBe(200);
    expect(stub.requests.at(-1)).toMatchObject({
      FromEmailAddressIdentityArn: 'arn:aws:ses:local:000000000000:identity/lumen.test',
    });
  });

  it("refuses another studio's claim on the same domain", async () => {
    // Act
    const res = await settings('POST', '/sender-identities', {
      token: OTHER_ADMIN,
      body: { identity: 'lumen.test' },
    });
    const peek = await settings('GET', `/sender-identities/${id}`, { token: OTHER_ADMIN });
    // Assess
    expect(res.status).toBe(409);
    expect(peek.status).toBe(404);
  });

  it("refuses a user of another studio who sets the first studio's address as their own", async () => {
    // Prepare
    const sent = stub.requests.length;
    await seedCompany(
      d,
      { method: 'smtp', server: 'smtp.other.test', port: 587, security: 'starttls' },
      { emailAddress: 'hi@other.test' },
      'studio-2',
    );
    await d.repos.userEmail.upsert('studio-2', 'mallory', {
      userId: 'mallory',
      emailAddress: 'billing@lumen.test',
      transport: { method: 'ses' },
    });
    // Act
    const res = await send('POST', '/emails', { token: OTHER_USER, body: mail });
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0]).toMatchObject({ field: 'emailAddress' });
    expect(res.body.error.fields[0].message).toContain('This studio has no sender identities yet');
    expect(stub.requests.length).toBe(sent);
  });

  it('refuses a user override outside the identities and lists the ones that exist', async () => {
    // Prepare
    await d.repos.userEmail.upsert(SID, 'user-1', { userId: 'user-1', emailAddress: 'ana@elsewhere.test' });
    // Act
    const res = await send('POST', '/emails', { token: USER, body: mail });
    await d.repos.userEmail.delete(SID, 'user-1');
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].message).toMatch(
      /ana@elsewhere\.test is not covered.*lumen\.test \(verified\)/,
    );
  });

  it('stops sending once the identity is deleted', async () => {
    // Act
    const removed = await settings('DELETE', `/sender-identities/${id}`, { token: ADMIN });
    const res = await send('POST', '/settings/company/email/test', { token: ADMIN, body: {} });
    // Assess
    expect(removed.status).toBe(204);
    expect(res.status).toBe(400);
    expect(await d.identities.get('lumen.test')).toBeUndefined();
  });

  it('refuses an identity that is neither a domain nor an address, naming the field', async () => {
    // Act
    const res = await settings('POST', '/sender-identities', {
      token: ADMIN,
      body: { identity: 'not a domain' },
    });
    const user = await settings('POST', '/sender-identities', { token: USER, body: { identity: 'x.test' } });
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].field).toBe('identity');
    expect(user.status).toBe(403);
  });
});

describe('the SES v2 identity adapter', () => {
  // mockClient patches every SESv2Client, so it is set up here, after the end-to-end sends.
  let ses: ReturnType<typeof mockClient>;
  beforeAll(() => {
    ses = mockClient(SESv2Client);
  });
  afterAll(() => ses.restore());
  const adapter = new SesIdentities(new SESv2Client({ region: 'eu-west-1' }), 'eu-west-1', '123456789012');

  it('creates a domain with Easy DKIM and reports its tokens and ARN', async () => {
    // Prepare
    ses.reset();
    ses.on(CreateEmailIdentityCommand).resolves({
      IdentityType: 'DOMAIN',
      VerifiedForSendingStatus: false,
      DkimAttributes: { Status: 'PENDING', Tokens: ['t1', 't2', 't3'] },
    });
    // Act
    const status = await adapter.create('lumen.test');
    // Assess
    expect(ses.commandCalls(CreateEmailIdentityCommand)[0]?.args[0].input).toEqual({
      EmailIdentity: 'lumen.test',
    });
    expect(status).toEqual({
      type: 'domain',
      verified: false,
      dkimStatus: 'PENDING',
      dkimTokens: ['t1', 't2', 't3'],
      arn: 'arn:aws:ses:eu-west-1:123456789012:identity/lumen.test',
    });
  });

  it('reads an existing identity instead of failing a retried create, and knows a missing one', async () => {
    // Prepare
    ses.reset();
    ses
      .on(CreateEmailIdentityCommand)
      .rejects(Object.assign(new Error('exists'), { name: 'AlreadyExistsException' }));
    ses.on(GetEmailIdentityCommand, { EmailIdentity: 'lumen.test' }).resolves({
      IdentityType: 'DOMAIN',
      VerifiedForSendingStatus: true,
      DkimAttributes: { Status: 'SUCCESS', Tokens: ['t1'] },
    });
    ses
      .on(GetEmailIdentityCommand, { EmailIdentity: 'gone.test' })
      .rejects(new NotFoundException({ message: 'no', $metadata: {} }));
    ses.on(DeleteEmailIdentityCommand).rejects(new NotFoundException({ message: 'no', $metadata: {} }));
    // Act
    const again = await adapter.create('lumen.test');
    const gone = await adapter.get('gone.test');
    await adapter.delete('gone.test');
    // Assess
    expect(again).toMatchObject({ verified: true, dkimStatus: 'SUCCESS' });
    expect(gone).toBeUndefined();
  });
});
