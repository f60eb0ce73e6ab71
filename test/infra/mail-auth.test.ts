import { describe, expect, it } from 'vitest';
import { buildStack, type Resources } from './fixture.ts';

function envs(resources: Resources): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [id, r] of Object.entries(resources))
    if (r.Type === 'AWS::Lambda::Function' && r.Properties?.Environment)
      out[id] = (r.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
  return out;
}

const named = (all: Record<string, Record<string, unknown>>, prefix: string) =>
  Object.entries(all).find(([id]) => id.startsWith(prefix))?.[1] ?? {};

describe('Graph and OAuth2 environment of the functions', () => {
  it("gives send, settings and inbox-poll Microsoft's Graph endpoints by default, and no OAuth2 without props", () => {
    // Act
    const resources = buildStack().template.toJSON().Resources as Resources;
    const all = envs(resources);
    // Assess
    for (const prefix of ['Send', 'Settings', 'InboxPoll']) {
      expect(named(all, prefix)).toMatchObject({
        GRAPH_API_BASE: 'https://graph.microsoft.com/v1.0',
        GRAPH_LOGIN_BASE: 'https://login.microsoftonline.com',
      });
      expect(Object.keys(named(all, prefix)).some((k) => k.startsWith('OAUTH_'))).toBe(false);
    }
  });

  it('sets OAUTH_* for the providers the props name, with secret references only', () => {
    // Act
    const resources = buildStack({
      oauth: {
        redirectBase: 'https://api.lumen.test',
        stateKeyRef: 'studio-mail/oauth/state-key',
        microsoft: { clientId: 'ms-app', clientSecretRef: 'studio-mail/oauth/microsoft' },
      },
    }).template.toJSON().Resources as Resources;
    const all = envs(resources);
    // Assess
    for (const prefix of ['Send', 'Settings', 'InboxPoll'])
      expect(named(all, prefix)).toMatchObject({
        OAUTH_REDIRECT_BASE: 'https://api.lumen.test',
        OAUTH_STATE_KEY_REF: 'studio-mail/oauth/state-key',
        OAUTH_MICROSOFT_CLIENT_ID: 'ms-app',
        OAUTH_MICROSOFT_CLIENT_SECRET_REF: 'studio-mail/oauth/microsoft',
      });
    expect(named(all, 'Send')).not.toHaveProperty('OAUTH_GOOGLE_CLIENT_ID');
  });
});
