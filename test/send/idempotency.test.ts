import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SendLedger } from '#lib/bulk/ledger';
import { fingerprint, IdempotencyStore } from '#lib/send/idempotency';
import type { TestDeps } from '#test/support/api';
import { type SmtpHarness, startSmtpServer } from '#test/support/smtp';
import {
  type Call,
  depsWithSes,
  PASSWORD,
  SID,
  seedCompany,
  sendApi,
  smtpTransportRecord,
  trusting,
} from './fixtures.ts';

const USER = 'dev:studio-1:user-1:';

let smtp: SmtpHarness;
let d: TestDeps;
let call: Call;

beforeAll(async () => {
  smtp = await startSmtpServer({ mode: 'starttls', users: { alice: PASSWORD } });
  d = await depsWithSes('http://127.0.0.1:9');
  await seedCompany(d, await smtpTransportRecord(d, smtp, 'starttls'));
  call = sendApi(d, { policy: trusting(smtp), retry: { sleep: async () => {} }, probe: false });
});

afterAll(async () => {
  await smtp?.stop();
});

beforeEach(() => smtp.reset());

const email = (subject = 'Proofs') => ({ to: ['ann@example.test'], subject, text: 'Your proofs are ready.' });
const withKey = (key: string, body: unknown) => ({ token: USER, body, headers: { 'Idempotency-Key': key } });

