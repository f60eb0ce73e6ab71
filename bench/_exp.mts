import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Table } from '#lib/data/table';
import { ensureTable, startDynamoLocal } from '#local/dynamodb';
const dyn = await startDynamoLocal();
const client = new DynamoDBClient({ region: 'us-east-1', endpoint: dyn.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
await ensureTable(client, 'exp');
const t = new Table(client, 'exp');
const big = 'x'.repeat(1200);
await t.put({ PK: 'L', SK: 'L', n: 0 });
const msg = () => { const id = randomUUID(); return [
  { Put: { Item: { PK: `M#${id}`, SK: 'MSG', body: big, GSI1PK: 'C#1', GSI1SK: id, GSI2PK: `T#${id}`, GSI2SK: id }, ConditionExpression: 'attribute_not_exists(PK)' } },
  { Put: { Item: { PK: `MID#${id}`, SK: `MSG#${id}`, id }, ConditionExpression: 'attribute_not_exists(PK)' } },
] as const; };
async function a() { const k = randomUUID(); await t.put({ PK: `K#${k}`, SK: 'K', s: 'claimed' }); await Promise.all([t.transact([...msg()] as never), t.update({ Key: { PK: `K#${k}`, SK: 'K' }, UpdateExpression: 'SET s = :d', ExpressionAttributeValues: { ':d': 'done' } }), t.update({ Key: { PK: 'L', SK: 'L' }, UpdateExpression: 'SET n = n + :one', ExpressionAttributeValues: { ':one': 1 } })]); }
async function b() { const k = randomUUID(); await t.put({ PK: `K#${k}`, SK: 'K', s: 'claimed' }); await t.transact([...msg(), { Update: { Key: { PK: `K#${k}`, SK: 'K' }, UpdateExpression: 'SET s = :d', ExpressionAttributeValues: { ':d': 'done' } } }, { Update: { Key: { PK: 'L', SK: 'L' }, UpdateExpression: 'SET n = n + :one', ExpressionAttributeValues: { ':one': 1 } } }] as never); }
async function c() { const k = randomUUID(); await t.put({ PK: `K#${k}`, SK: 'K', s: 'claimed' }); await Promise.all([t.transact([...msg(), { Update: { Key: { PK: `K#${k}`, SK: 'K' }, UpdateExpression: 'SET s = :d', ExpressionAttributeValues: { ':d': 'done' } } }] as never), t.update({ Key: { PK: 'L', SK: 'L' }, UpdateExpression: 'SET n = n + :one', ExpressionAttributeValues: { ':one': 1 } })]); }
const time = async (f: () => Promise<void>) => { const xs: number[] = []; for (let i = 0; i < 200; i++) { const s = performance.now(); await f(); xs.push(performance.now() - s); } xs.sort((x, y) => x - y); return xs[100]!.toFixed(2); };
for (let r = 0; r < 2; r++) console.log('3 parallel', await time(a), '| 1 tx of 4', await time(b), '| tx of 3 + 1', await time(c));
const claimOnly = async () => { await t.put({ PK: `K#${randomUUID()}`, SK: 'K', s: 'claimed' }); };
console.log('put alone', await time(claimOnly));
await dyn.stop();
