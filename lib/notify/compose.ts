/**
 * The words of the notification emails, and their MIME. A failure says which box, what failed in
 * plain words and what to check (from lib/inbox/failures.ts); a summary gives the counts. Plain text,
 * marked auto-generated so no mail system (our own poller included) auto-replies to it.
 */

import type { PollOutcomeDetail } from '#lib/inbox/events';
import type { RawMail } from '#lib/ports/index';
import { loadMailComposer } from '#lib/send/compose';
import type { Decision, NotificationKind } from './decide.ts';

/** Short names of failure kinds, for subjects. */
const KIND_WORDS: Record<string, string> = {
  'login-rejected': 'login rejected',
  'server-unknown': 'mail server name not found',
  'server-unreachable': 'mail server unreachable',
  timeout: 'mail server did not answer',
  'ssl-mismatch': 'secure connection (SSL) failed',
  'not-pop3': 'not a POP3 server',
  'not-imap': 'not an IMAP server',
  'folder-not-found': 'mail folder not found',
  'connection-lost': 'connection lost',
  'server-refused': 'mail server refused a command',
  aborted: 'run stopped',
  internal: 'internal error',
};

/** Settings as the box form names them. */
const FIELD_WORDS: Record<string, string> = {
  'connection.password': 'User Name and Password',
  'connection.userName': 'User Name',
  'connection.server': 'Mail Server',
  'connection.port': 'Port Number',
  'connection.ssl': 'SSL',
  'connection.folder': 'Folder',
  'connection.moveToFolder': 'Move to Folder',
};

export const kindWords = (kind: string | undefined) =>
  kind ? (KIND_WORDS[kind] ?? kind.replaceAll('-', ' ')) : 'unknown problem';

export interface ComposeContext {
  kind: NotificationKind;
  run: PollOutcomeDetail;
  box: { description: string; emailAddress?: string };
  /** Times are written in this zone (the box schedule's). */
  timeZone: string;
  streak: Decision['streak'];
  reminderAfterHours: number;
}

export interface NotificationContent {
  subject: string;
  text: string;
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** `Mon 15 Jun 2026 at 08:30 (Europe/London)`: the studio's wall clock, named. */
function when(iso: string | undefined, timeZone: string): string {
  const at = iso ? new Date(iso) : new Date();
  if (Number.isNaN(at.getTime())) return String(iso);
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      weekday: 'short',
      day: 'numeric',
      month: 'short',
      year: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formats.set(timeZone, f);
  }
  const p = Object.fromEntries(f.formatToParts(at).map((x) => [x.type, x.value]));
  return `${p.weekday} ${p.day} ${p.month} ${p.year} at ${p.hour}:${p.minute} (${timeZone})`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function countLines(run: PollOutcomeDetail): string[] {
  const c = run.counts;
  const lines = [
    `  Messages on the server:   ${c.seen}`,
    `  Imported:                 ${c.imported}`,
    `  Already imported/skipped: ${c.skipped}`,
    `  Quarantined (unreadable): ${c.quarantined}`,
    `  Tasks created:            ${c.tasks}`,
    `  Auto-replies sent:        ${c.autoReplies}`,
  ];
  if (run.errors.length > 0) {
    lines.push('', 'Problems with single messages:');
    for (const e of run.errors) lines.push(`  - ${e.message}`);
    const more = (run.errorCount ?? run.errors.length) - run.errors.length;
    if (more > 0) lines.push(`  … and ${more} more.`);
  }
  return lines;
}

function footer(run: PollOutcomeDetail): string[] {
  return [
    '',
    '--',
    `Studio ${run.studioId} · box ${run.boxId} · run ${run.runId}`,
    'Sent by the studio-mail Email Inbox Processor. Change who gets these in the email box schedule settings.',
  ];
}

export function notificationContent(c: ComposeContext): NotificationContent {
  const { run, box, timeZone } = c;
  const name = `"${box.description}"`;
  const boxLabel = box.emailAddress ? `${name} (${box.emailAddress})` : name;
  const at = when(run.scheduledTime ?? run.finishedAt, timeZone);
  const failure = run.failure;

  if (c.kind === 'failure' || c.kind === 'reminder') {
    const words = kindWords(failure?.kind);
    const lines =
      c.kind === 'failure'
        ? [`The email box ${boxLabel} could not be checked for new mail on ${at}.`]
        : [
            `The email box ${boxLabel} still cannot be checked for new mail: every run has failed since ${when(c.streak.failingSince, timeZone)} (${plural(c.streak.failedRuns, 'failed run')}). The latest was on ${at}.`,
          ];
    lines.push('', `What failed: ${failure?.message ?? 'The poll failed.'}`);
    lines.push(`What to check: ${failure?.advice ?? 'If this repeats, report it with the run id below.'}`);
    if (failure?.field) lines.push(`Setting to look at: ${FIELD_WORDS[failure.field] ?? failure.field}`);
    if (failure?.serverReply) lines.push(`The mail server said: ${failure.serverReply}`);
    lines.push(
      '',
      'No mail is lost: messages wait on the mail server until a run succeeds.',
      `You will not get this email again for the same problem, except a reminder every ${plural(c.reminderAfterHours, 'hour')} while it lasts. You will get one if the problem changes, and one when the box works again.`,
      ...footer(run),
    );
    return {
      subject:
        c.kind === 'failure'
          ? `Email box ${name} could not be checked: ${words}`
          : `Reminder: email box ${name} still cannot be checked: ${words}`,
      text: lines.join('\n'),
    };
  }

  if (c.kind === 'recovered') {
    const lines = [
      `The email box ${boxLabel} works again: it was checked successfully on ${at}.`,
      '',
      `It had failed since ${when(c.streak.failingSince, timeZone)} (${plural(c.streak.failedRuns, 'failed run')}; last problem: ${kindWords(c.streak.alertKind)}).`,
      'Mail that arrived meanwhile was waiting on the server and has been imported now.',
      '',
      'This run:',
      ...countLines(run),
      ...footer(run),
    ];
    return { subject: `Email box ${name} works again`, text: lines.join('\n') };
  }

  const lines = [
    `The email box ${boxLabel} was checked on ${at}${run.status === 'partial' ? ', with problems' : ''}.`,
    '',
    ...countLines(run),
    ...footer(run),
  ];
  return {
    subject: `Email box ${name} checked: ${plural(run.counts.imported, 'new message')}${run.status === 'partial' ? ' (with problems)' : ''}`,
    text: lines.join('\n'),
  };
}

/** A Message-ID that is the same for every attempt at one run's notification. */
export function notificationMessageId(runId: string, kind: NotificationKind, sender: string): string {
  const domain = sender.split('@').pop()?.toLowerCase() || 'studio-mail.invalid';
  return `<notify.${runId.replace(/[^A-Za-z0-9.-]/g, '')}.${kind}@${domain}>`;
}

export async function notificationMime(
  content: NotificationContent,
  m: { from: string; to: string; messageId: string; date: Date },
): Promise<RawMail> {
  const MailComposer = await loadMailComposer();
  const composer = new MailComposer({
    from: { name: 'Studio Mail', address: m.from },
    to: m.to,
    subject: content.subject,
    text: content.text,
    messageId: m.messageId,
    date: m.date,
    headers: {
      // RFC 3834: no auto-replies, no out-of-office answers (Exchange reads the second).
      'Auto-Submitted': 'auto-generated',
      'X-Auto-Response-Suppress': 'All',
    },
    newline: 'win',
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  const raw = await composer.compile().build();
  return { envelope: { from: m.from, to: [m.to] }, raw, messageId: m.messageId };
}
