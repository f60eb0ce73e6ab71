/** A fresh table in the run's DynamoDB Local for one test file, so files never see each other's data. */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { makeRepositories } from '#lib/data/repositories';
import { Table } from '#lib/data/table';
import { ensureTable } from '#local/dynamodb';

export async function testTable() {
  const endpoint = inject('dynamoEndpoint');
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const name = `test-${randomUUID()}`;
  await ensureTable(client, name);
  const table = new Table(client, name);
  return { client, endpoint, name, table, repos: makeRepositories(table) };
}
