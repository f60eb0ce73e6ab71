import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MERGE_FIELDS } from '#lib/domain/merge-fields';
import { tokens } from '#test/support/api';
import { fieldsOf, messageFor, type SettingsHarness, settingsHarness, unreachableProbe } from './harness.ts';

let h: SettingsHarness;

beforeAll(async () => {
  h = await settingsHarness({ probePop3: unreachableProbe });
});

afterAll(() => h.output.restore());

describe('GET /merge-fields', () => {
  it('lists every merge field with its description and an example for any user', async () => {
    // Act
    const res = await h.call('GET', '/merge-fields', { token: tokens.user });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.items.map((f: { name: string }) => f.name)).toEqual(Object.keys(MERGE_FIELDS));
    expect(res.body.items[0]).toEqual({
      name: 'client.firstName',
      description: "the client's first name",
      example: 'José',
    });
  });

  it('answers 401 without a token', async () => {
    // Act
    const res = await h.call('GET', '/merge-fields', { token: null });
    // Assess
    expect(res.status).toBe(401);
  });
});

describe('saving a form letter or signature with an unknown merge field', () => {
  it('refuses a form letter (400), naming the field, the part and the nearest known field, and saves nothing', async () => {
    // Act
    const res = await h.call('POST', '/form-letters', {
      body: {
        id: 'fl-typo',
        name: 'Typo',
        subject: 'Hi {{client.frstName}}',
        text: 'See you, {{studio.nmae}} {{invoice.totalAmountDue}}',
      },
    });
    const after = await h.call('GET', '/form-letters/fl-typo');
    // Assess
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toEqual(['subject', 'text', 'text']);
    expect(messageFor(res, 'subject')).toContain(
      'unknown merge field {{client.frstName}} (did you mean {{client.firstName}}?)',
    );
    expect(res.body.error.message).toContain('{{studio.nmae}} (did you mean {{studio.name}}?)');
    expect(res.body.error.message).toContain('{{invoice.totalAmountDue}}; GET /merge-fields');
    expect(after.status).toBe(404);
  });

  it('refuses replacing a signature with one, keeping the stored signature', async () => {
    // Prepare
    const created = await h.call('POST', '/signatures', {
      body: { id: 'sig-typo', name: 'Ana', text: '{{user.fullName}}' },
    });
    // Act
    const res = await h.call('PUT', '/signatures/sig-typo', {
      body: { name: 'Ana', html: '<p>{{user.fullname}}</p>', version: 1 },
    });
    const after = await h.call('GET', '/signatures/sig-typo');
    // Assess
    expect(created.status).toBe(201);
    expect(res.status).toBe(400);
    expect(messageFor(res, 'html')).toContain('{{user.fullname}} (did you mean {{user.fullName}}?)');
    expect(after.body).toMatchObject({ text: '{{user.fullName}}', version: 1 });
  });
});
