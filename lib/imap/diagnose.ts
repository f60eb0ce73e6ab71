/**
 * What an IMAP failure means for the person who set up the box, in the shape of the POP3
 * diagnosis (lib/pop3/diagnose.ts): the setting most likely at fault, what went wrong, what to
 * check. Connection-level failures read as POP3's, with IMAP's ports; a missing folder, SPA
 * (NTLM) and OAuth2 refusals name their own fields.
 */
import { diagnosePop3, type Pop3Diagnosis, type Pop3Limits, type Pop3Target } from '#lib/pop3/diagnose';
import { Pop3Error } from '#lib/pop3/errors';
import type { ImapError, ImapErrorKind } from './errors.ts';

export interface ImapDiagnosis extends Omit<Pop3Diagnosis, 'kind'> {
  kind: ImapErrorKind;
}

const PORT_HINT = 'IMAP uses port 993 with SSL and 143 without';

export function diagnoseImap(error: ImapError, target: Pop3Target, limits: Pop3Limits): ImapDiagnosis {
  const serverReply = error.serverText ? `NO ${error.serverText}` : undefined;
  const d = (field: string, problem: string, advice: string): ImapDiagnosis => ({
    field,
    kind: error.kind,
    problem,
    advice,
    ...(serverReply ? { serverReply } : {}),
  });
  if (error.kind === 'folder') {
    const field = error.field ?? 'connection.folder';
    return field === 'connection.moveToFolder'
      ? d(
          field,
          error.folder
            ? `The folder "${error.folder}" that imported mail is to be moved to does not exist on the server.`
            : 'Imported mail is to be moved, but no folder to move it to is set.',
          'Create the folder in the mailbox, or give the name of an existing one (subfolders as the server writes them, e.g. INBOX/Imported or INBOX.Imported).',
        )
      : d(
          field,
          `The folder "${error.folder ?? 'INBOX'}" does not exist in this mailbox.`,
          'Give the name of an existing folder (INBOX when unsure; subfolders as the server writes them, e.g. INBOX/Clients).',
        );
  }
  if (error.kind === 'auth' && !error.code && error.commandLine !== 'AUTH NTLM')
    return d(
      'connection.password',
      'The mail server rejected the user name or password.',
      'Check the user name and password (the user name is often the full email address; Gmail needs an app password and IMAP enabled).',
    );
  if (error.kind === 'server' && error.command === 'LOGIN')
    return d(
      'connection.server',
      `The mail server refused the session for now${serverReply ? '' : ' without saying why'}.`,
      'Try again in a minute; the next scheduled run will.',
    );
  // The rest reads as for POP3 (the same kinds and codes), with IMAP's words for ports and replies.
  const command = error.command === 'AUTHENTICATE' || error.command === 'LOGIN' ? 'AUTH' : error.command;
  const pop3 = new Pop3Error(error.kind, error.message, {
    command: error.phase === 'command' ? command : undefined,
    commandLine: error.commandLine,
    code: error.code,
    phase: error.phase,
  });
  const out = diagnosePop3(pop3, target, limits);
  const words = (text: string) =>
    text
      .replaceAll('POP3 uses port 995 with SSL and 110 without', PORT_HINT)
      .replaceAll('a POP3 greeting', 'an IMAP greeting')
      .replaceAll('does not speak POP3', 'does not speak IMAP')
      .replaceAll('pop.gmail.com', 'imap.gmail.com')
      .replaceAll('POP3', 'IMAP');
  return {
    field: out.field,
    kind: error.kind,
    problem: words(out.problem),
    advice: words(out.advice),
    ...(serverReply ? { serverReply } : {}),
  };
}