describe('Idempotency-Key on POST /emails', () => {
  it('sends once for the same key and body, and replays the first answer', async () => {
    // Act
    const first = await call('POST', '/emails', withKey('key-1', email()));
    const { to, subject, text } = email();
    // Same body, keys in another order.
    const second = await call('POST', '/emails', withKey('key-1', { text, subject, to }));
    // Assess
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(smtp.mailFromCount()).toBe(1);
    expect(smtp.messages).toHaveLength(1);
  });

  it('refuses the same key with a different body with 409, sending nothing more', async () => {
    // Prepare
    await call('POST', '/emails', withKey('key-2', email('First')));
    // Act
    const res = await call('POST', '/emails', withKey('key-2', email('Second')));
    // Assess
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('idempotency_key_reused');
    expect(res.body.error.message).toContain('different request');
    expect(smtp.messages).toHaveLength(1);
  });

  it("keeps keys per user: another user's request with the same key is their own (issue 12)", async () => {
    // Prepare
    await call('POST', '/emails', withKey('key-3', email()));
    // Act
    const res = await call('POST', '/emails', {
      ...withKey('key-3', email()),
      token: 'dev:studio-1:user-2:',
    });
    const again = await call('POST', '/emails', {
      ...withKey('key-3', email()),
      token: 'dev:studio-1:user-2:',
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.headers['idempotent-replayed']).toBeUndefined();
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(smtp.messages).toHaveLength(2);
  });

  it('answers "in progress" to a retry that arrives while the first is still sending', async () => {
    // Act
    const [a, b] = await Promise.all([
      call('POST', '/emails', withKey('key-4', email())),
      call('POST', '/emails', withKey('key-4', email())),
    ]);
    // Assess
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([200, 409]);
    const refused = a.status === 409 ? a : b;
    expect(refused.body.error.code).toBe('idempotency_in_progress');
    expect(refused.body.error.message).toContain('retry later');
    expect(smtp.messages).toHaveLength(1);
  });

  it('replays a failed send as it was, without trying the server again', async () => {
    // Prepare
    smtp.fail({ rejectData: { code: 554, message: '5.6.0 Message content rejected' } });
    const first = await call('POST', '/emails', withKey('key-5', email()));
    smtp.reset();
    // Act
    const again = await call('POST', '/emails', withKey('key-5', email()));
    // Assess
    expect(first.status).toBe(422);
    expect(again.status).toBe(422);
    expect(again.body).toEqual(first.body);
    expect(smtp.mailFromCount()).toBe(0);
  });

  it('gives the key back when the request is refused before sending, so the corrected one goes', async () => {
    // Act
    const refused = await call('POST', '/emails', withKey('key-6', email('{{client.nick}}')));
    const corrected = await call('POST', '/emails', withKey('key-6', email('Fixed')));
    // Assess
    expect(refused.status).toBe(400);
    expect(corrected.status).toBe(200);
    expect(smtp.messages).toHaveLength(1);
  });

  it('answers 502 and sends nothing when the raw copy cannot be stored, giving the key back', async () => {
    // Prepare: the same dependencies with a blob store that is down.
    const down = sendApi(
      {
        ...d,
        blobs: Object.assign(Object.create(d.blobs) as typeof d.blobs, {
          put: async () => {
            throw new Error('blob store unreachable');
          },
        }),
      },
      { policy: trusting(smtp), retry: { sleep: async () => {} }, probe: false },
    );
    // Act
    const refused = await down('POST', '/emails', withKey('key-9', email()));
    const retried = await call('POST', '/emails', withKey('key-9', email()));
    // Assess
    expect(refused.status).toBe(502);
    expect(refused.body.error.message).toContain('was not sent');
    expect(retried.status).toBe(200);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    expect(smtp.mailFromCount()).toBe(1);
    expect(smtp.messages).toHaveLength(1);
  });

  it('replays "sent but not recorded" when the message record failed beside the stored outcome', async () => {
    // Prepare
    const unrecorded = sendApi(
      {
        ...d,
        repos: {
          ...d.repos,
          messages: Object.assign(Object.create(d.repos.messages) as typeof d.repos.messages, {
            // Both ways a record is written fail: in the transaction with the outcome, and alone.
            createWrites: () => {
              throw new Error('table unreachable');
            },
            create: async () => {
              throw new Error('table unreachable');
            },
          }),
        },
      },
      { policy: trusting(smtp), retry: { sleep: async () => {} }, probe: false },
    );
    // Act
    const first = await unrecorded('POST', '/emails', withKey('key-10', email()));
    const replay = await call('POST', '/emails', withKey('key-10', email()));
    // Assess
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ ok: true, recorded: false });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(first.body);
    expect(smtp.messages).toHaveLength(1);
  });

  it('reports an unknown outcome, instead of sending again, when the first request died mid-way', async () => {
    // Prepare
    const store = new IdempotencyStore(d.repos.table);
    const print = fingerprint({ route: 'POST /emails', params: {}, user: 'user-1', body: email() });
    await store.claim(SID, 'emails#user-1', 'key-7', print, new Date(Date.now() - 5 * 60_000));
    // Act
    const res = await call('POST', '/emails', withKey('key-7', email()));
    // Assess
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('idempotency_outcome_unknown');
    expect(smtp.mailFromCount()).toBe(0);
  });

  it('keeps keys per studio, and refuses a key that is not visible ASCII', async () => {
    // Prepare
    await seedCompany(d, await smtpTransportRecord(d, smtp, 'starttls'), {}, 'studio-2');
    await call('POST', '/emails', withKey('key-8', email()));
    // Act
    const otherStudio = await call('POST', '/emails', {
      ...withKey('key-8', email()),
      token: 'dev:studio-2:user-1:',
    });
    const bad = await call('POST', '/emails', withKey('schlüssel', email()));
    // Assess
    expect(otherStudio.status).toBe(200);
    expect(otherStudio.headers['idempotent-replayed']).toBeUndefined();
    expect(smtp.messages).toHaveLength(2);
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields[0].field).toBe('Idempotency-Key');
  });
});

describe('the write round after a send', () => {
  it("counts every sent email against the studio's caps: its first send makes the ledger, later ones count in the record's transaction", async () => {
    // Prepare: a studio that has never sent (no ledger item yet).
    await seedCompany(d, await smtpTransportRecord(d, smtp, 'starttls'), {}, 'studio-3');
    const token = 'dev:studio-3:user-1:';
    const caps = [{ count: 1000, periodMinutes: 60 }];
    // Act
    const first = await call('POST', '/emails', { ...withKey('count-1', email()), token });
    const afterFirst = await new SendLedger(d.repos.table).usage('studio-3', caps, Date.now());
    const second = await call('POST', '/emails', { ...withKey('count-2', email()), token });
    const replay = await call('POST', '/emails', { ...withKey('count-2', email()), token });
    const afterSecond = await new SendLedger(d.repos.table).usage('studio-3', caps, Date.now());
    // Assess
    expect([first.status, second.status, replay.status]).toEqual([200, 200, 200]);
    expect(afterFirst[0]?.used).toBe(1);
    expect(afterSecond[0]?.used).toBe(2);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(second.body);
    expect(second.body).toMatchObject({ ok: true, recorded: true });
    expect(smtp.messages).toHaveLength(2);
  });
});

