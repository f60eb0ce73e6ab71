/**
 * Key schema of the single DynamoDB table. Plain data with no CDK import, so the stack, the
 * application code and the tests (which create the same table in DynamoDB Local) share it.
 */
export const tableSchema = {
  partitionKey: 'PK',
  sortKey: 'SK',
  indexes: [
    { name: 'GSI1', pk: 'GSI1PK', sk: 'GSI1SK' },
    { name: 'GSI2', pk: 'GSI2PK', sk: 'GSI2SK' },
    // A box's mail by what became of it (imported, quarantined, excluded, duplicate); sparse.
    { name: 'GSI3', pk: 'GSI3PK', sk: 'GSI3SK' },
  ],
  ttlAttribute: 'ttl',
} as const;

export type TableSchema = typeof tableSchema;
