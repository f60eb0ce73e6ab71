/**
 * Issue 12, item 8: schedule names that cannot collide across studios and a schedule view that
 * shows only the box's own schedule; the studio claim checked at the edge; two password saves at
 * the same time never put the old password back. (Idempotency: test/send/idempotency.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nameOf } from '#lib/schedules/definition';
import { fieldsOf, type SettingsHarness, settingsHarness, unreachableProbe } from '#test/settings/harness';

let h: SettingsHarness;
beforeAll(async () => {
  h = await settingsHarness({ probePop3: unreachableProbe });
});
afterAll(() => h.output.restore());

const schedule = {
  startTime: '08:30',
  endTime: '17:15',
  intervalMinutes: 20,
  weekdays: ['MON', 'WED', 'FRI'],
  timeZone: 'Europe/London',
};
const box = (id: string) => ({
  id,
  description: 'Sales',
  connection: {
    server: 'pop.lumen.test',
    emailAddress: 'sales@lumen.test',
    userName: 'sales',
    password: 'pw-1',
  },
  schedule,
});

describe('poll schedules', () => {
  it('gives acme-nyc/sales and acme/nyc-sales a schedule each', async () => {
    // Act
    const first = await h.call('POST', '/email-boxes?verify=false', {
      token: 'dev:acme-nyc:admin-1:admins',
      body: box('sales'),
    });
    const second = await h.call('POST', '/email-boxes?verify=false', {
      token: 'dev:acme:admin-2:admins',
      body: box('nyc-sales'),
    });
    // Assess
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    const inputs = h.d.scheduler
      .list()
      .filter((d) => d.name.startsWith('inbox-Sales-acme-nyc-sales-'))
      .map((d) => `${d.input.studioId}/${d.input.boxId}`)
      .sort();
    expect(inputs).toEqual(['acme-nyc/sales', 'acme/nyc-sales']);
  });

  it("shows no deployed schedule in the view when the one under the box's name polls another box", async () => {
    // Prepare: a schedule under this box's name whose input is another studio's box.
    const res = await h.call('POST', '/email-boxes?verify=false', { body: box('lobby') });
    expect(res.status).toBe(201);
    const name = nameOf('studio-1', { id: 'lobby', description: 'Sales' });
    const own = h.d.scheduler.list().find((d) => d.name === name);
    expect(own).toBeDefined();
    await h.d.scheduler.put({ ...own!, input: { ...own!.input, studioId: 'acme', boxId: 'secret-box' } });
    // Act
    const view = await h.call('GET', '/email-boxes/lobby/schedule');
    // Assess
    expect(view.status).toBe(200);
    expect(view.body.deployed).toBeNull();
    expect(view.text).not.toContain('secret-box');
  });
});

describe('the studio claim', () => {
  it.each([
    ['a key separator', 'dev:studio-1#BOX#x:admin-1:admins'],
    ['65 characters', `dev:${'s'.repeat(65)}:admin-1:admins`],
    ['a space', 'dev:studio 1:admin-1:admins'],
  ])('refuses a token whose studio claim has %s with 401', async (_, token) => {
    // Act
    const res = await h.call('GET', '/departments', { token });
    // Assess
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/studio claim/);
  });
});

describe('two password saves at the same time', () => {
  const company = (password: string) => ({
    studioName: 'Lumen',
    displayName: 'Lumen',
    emailAddress: 'hello@lumen.test',
    transport: {
      method: 'smtp',
      server: 'smtp.lumen.test',
      port: 587,
      security: 'starttls',
      logonName: 'hello',
      password,
    },
  });

  it('never leaves the old password in place: the save that wins has its password stored', async () => {
    // Prepare
    expect((await h.call('PUT', '/settings/company/email', { body: company('pw-Old-1') })).status).toBe(200);
    const repo = h.d.repos.companyEmail;
    const replace = repo.replace.bind(repo);
    let release: (() => void) | undefined;
    let calls = 0;
    // The first save waits at its record write until the second has saved.
    repo.replace = (async (...args: Parameters<typeof replace>) => {
      if (++calls === 1) await new Promise<void>((resolve) => (release = resolve));
      else
        try {
          return await replace(...args);
        } finally {
          release?.();
        }
      return replace(...args);
    }) as typeof replace;
    // Act
    let results: Awaited<ReturnType<typeof h.call>>[];
    try {
      results = await Promise.all([
        h.call('PUT', '/settings/company/email', { body: company('pw-First-2') }),
        h.call('PUT', '/settings/company/email', { body: company('pw-Second-3') }),
      ]);
    } finally {
      repo.replace = replace;
    }
    // Assess
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const winner = results[0]?.status === 200 ? 'pw-First-2' : 'pw-Second-3';
    const stored = await repo.require('studio-1', 'company');
    const ref = stored.transport.method === 'smtp' ? stored.transport.passwordRef : undefined;
    expect(await h.d.secrets.get(ref as string)).toBe(winner);
    expect(fieldsOf(results.find((r) => r.status === 409)!)).toEqual([]);
  });
});
