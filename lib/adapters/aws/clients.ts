/**
 * AWS SDK clients, created once per process (Lambda container) on first use, with the
 * endpoints from Config so DynamoDB Local and the local SES work the same way. Only DynamoDB,
 * which every request needs, is imported up front; the others load when first asked for.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Config } from '#lib/config';

const cache = new Map<string, unknown>();

function once<T>(key: string, make: () => T): T {
  if (!cache.has(key)) cache.set(key, make());
  return cache.get(key) as T;
}

/** Local endpoints accept any credentials; giving dummy ones avoids a slow credential-chain lookup. */
function localCredentials(endpoint: string | undefined) {
  return endpoint ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {};
}

export const awsClients = (config: Config) => ({
  dynamo: () =>
    once(
      `dynamo:${config.dynamoEndpoint ?? ''}`,
      () =>
        new DynamoDBClient({
          region: config.region,
          endpoint: config.dynamoEndpoint,
          ...localCredentials(config.dynamoEndpoint),
        }),
    ),
  ses: () =>
    once(`ses:${config.sesEndpoint ?? ''}`, async () => {
      const { SESv2Client } = await import('@aws-sdk/client-sesv2');
      return new SESv2Client({
        region: config.region,
        // The SDK would retry a send that timed out after SES accepted it: a duplicate email.
        // Throttling (a refusal, safe to repeat) is retried by the send service instead.
        maxAttempts: 1,
        endpoint: config.sesEndpoint,
        ...localCredentials(config.sesEndpoint),
      });
    }),
  s3: () =>
    once('s3', async () => new (await import('@aws-sdk/client-s3')).S3Client({ region: config.region })),
  secrets: () =>
    once(
      'secrets',
      async () =>
        new (await import('@aws-sdk/client-secrets-manager')).SecretsManagerClient({ region: config.region }),
    ),
  scheduler: () =>
    once(
      'scheduler',
      async () => new (await import('@aws-sdk/client-scheduler')).SchedulerClient({ region: config.region }),
    ),
  lambda: () =>
    once(
      'lambda',
      async () => new (await import('@aws-sdk/client-lambda')).LambdaClient({ region: config.region }),
    ),
  events: () =>
    once(
      'events',
      async () =>
        new (await import('@aws-sdk/client-eventbridge')).EventBridgeClient({ region: config.region }),
    ),
});
