import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { inboxPollFunction } from '#functions/inbox-poll/app';
import { inboxPollRoutes } from '#functions/inbox-poll/routes';
import { settingsFunction } from '#functions/settings/app';
import { settingsRoutes } from '#functions/settings/routes';
import type { InProcessInvoker } from '#lib/adapters/local/invoker';
import type { Run } from '#lib/domain/model';
import { IMPORT_CONCURRENCY, type PollPorts } from '#lib/inbox/poll';
import { isPollJob, runPollJob } from '#lib/inbox/service';
import { apiClient, tokens } from '#test/support/api';
import { rawMail } from '#test/support/mail';
import { inboxFixture, sid } from './support.ts';

const { ctx, ports, makeBox } = inboxFixture();

let poller: ReturnType<typeof apiClient>;
let settings: ReturnType<typeof apiClient>;
/** What each invocation of the poller runs with; a test may swap it. */
let invocationPorts: PollPorts;
let invocations: number;
/** A test may hold the poller back until it opens this gate. */
let gate: Promise<void> | undefined;

beforeAll(() => {
  poller = apiClient(inboxPollFunction(ctx.d, { ports }) as never, inboxPollRoutes, 'inbox-poll');
  settings = apiClient(
    settingsFunction(ctx.d, {
      probePop3: async () => {
        throw new Error('no connection test here');
      },
    }),
    settingsRoutes,
    'settings',
  );
  // As the Lambda invokes itself in AWS: each job runs in this process, a minute of budget each.
  (ctx.d.invoker as InProcessInvoker).register(async (payload) => {
    if (!isPollJob(payload)) throw new Error('not a poll job');
    invocations++;
    await gate;
    return runPollJob(ctx.d, payload, 60_000, invocationPorts);
  });
});

afterEach(() => {
  vi.restoreAllMocks();
  invocationPorts = ports;
  invocations = 0;
  gate = undefined;
});
invocationPorts = ports;
invocations = 0;

/** Follows a run with GET /email-boxes/{id}/runs/{runId} until it is no longer `running`. */
async function finished(boxId: string, runId: string): Promise<Run> {
  for (let i = 0; i < 1_000; i++) {
    const res = await settings('GET', `/email-boxes/${boxId}/runs/${runId}`, { token: tokens.user });
    expect(res.status).toBe(200);
    if (res.body.run.status !== 'running') return res.body.run;
    await sleep(10);
  }
  throw new Error(`run ${runId} still running`);
}

/** The events of a run, once its invocations are over (the event follows the run's last write). */
async function eventsOf(runId: string) {
  await (ctx.d.invoker as InProcessInvoker).drain();
  return ctx.d.events.published.filter((e) => e.detail.runId === runId);
}

