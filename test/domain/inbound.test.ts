import { describe, expect, it } from 'vitest';
import {
  automaticReason,
  autoReplyTargets,
  decideActions,
  headersFrom,
  MAX_THREAD_LOOKUPS,
  matchThread,
  referencedIds,
} from '#lib/domain/inbound';

const h = (headers: Record<string, string>) => headersFrom(headers);

describe('automaticReason', () => {
  it.each([
    [{ 'Auto-Submitted': 'auto-replied' }, 'Auto-Submitted'],
    [{ Precedence: 'bulk' }, 'Precedence'],
    [{ Precedence: 'list' }, 'Precedence'],
    [{ Precedence: 'junk' }, 'Precedence'],
    [{ Precedence: 'auto_reply' }, 'Precedence'],
    [{ 'X-Autoreply': 'yes' }, 'x-autoreply'],
    [{ 'X-Autorespond': 'yes' }, 'x-autorespond'],
    [{ 'X-Auto-Response-Suppress': 'OOF, AutoReply' }, 'X-Auto-Response-Suppress'],
    [{ 'List-Id': '<news.example.com>' }, 'mailing list'],
    [{ 'List-Unsubscribe': '<mailto:leave@news.example.com>' }, 'mailing list'],
    [{ 'Return-Path': '<>' }, 'bounce'],
    [{ 'Content-Type': 'multipart/report; report-type=delivery-status' }, 'report'],
  ])('treats %o as automatic', (headers, reason) => {
    expect(automaticReason(h(headers), 'ana@example.com')).toContain(reason);
  });

  it.each([
    'MAILER-DAEMON@mx.example.com',
    'postmaster@example.com',
    'no-reply@shop.example',
    'noreply@x.test',
  ])('treats mail from %s as automatic', (from) => {
    expect(automaticReason(h({}), from)).toMatch(/system sender/);
  });

  it('treats mail a person wrote as not automatic, including Auto-Submitted: no', () => {
    expect(
      automaticReason(h({ 'Auto-Submitted': 'no', Precedence: 'normal' }), 'ana@example.com'),
    ).toBeUndefined();
  });
});

describe('autoReplyTargets', () => {
  const base = {
    from: 'Ana@Example.com',
    replyTo: [],
    to: ['sales@studio.test', 'bo@example.com'],
    cc: ['cy@example.com', 'ana@example.com', 'postmaster@example.com'],
    own: ['SALES@studio.test'],
  };

  it('answers only the sender unless reply-to-all is set', () => {
    expect(autoReplyTargets({ ...base, toAll: false })).toEqual(['Ana@Example.com']);
  });

  it('answers To and CC too with reply-to-all, minus the studio, duplicates and system senders', () => {
    expect(autoReplyTargets({ ...base, toAll: true })).toEqual([
      'Ana@Example.com',
      'bo@example.com',
      'cy@example.com',
    ]);
  });

  it('prefers Reply-To over From', () => {
    expect(autoReplyTargets({ ...base, replyTo: ['desk@example.com'], toAll: false })).toEqual([
      'desk@example.com',
    ]);
  });
});

describe('threading', () => {
  it('looks up at most the nearest 20 Message-IDs, and ignores ones too long to be real', () => {
    const refs = Array.from({ length: 50 }, (_, i) => `<r${i}@x>`);
    const ids = referencedIds(`<${'a'.repeat(1_000)}@x>`, refs);
    expect(ids).toHaveLength(MAX_THREAD_LOOKUPS);
    expect(ids[0]).toBe('<r49@x>');
  });

  it('lists In-Reply-To first, then References from the newest', () => {
    expect(referencedIds('<c@x>', ['<a@x> <b@x>', '<c@x>'])).toEqual(['<c@x>', '<b@x>', '<a@x>']);
  });

  it('joins the thread and client of the nearest known message, preferring one we sent', async () => {
    // Prepare
    const known: Record<
      string,
      { id: string; threadId: string; clientId?: string; direction: 'in' | 'out' }[]
    > = {
      '<b@x>': [
        { id: 'm1', threadId: 't-in', direction: 'in' },
        { id: 'm2', threadId: 't-out', clientId: 'c1', direction: 'out' },
      ],
    };
    // Act
    const match = await matchThread(['<zzz@x>', '<b@x>'], async (id) => known[id] ?? []);
    // Assess
    expect(match).toEqual({ threadId: 't-out', clientId: 'c1', repliesToOurs: true });
  });

  it('finds no thread for a message that refers to nothing we know', async () => {
    expect(await matchThread(['<q@x>'], async () => [])).toBeUndefined();
  });
});

describe('decideActions', () => {
  const box = {
    autoCreateTask: true,
    sendAutoReply: true,
    autoReplyFirstEmailOnly: false,
  };

  it('creates a task and replies for a new email from a person', () => {
    expect(decideActions({ ...box, automatic: false, thread: undefined })).toMatchObject({
      createTask: true,
      autoReply: true,
    });
  });

  it('creates no task for a reply in a known thread, but still replies unless first-email-only', () => {
    const thread = { threadId: 't', repliesToOurs: true };
    expect(decideActions({ ...box, automatic: false, thread })).toMatchObject({
      createTask: false,
      autoReply: true,
    });
    expect(decideActions({ ...box, autoReplyFirstEmailOnly: true, automatic: false, thread })).toMatchObject({
      createTask: false,
      autoReply: false,
    });
  });

  it('with first-email-only, replies to a message that starts a thread, even a reply to nothing we know', () => {
    expect(
      decideActions({ ...box, autoReplyFirstEmailOnly: true, automatic: false, thread: undefined }),
    ).toMatchObject({ createTask: true, autoReply: true });
  });

  it('does nothing for automatic mail', () => {
    expect(decideActions({ ...box, automatic: true, thread: undefined })).toMatchObject({
      createTask: false,
      autoReply: false,
    });
  });

  it('does nothing the box does not ask for', () => {
    expect(
      decideActions({
        ...box,
        autoCreateTask: false,
        sendAutoReply: false,
        automatic: false,
        thread: undefined,
      }),
    ).toMatchObject({ createTask: false, autoReply: false, why: [] });
  });
});
