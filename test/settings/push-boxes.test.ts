import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokens } from '#test/support/api';
import { fieldsOf, type SettingsHarness, settingsHarness, unreachableProbe } from './harness.ts';

let h: SettingsHarness;

beforeAll(async () => {
  h = await settingsHarness({ probePop3: unreachableProbe });
});
afterAll(() => h.output.restore());

const pushBox = (over: Record<string, unknown> = {}, connection: Record<string, unknown> = {}) => ({
  description: 'Forwarded sales mail',
  intake: 'push',
  ...over,
  connection: {
    type: 'pop3',
    server: 'pop.gmail.com',
    emailAddress: 'sales@lumen.test',
    userName: 'sales@lumen.test',
    ssl: true,
    spa: false,
    ...connection,
  },
});

describe('email boxes that take pushed mail', () => {
  it('saves a push-only box without a password or a login test, and shows its receiving address', async () => {
    // Act
    const created = await h.call('POST', '/email-boxes', { body: pushBox({ id: 'fwd' }) });
    const read = await h.call('GET', '/email-boxes/fwd');
    // Assess
    expect(created.status).toBe(201);
    expect(created.body.receivingAddress).toBe('fwd.studio-1@inbound.studio-mail.localhost');
    expect(created.body.connection.passwordSet).toBe(false);
    expect(created.body.verification.tested).toBe(false);
    expect(read.body.receivingAddress).toBe(created.body.receivingAddress);
    expect(await h.d.repos.emailBoxes.routeOf('fwd.studio-1')).toEqual({
      studioId: 'studio-1',
      boxId: 'fwd',
    });
  });

  it('gives each chosen local part to one box only, across studios', async () => {
    // Prepare
    await h.call('POST', '/email-boxes', { body: pushBox({ id: 'one', receivingLocalPart: 'Lumen-Sales' }) });
    // Act
    const taken = await h.call('POST', '/email-boxes', {
      token: tokens.otherStudioAdmin,
      body: pushBox({ id: 'two', receivingLocalPart: 'lumen-sales' }),
    });
    // Assess
    expect(taken.status).toBe(409);
    expect(taken.body.error.message).toMatch(/receivingLocalPart/);
    expect(await h.d.repos.emailBoxes.get('studio-2', 'two')).toBeUndefined();
    expect(await h.d.repos.emailBoxes.routeOf('lumen-sales')).toEqual({ studioId: 'studio-1', boxId: 'one' });
  });

  it('moves the claim when the local part changes and drops it when the box is deleted', async () => {
    // Prepare
    await h.call('POST', '/email-boxes', { body: pushBox({ id: 'mover', receivingLocalPart: 'old-name' }) });
    // Act
    const moved = await h.call('PUT', '/email-boxes/mover', {
      body: pushBox({ receivingLocalPart: 'new-name' }),
    });
    const afterMove = [
      await h.d.repos.emailBoxes.routeOf('old-name'),
      await h.d.repos.emailBoxes.routeOf('new-name'),
    ];
    const deleted = await h.call('DELETE', '/email-boxes/mover');
    // Assess
    expect(moved.status).toBe(200);
    expect(moved.body.receivingAddress).toBe('new-name@inbound.studio-mail.localhost');
    expect(afterMove).toEqual([undefined, { studioId: 'studio-1', boxId: 'mover' }]);
    expect(deleted.status).toBe(204);
    expect(await h.d.repos.emailBoxes.routeOf('new-name')).toBeUndefined();
  });

  it('refuses a local part forwarding forms reject, and a schedule on a push-only box, naming the fields', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', {
      body: pushBox({
        id: 'bad',
        receivingLocalPart: '-sales..',
        schedule: {
          enabled: true,
          startTime: '08:00',
          endTime: '18:00',
          intervalMinutes: 15,
          weekdays: ['MON'],
          timeZone: 'UTC',
        },
      }),
    });
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toEqual(expect.arrayContaining(['receivingLocalPart', 'schedule.enabled']));
    expect(await h.d.repos.emailBoxes.get('studio-1', 'bad')).toBeUndefined();
  });

  it('still needs a password for a box that is polled too', async () => {
    // Act
    const res = await h.call('POST', '/email-boxes', { body: pushBox({ id: 'both', intake: 'both' }) });
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toContain('connection.password');
  });
});
