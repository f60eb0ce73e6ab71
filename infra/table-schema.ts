/**
 * Key schema of the single DynamoDB table. Plain data with no CDK import, so the stack, the
 * application code and the tests (which create the same table in DynamoDB Local) share it.
 */
export const tableSchema = {
  partitionKey: 'PK',
  sortKey: 'SK',
  // `projection`: ALL where list pages are read from the index itself (and filtered on its
  // attributes); KEYS_ONLY where a page is its keys and then one BatchGetItem of the items, so a
  // message written into that index costs one write unit there instead of its full size
  // (docs/performance.md, cost).
  indexes: [
    { name: 'GSI1', pk: 'GSI1PK', sk: 'GSI1SK', projection: 'ALL' },
    // A thread's messages.
    { name: 'GSI2', pk: 'GSI2PK', sk: 'GSI2SK', projection: 'KEYS_ONLY' },
    // A box's mail by what became of it (imported, quarantined, excluded, duplicate); sparse.
    { name: 'GSI3', pk: 'GSI3PK', sk: 'GSI3SK', projection: 'KEYS_ONLY' },
  ],
  ttlAttribute: 'ttl',
} as const;

export type TableSchema = typeof tableSchema;
