/**
 * AWS SDK clients, created once per process (Lambda container) on first use, with the
 * endpoints from Config so DynamoDB Local and the local SES work the same way.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SESv2Client } from '@aws-sdk/client-sesv2';
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
    once(
      `ses:${config.sesEndpoint ?? ''}`,
      () =>
        new SESv2Client({
          region: config.region,
          endpoint: config.sesEndpoint,
          ...localCredentials(config.sesEndpoint),
        }),
    ),
  s3: () => once('s3', () => new S3Client({ region: config.region })),
  secrets: () => once('secrets', () => new SecretsManagerClient({ region: config.region })),
  scheduler: () => once('scheduler', () => new SchedulerClient({ region: config.region })),
  events: () => once('events', () => new EventBridgeClient({ region: config.region })),
});
