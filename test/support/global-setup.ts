/**
 * Starts the real local servers once per test run and hands their addresses to the test files
 * through vitest's provide/inject: DynamoDB Local (in memory) on a free loopback port.
 */
import type { TestProject } from 'vitest/node';
import { startDynamoLocal } from '#local/dynamodb';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

export default async function setup(project: TestProject) {
  const dynamo = await startDynamoLocal();
  project.provide('dynamoEndpoint', dynamo.endpoint);
  return async function teardown() {
    await dynamo.stop();
  };
}