describe('POST /email-boxes/{id}/poll', () => {
  it('answers 202 with a run id at once; the run, followed by its id, ends succeeded with its counts and one event', async () => {
    // Prepare
    const { box, deliver } = await makeBox();
    for (let i = 0; i < 3; i++) await deliver(rawMail({ subject: `async ${i}` }));
    const metric = vi.spyOn(ctx.d.metrics, 'addMetric');
    // Act
    const res = await poller('POST', `/email-boxes/${box.id}/poll`);
    const run = await finished(box.id, res.body.runId);
    // Assess
    expect(res.status).toBe(202);
    expect(res.body.run).toMatchObject({ id: res.body.runId, status: 'running', trigger: 'manual' });
    expect(run).toMatchObject({ id: res.body.runId, status: 'succeeded', counts: { seen: 3, imported: 3 } });
    expect(run.finishedAt).toBeDefined();
    const listed = await settings('GET', `/email-boxes/${box.id}/runs`);
    expect(listed.body.items).toEqual([run]);
    expect(await eventsOf(run.id)).toMatchObject([
      { detailType: 'Inbox Poll Succeeded', detail: { boxId: box.id, counts: { imported: 3 } } },
    ]);
    expect(metric).toHaveBeenCalledWith('MessagesImported', 'Count', 3);
  });

  it('carries a run over as many invocations as the mailbox needs, with live counts, until it is drained', async () => {
    // Prepare: each invocation's minute of budget runs out after every second message recorded;
    // the messages already taken (up to IMPORT_CONCURRENCY) are finished first, so there are
    // enough for several invocations.
    const { box, deliver } = await makeBox();
    const total = 3 * IMPORT_CONCURRENCY;
    for (let i = 0; i < total; i++) await deliver(rawMail({ subject: `drain ${i}` }));
    const realNow = Date.now.bind(Date);
    let skew = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skew);
    const seen: Run[] = [];
    let messages = 0;
    invocationPorts = {
      ...ports,
      progress: async (run) => {
        if (++messages % 2 === 0) skew += 61_000;
        const stored = await ctx.d.repos.runs.get(sid, box.id, run.id);
        if (stored) seen.push(stored);
      },
    };
    // Act
    const res = await poller('POST', `/email-boxes/${box.id}/poll`);
    const run = await finished(box.id, res.body.runId);
    // Assess
    expect(run).toMatchObject({ status: 'succeeded', counts: { imported: total } });
    expect(invocations).toBeGreaterThan(1);
    expect(await ctx.dovecot.messageCount(box.id)).toBe(total);
    // Live: while it ran, the stored run said `running` with counts that only grew.
    const imported = seen.map((r) => r.counts.imported);
    expect(seen.every((r) => r.status === 'running')).toBe(true);
    expect(imported).toEqual([...imported].sort((a, b) => a - b));
    expect(imported.some((n) => n > 0 && n < total)).toBe(true);
    // One run, one event, with the counts of the whole drain.
    expect(await eventsOf(run.id)).toMatchObject([{ detail: { counts: { imported: total } } }]);
    const listed = await settings('GET', `/email-boxes/${box.id}/runs`);
    expect(listed.body.items).toHaveLength(1);
  }, 120_000);

  it('answers 409 box_busy while a run holds the box, and takes it again once that run is over', async () => {
    // Prepare: the first run is held back before it polls.
    const { box, deliver } = await makeBox();
    await deliver(rawMail({ subject: 'busy' }));
    let open = () => {};
    gate = new Promise<void>((r) => {
      open = r;
    });
    const first = await poller('POST', `/email-boxes/${box.id}/poll`);
    // Act
    const second = await poller('POST', `/email-boxes/${box.id}/poll`);
    open();
    await finished(box.id, first.body.runId);
    await (ctx.d.invoker as InProcessInvoker).drain(); // the lease goes just after the record
    const third = await poller('POST', `/email-boxes/${box.id}/poll`);
    const last = await finished(box.id, third.body.runId);
    // Assess
    expect(first.status).toBe(202);
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: 'box_busy' });
    expect(third.status).toBe(202);
    expect(last).toMatchObject({ status: 'succeeded', counts: { imported: 0, skipped: 1 } });
    const listed = await settings('GET', `/email-boxes/${box.id}/runs`);
    expect(listed.body.items).toHaveLength(2);
  });

  it('answers 409 box_busy in the one error shape while another run holds the box, and starts no run', async () => {
    // Prepare: another run holds the box's lease.
    const { box } = await makeBox();
    await ctx.d.repos.boxState.acquireLease(sid, box.id, 'other-run', 60_000, Date.now());
    // Act
    const res = await poller('POST', `/email-boxes/${box.id}/poll`);
    // Assess
    expect(res.status).toBe(409);
    expect(res.body).toEqual({
      error: {
        code: 'box_busy',
        message: 'Another poll of this box is running; wait for it to finish.',
        requestId: expect.any(String),
      },
    });
    expect((await settings('GET', `/email-boxes/${box.id}/runs`)).body.items).toEqual([]);
  });

  it('refuses a body with fields, since the poll takes none', async () => {
    const { box } = await makeBox();
    const res = await poller('POST', `/email-boxes/${box.id}/poll`, { body: { wait: true } });
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].field).toBe('wait');
  });

  it('ends the run failed, with the failure in plain words, when the server rejects the login', async () => {
    // Prepare
    const { box } = await makeBox();
    await ctx.d.secrets.update(box.connection.passwordRef!, 'not-the-password');
    // Act
    const res = await poller('POST', `/email-boxes/${box.id}/poll`);
    const run = await finished(box.id, res.body.runId);
    // Assess
    expect(res.status).toBe(202);
    expect(run.status).toBe('failed');
    expect(run.errors[0]).toMatchObject({ kind: 'login-rejected' });
    expect(JSON.stringify(run)).not.toContain('not-the-password');
    expect((await eventsOf(run.id)).map((e) => e.detailType)).toEqual(['Inbox Poll Failed']);
  });

  it('answers 502 and records the run failed, freeing the box, when the poller cannot be started', async () => {
    // Prepare
    const { box } = await makeBox();
    const invoke = vi
      .spyOn(ctx.d.invoker, 'invoke')
      .mockRejectedValueOnce(new Error('User: arn:aws:sts::123456789012:assumed-role/x is not authorized'));
    // Act
    const res = await poller('POST', `/email-boxes/${box.id}/poll`);
    invoke.mockRestore();
    const again = await poller('POST', `/email-boxes/${box.id}/poll`);
    // Assess
    expect(res.status).toBe(502);
    expect(res.body.error.message).toMatch(/could not be started/);
    // AWS's words (account id, role ARN) stay in the log.
    expect(JSON.stringify(res.body)).not.toContain('123456789012');
    const runs = (await settings('GET', `/email-boxes/${box.id}/runs`)).body.items as Run[];
    const failed = runs.find((r) => r.status === 'failed');
    expect(failed?.errors[0]).toMatchObject({ kind: 'not-started' });
    expect(JSON.stringify(failed)).not.toContain('123456789012');
    expect(again.status).toBe(202);
    await finished(box.id, again.body.runId);
  });

  it('refuses a user who is not an admin, and an unknown box; GET of an unknown run is a 404', async () => {
    const { box } = await makeBox();
    expect((await poller('POST', `/email-boxes/${box.id}/poll`, { token: tokens.user })).status).toBe(403);
    expect((await poller('POST', '/email-boxes/nope/poll')).status).toBe(404);
    const unknown = await settings('GET', `/email-boxes/${box.id}/runs/no-such-run`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toMatch(/run/);
  });
});
