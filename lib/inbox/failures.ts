/**
 * Poll failures in plain words: what failed and what to check, for the run record, the failure
 * notification and the connection test. Nothing here repeats a password.
 */
import { Pop3Error } from '#lib/pop3/client';

export interface Failure {
  /** Stable name for alert de-duplication, e.g. `login-rejected`. */
  kind: string;
  /** What went wrong, in a sentence. */
  message: string;
  /** What to check. */
  advice: string;
  /** The setting most likely at fault. */
  field?: string;
  serverReply?: string;
}

export function describeFailure(
  error: unknown,
  box: { server: string; port: number; ssl: boolean },
): Failure {
  if (error instanceof Pop3Error) {
    const reply = error.serverText
      ? `${error.responseCode ? `[${error.responseCode}] ` : ''}${error.serverText}`
      : undefined;
    switch (error.kind) {
      case 'dns':
        return {
          kind: 'server-unknown',
          message: `The mail server name "${box.server}" could not be found.`,
          advice: 'Check the server name in the box settings (for Gmail: pop.gmail.com).',
          field: 'connection.server',
        };
      case 'refused':
      case 'unreachable':
        return {
          kind: 'server-unreachable',
          message: `Nothing answered at ${box.server} port ${box.port}.`,
          advice: `Check the port (995 with SSL, 110 without) and that SSL is ${box.ssl ? 'right to be on' : 'right to be off'}.`,
          field: 'connection.port',
        };
      case 'timeout':
        return {
          kind: 'timeout',
          message: `The mail server ${box.server}:${box.port} did not answer in time.`,
          advice:
            'Check the port and the SSL setting; if they are right, the server may be busy — the next run will try again.',
          field: 'connection.port',
        };
      case 'tls':
        return {
          kind: 'ssl-mismatch',
          message: `The secure (SSL) connection to ${box.server}:${box.port} failed.`,
          advice: box.ssl
            ? 'The port may not use SSL: turn SSL off or use the SSL port (usually 995).'
            : 'The port expects SSL: turn SSL on (usually port 995).',
          field: 'connection.ssl',
        };
      case 'auth':
        return {
          kind: 'login-rejected',
          message: 'The mail server rejected the user name or password.',
          advice:
            'Check the user name and password; Gmail needs an app password and POP enabled in its settings.',
          field: 'connection.password',
          serverReply: reply,
        };
      case 'protocol':
        return {
          kind: 'not-pop3',
          message: `The server at ${box.server}:${box.port} does not speak POP3 as expected.`,
          advice: 'Check the port and SSL setting: this may be an IMAP or SMTP port.',
          field: 'connection.port',
        };
      case 'closed':
        return {
          kind: 'connection-lost',
          message: 'The mail server closed the connection.',
          advice: 'Nothing was lost; the next run continues where this one stopped.',
        };
      case 'server':
        return {
          kind: 'server-refused',
          message: `The mail server refused a command${error.command ? ` (${error.command})` : ''}.`,
          advice:
            error.responseCode === 'IN-USE'
              ? 'Another program is reading this mailbox; try again later.'
              : 'The next run will try again.',
          serverReply: reply,
        };
      case 'aborted':
        return { kind: 'aborted', message: 'The run was stopped.', advice: 'The next run continues.' };
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    kind: 'internal',
    message: `The poll failed: ${message}`,
    advice: 'If this repeats, report it with the run id.',
  };
}
