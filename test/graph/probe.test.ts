import { describe, expect, it } from 'vitest';
import { graphProbe } from '#lib/graph/probe';
import { appTokens } from '#lib/graph/tokens';
import { OAuthSignInRequiredError } from '#lib/oauth/service';
import { CLIENT_ID, graphFixture, SECRET, sid, TENANT } from './support.ts';

const { ctx, settings, makeBox } = graphFixture();

describe('the connection test of an Exchange Online box', () => {
  it('reads the inbox and says how many messages are in it', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    deliver(Buffer.from('Subject: x\r\n\r\nx\r\n'));
    // Act
    const result = await graphProbe(settings())(box, SECRET, sid);
    // Assess
    expect(result).toMatchObject({ ok: true, messageCount: 1 });
  });

  it.each([
    [
      'a tenant Microsoft does not know',
      { tenantId: 'fabrikam.onmicrosoft.com' },
      SECRET,
      'connection.tenantId',
      'tenant-unknown',
    ],
    [
      'a client id the tenant has no app for',
      { clientId: '99999999-0000-0000-0000-000000000000' },
      SECRET,
      'connection.clientId',
      'app-unknown',
    ],
    ['a wrong client secret', {}, 'not-the-secret', 'connection.password', 'secret-rejected'],
  ])('names the field for %s', async (_what, connection, secret, field, kind) => {
    // Prepare
    const { box } = await makeBox({ connection: connection as never });
    // Act
    const result = await graphProbe(settings())(box, secret, sid);
    // Assess
    expect(result).toMatchObject({ ok: false, field, kind });
    expect(JSON.stringify(result)).not.toContain(secret);
  });

  it('says consent is missing when the tenant answers AADSTS65001', async () => {
    // Prepare
    ctx.graph.addApp({
      tenant: TENANT,
      clientId: 'unconsented-app',
      secret: 'unconsented',
      consented: false,
    });
    const { box } = await makeBox({ connection: { clientId: 'unconsented-app' } as never });
    // Act
    const result = await graphProbe(settings())(box, 'unconsented', sid);
    // Assess
    expect(result).toMatchObject({ ok: false, field: 'connection.clientId', kind: 'consent-missing' });
    expect(result.ok ? '' : result.serverReply).toContain('AADSTS65001');
  });

  it('says the app may not read the mailbox when Graph answers 403 ErrorAccessDenied', async () => {
    // Prepare
    ctx.graph.addApp({ tenant: TENANT, clientId: 'no-mail-app', secret: 'no-mail', mailPermission: false });
    const { box } = await makeBox({ connection: { clientId: 'no-mail-app' } as never });
    // Act
    const result = await graphProbe(settings())(box, 'no-mail', sid);
    // Assess
    expect(result).toMatchObject({ ok: false, field: 'connection.clientId', kind: 'mailbox-access-denied' });
    expect(result.message).toContain('Mail.ReadWrite');
  });

  it('says the mailbox does not exist when Graph answers 404 ErrorInvalidUser', async () => {
    // Prepare
    const { box } = await makeBox({ connection: { emailAddress: 'nobody@contoso.test' } as never });
    // Act
    const result = await graphProbe(settings())(box, SECRET, sid);
    // Assess
    expect(result).toMatchObject({ ok: false, field: 'connection.emailAddress', kind: 'mailbox-not-found' });
  });

  it('names the move-to folder when the mailbox has no such folder', async () => {
    // Prepare
    const { box } = await makeBox({
      leaveOnServer: false,
      connection: { afterImport: 'move', moveToFolder: 'Archive 2026' } as never,
    });
    // Act
    const result = await graphProbe(settings())(box, SECRET, sid);
    // Assess
    expect(result).toMatchObject({ ok: false, field: 'connection.moveToFolder', kind: 'folder-not-found' });
  });

  it('says to sign in again when a signed-in box has its refresh refused (invalid_grant)', async () => {
    // Prepare
    const { box } = await makeBox({
      connection: {
        authentication: 'oauth2',
        provider: 'microsoft',
        tenantId: undefined,
        clientId: undefined,
      } as never,
    });
    const refused = async () => {
      throw new OAuthSignInRequiredError(
        'microsoft refused to renew the sign-in (invalid_grant): sign in again.',
        {
          field: 'connection.authentication',
        },
      );
    };
    // Act
    const result = await graphProbe(settings(), refused)(box, '', sid);
    // Assess
    expect(result).toMatchObject({ ok: false, field: 'connection.authentication', kind: 'sign-in-revoked' });
  });

  it('reads the mailbox with a signed-in box’s token, renewing it once when Graph refuses it', async () => {
    // Prepare
    const { box } = await makeBox({
      connection: {
        authentication: 'oauth2',
        provider: 'microsoft',
        tenantId: undefined,
        clientId: undefined,
      } as never,
    });
    const asked: boolean[] = [];
    let token = ctx.graph.issueDelegatedToken(0);
    const signIn = async (_sid: string, _box: string, o?: { renew?: boolean }) => {
      asked.push(o?.renew === true);
      if (o?.renew) token = ctx.graph.issueDelegatedToken();
      return token;
    };
    // Act
    const result = await graphProbe(settings(), signIn)(box, '', sid);
    // Assess
    expect(result).toMatchObject({ ok: true });
    expect(asked).toEqual([false, true]);
  });
});

describe('app-credential tokens', () => {
  it('reuses a token until five minutes before it expires, then asks for a new one', async () => {
    // Prepare
    let now = Date.now();
    const tokens = appTokens(
      {
        loginBase: ctx.graph.loginBase,
        tenantId: TENANT,
        clientId: CLIENT_ID,
        clientSecret: `${SECRET}`,
        scope: 'clock-test',
      },
      { now: () => now },
    );
    const issued = ctx.graph.tokensIssued;
    // Act
    const first = await tokens.get();
    now += 50 * 60_000;
    const reused = await tokens.get();
    now += 6 * 60_000;
    const renewed = await tokens.get();
    // Assess
    expect(reused).toBe(first);
    expect(renewed).not.toBe(first);
    expect(ctx.graph.tokensIssued).toBe(issued + 2);
  });
});
