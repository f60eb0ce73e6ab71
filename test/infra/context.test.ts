import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { parseRouteKey } from '#infra/constructs/api';
import { contextKeys, readSettings } from '#infra/context';
import { tableSchema } from '#infra/table-schema';

const base = {
  [contextKeys.senderIdentity]: 'mail.example.com',
  [contextKeys.notificationSender]: 'notifications@mail.example.com',
};

describe('reading the studio context', () => {
  it('accepts the string forms that `cdk deploy -c key=value` produces', () => {
    // Prepare
    const app = new App({
      context: {
        ...base,
        [contextKeys.corsOrigins]: 'https://a.example.com, https://b.example.com',
        [contextKeys.deletionProtection]: 'false',
        [contextKeys.jwtAudience]: '["web","mobile"]',
        [contextKeys.region]: 'eu-central-1',
      },
    });

    // Act
    const settings = readSettings(app.node);

    // Assess
    expect(settings).toMatchObject({
      region: 'eu-central-1',
      stackName: 'StudioMail',
      secretPrefix: 'studio-mail/',
      corsOrigins: ['https://a.example.com', 'https://b.example.com'],
      deletionProtection: false,
      jwtAudience: ['web', 'mobile'],
      studioClaim: 'custom:studioId',
      logLevel: 'INFO',
    });
  });

  it('accepts the JSON types of cdk.json and protects data by default', () => {
    // Prepare
    const app = new App({ context: { ...base, [contextKeys.corsOrigins]: ['http://localhost:5173'] } });

    // Act
    const settings = readSettings(app.node);

    // Assess
    expect(settings.corsOrigins).toEqual(['http://localhost:5173']);
    expect(settings.deletionProtection).toBe(true);
    expect(settings.jwtIssuer).toBeUndefined();
  });

  it('names the missing context key', () => {
    // Prepare
    const app = new App({ context: { [contextKeys.notificationSender]: 'n@mail.example.com' } });

    // Act
    const read = () => readSettings(app.node);

    // Assess
    expect(read).toThrow(/studio-mail:senderIdentity/);
  });

  it('rejects a deletion-protection value that is not a boolean', () => {
    // Prepare
    const app = new App({ context: { ...base, [contextKeys.deletionProtection]: 'yes' } });

    // Act
    const read = () => readSettings(app.node);

    // Assess
    expect(read).toThrow(/true or false/);
  });
});

describe('route keys and the table schema', () => {
  it('splits a route key into method and path and rejects malformed keys', () => {
    // Prepare
    const good = 'GET /email-boxes/{id}';

    // Act
    const parsed = parseRouteKey(good);

    // Assess
    expect(parsed).toEqual({ method: 'GET', path: '/email-boxes/{id}' });
    expect(() => parseRouteKey('FETCH /x')).toThrow(/Invalid route key/);
    expect(() => parseRouteKey('GET email-boxes')).toThrow(/Invalid route key/);
  });

  it('exports the key schema the application and DynamoDB Local share', () => {
    // Prepare
    const expected = {
      partitionKey: 'PK',
      sortKey: 'SK',
      indexes: [
        { name: 'GSI1', pk: 'GSI1PK', sk: 'GSI1SK', projection: 'ALL' },
        { name: 'GSI2', pk: 'GSI2PK', sk: 'GSI2SK', projection: 'KEYS_ONLY' },
        { name: 'GSI3', pk: 'GSI3PK', sk: 'GSI3SK', projection: 'KEYS_ONLY' },
      ],
      ttlAttribute: 'ttl',
    };

    // Act
    const schema = JSON.parse(JSON.stringify(tableSchema));

    // Assess
    expect(schema).toEqual(expected);
  });
});