describe('Idempotency-Key after the email has gone (issue 12)', () => {
  /** The send function over `d` whose SMTP connections fail to close: after the message went. */
  const closingFails = () =>
    sendApi(
      {
        ...d,
        smtp: (options) => {
          const transport = d.smtp(options);
          return Object.assign(Object.create(transport) as typeof transport, {
            close() {
              transport.close();
              throw new Error('socket already destroyed');
            },
          });
        },
      },
      { policy: trusting(smtp), retry: { sleep: async () => {} }, probe: false },
    );

  it('replays the answer of a request that failed after sending, instead of sending again', async () => {
    // Prepare
    const failing = closingFails();
    const first = await failing('POST', '/emails', withKey('after-1', email()));
    // Act
    const retried = await call('POST', '/emails', withKey('after-1', email()));
    // Assess
    expect(first.status).toBe(500);
    expect(smtp.messages).toHaveLength(1);
    expect(retried.status).toBe(500);
    expect(retried.headers['idempotent-replayed']).toBe('true');
    expect(retried.body).toEqual(first.body);
    expect(smtp.messages).toHaveLength(1);
  });

  it('replays a Send Test Email that failed after sending, instead of sending again', async () => {
    // Prepare
    const failing = closingFails();
    const headers = { 'Idempotency-Key': 'after-2' };
    const first = await failing('POST', '/settings/company/email/test', { body: {}, headers });
    // Act
    const retried = await call('POST', '/settings/company/email/test', { body: {}, headers });
    // Assess
    expect(first.status).toBe(500);
    expect(retried.headers['idempotent-replayed']).toBe('true');
    expect(smtp.messages).toHaveLength(1);
  });

  it('does not honour a key past its TTL, even before DynamoDB has swept it', async () => {
    // Prepare: the same request, sent and stored two days ago with a one-day TTL.
    const store = new IdempotencyStore(d.repos.table, { ttlSeconds: 24 * 3600, staleAfterMs: 60_000 });
    const print = fingerprint({ route: 'POST /emails', params: {}, user: 'user-1', body: email() });
    const then = new Date(Date.now() - 48 * 3600_000);
    await store.claim(SID, 'emails#user-1', 'old-1', print, then);
    await store.complete(
      SID,
      'emails#user-1',
      'old-1',
      { status: 200, body: { ok: true, stale: true } },
      then,
    );
    // Act
    const res = await call('POST', '/emails', withKey('old-1', email()));
    // Assess
    expect(res.status).toBe(200);
    expect(res.headers['idempotent-replayed']).toBeUndefined();
    expect(res.body.stale).toBeUndefined();
    expect(smtp.messages).toHaveLength(1);
  });

  it('claims a stored key again once its TTL has passed', async () => {
    // Prepare
    const store = new IdempotencyStore(d.repos.table, { ttlSeconds: 60, staleAfterMs: 60_000 });
    const then = new Date(Date.now() - 10 * 60_000);
    await store.claim(SID, 'scope', 'ttl-1', 'print', then);
    await store.complete(SID, 'scope', 'ttl-1', { status: 200, body: {} }, then);
    // Act
    const claim = await store.claim(SID, 'scope', 'ttl-1', 'print', new Date());
    // Assess
    expect(claim).toEqual({ state: 'claimed' });
  });
});

describe('Idempotency-Key on Send Test Email', () => {
  it('sends one test email for a retried request', async () => {
    // Act
    const first = await call('POST', '/settings/company/email/test', {
      body: {},
      headers: { 'Idempotency-Key': 't-1' },
    });
    const second = await call('POST', '/settings/company/email/test', {
      body: {},
      headers: { 'Idempotency-Key': 't-1' },
    });
    // Assess
    expect(first.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(smtp.messages).toHaveLength(1);
  });
});
