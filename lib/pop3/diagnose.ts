/**
 * What a POP3 failure means for the person who set up the box: the setting most likely at
 * fault, what went wrong, and what to check — in words a studio owner can act on. Used by the
 * connection test (settings API), the poll run record and the failure notification. The
 * server's own reply is passed on; the password never is (Pop3Error never carries it).
 */
import type { Pop3Error, Pop3ErrorKind } from './errors.ts';

export interface Pop3Target {
  server: string;
  port: number;
  ssl: boolean;
  /** How the box logs in; default `password` (USER/PASS). */
  authentication?: 'password' | 'ntlm' | 'oauth2' | undefined;
  /** The Windows domain, for SPA (NTLM). */
  domain?: string | undefined;
}

export interface Pop3Limits {
  connectTimeoutMs: number;
  timeoutMs: number;
}

export interface Pop3Diagnosis {
  /** The box setting to fix, e.g. `connection.port`. */
  field: string;
  kind: Pop3ErrorKind;
  /** What went wrong, in a sentence. */
  problem: string;
  /** What to check or do. */
  advice: string;
  /** The server's own `-ERR` line, when it gave one. */
  serverReply?: string;
}

/** A connection reset or broken during the handshake. */
const CUT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_DESTROYED']);
/** What OpenSSL says when the bytes it got are not TLS (a plain-text greeting). */
const PLAIN_TEXT_CODES = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_RECORD_LENGTH_MISMATCH',
  'ERR_SSL_UNKNOWN_PROTOCOL',
  'ERR_SSL_HTTP_REQUEST',
]);

const PORT_HINT = 'POP3 uses port 995 with SSL and 110 without';
const seconds = (ms: number) => Math.round(ms / 100) / 10;

export function diagnosePop3(error: Pop3Error, target: Pop3Target, limits: Pop3Limits): Pop3Diagnosis {
  const where = `${target.server}:${target.port}`;
  const serverReply = error.serverText
    ? `-ERR ${error.responseCode ? `[${error.responseCode}] ` : ''}${error.serverText}`
    : undefined;
  const d = (field: string, problem: string, advice: string): Pop3Diagnosis => ({
    field,
    kind: error.kind,
    problem,
    advice,
    ...(serverReply ? { serverReply } : {}),
  });
  switch (error.kind) {
    case 'dns':
      return d(
        'connection.server',
        `The mail server "${target.server}" was not found (no such host name).`,
        'Check the spelling, e.g. pop.gmail.com.',
      );
    case 'unreachable':
      if (error.code === 'EPRIVATEHOST')
        return d(
          'connection.server',
          error.message,
          "Use your mail provider's public server name (e.g. pop.gmail.com); internal and private addresses are not allowed.",
        );
      return d(
        'connection.server',
        `The mail server ${target.server} cannot be reached from here.`,
        'Check the server name.',
      );
    case 'refused':
      return d(
        'connection.port',
        `${where} refused the connection: nothing accepts mail connections on port ${target.port}.`,
        `Check the port and the SSL setting (${PORT_HINT}).`,
      );
    case 'timeout':
      // Servers slow down log-ins after failed attempts (Dovecot: up to 15 s), often past our wait.
      if (error.command === 'USER' || error.command === 'PASS' || error.command === 'AUTH')
        return d(
          'connection.password',
          `The mail server did not answer the log-in within ${seconds(limits.timeoutMs)} s.`,
          'Servers slow down log-ins after failed attempts: check the user name and password, wait a minute, and try again.',
        );
      // Logged in and working, then silence: the settings are right; the server or the line is not.
      if (error.phase === 'command' && error.command && error.command !== 'CAPA')
        return d(
          'connection.server',
          `The mail server stopped answering in the middle of the session (${error.commandLine ?? error.command}: nothing for ${seconds(limits.timeoutMs)} s).`,
          'Nothing is lost: the next run continues where this one stopped. If it keeps happening, the server is overloaded or the connection to it unstable.',
        );
      // Connected, but no greeting: a POP3S port waits silently for a TLS hello we never sent.
      if (error.phase === 'greeting' && !target.ssl)
        return d(
          'connection.ssl',
          `${where} accepted the connection but sent no POP3 greeting within ${seconds(limits.connectTimeoutMs)} s: this port probably expects SSL.`,
          `Turn SSL on, or use the plain POP3 port (${PORT_HINT}).`,
        );
      return d(
        'connection.port',
        `${where} did not answer within ${seconds(limits.connectTimeoutMs)} s.`,
        `Check the port and the SSL setting (${PORT_HINT}), and that the server accepts connections from outside.`,
      );
    case 'tls':
      if (error.code === 'ERR_TLS_CERT_ALTNAME_INVALID')
        return d(
          'connection.server',
          `The certificate of ${target.server} is for another name.`,
          'Use the server name your provider gives (the one on its certificate).',
        );
      if (error.code && /CERT|ISSUER|SIGNATURE/.test(error.code))
        return d(
          'connection.ssl',
          `The SSL certificate of ${where} is not trusted (${error.code}).`,
          'Check the server name and port with your provider.',
        );
      if (error.command === 'STLS')
        return d(
          'connection.ssl',
          `${where} refused to start SSL.`,
          `Check the SSL setting and the port (${PORT_HINT}).`,
        );
      // Closed or reset before the server said anything: a network or firewall cut, not a
      // plain-text server (that one answers, and OpenSSL reads its greeting as a bad record).
      if (!error.code || CUT_CODES.has(error.code))
        return d(
          'connection.server',
          `The SSL (TLS) handshake with ${where} was cut off: the connection closed before the server answered.`,
          `This is usually the network or a firewall between here and the server, not the SSL setting. Try again; if it keeps happening, check the server name and port (${PORT_HINT}) and that the server accepts connections from outside.`,
        );
      if (PLAIN_TEXT_CODES.has(error.code))
        return d(
          'connection.ssl',
          `The SSL (TLS) handshake with ${where} failed: the server answered in plain text (a POP3 greeting), so this port does not speak SSL.`,
          `Turn SSL off, or use the SSL port (${PORT_HINT}).`,
        );
      return d(
        'connection.ssl',
        `The SSL (TLS) handshake with ${where} failed (${error.code}).`,
        `Check the SSL setting and the port (${PORT_HINT}).`,
      );
    case 'auth':
      if (error.code === 'SASL_UNAVAILABLE')
        return error.commandLine === 'AUTH NTLM'
          ? d(
              'connection.spa',
              `The mail server ${target.server} does not offer SPA (NTLM) log-in.`,
              'Turn SPA off and log in with the password, or check the server name (SPA is for Exchange servers).',
            )
          : d(
              'connection.authentication',
              `The mail server ${target.server} does not offer OAuth2 (XOAUTH2) log-in.`,
              'Check the server name (pop.gmail.com, outlook.office365.com), or log in with a password.',
            );
      if (error.code === 'NTLM_DOMAIN')
        return d(
          'connection.domain',
          `The mail server rejected the log-in: it is in another Windows domain than "${target.domain ?? ''}".`,
          'Check the Domain (the NetBIOS name such as CORP, or the DNS name such as corp.example.com).',
        );
      if (error.code === 'OAUTH_REJECTED')
        return d(
          'connection.authentication',
          'The mail server did not accept the OAuth2 sign-in (the access was revoked, expired, or is for another mailbox).',
          "Sign in again with the provider for this box (GET /oauth/{provider}/start), with the account of the box's email address.",
        );
      if (error.commandLine === 'AUTH NTLM')
        return d(
          'connection.password',
          `The mail server rejected the SPA (NTLM) log-in for domain "${target.domain ?? ''}".`,
          'Check the Domain, the user name (without the domain) and the password; the server does not say which one is wrong.',
        );
      return d(
        error.command === 'USER' ? 'connection.userName' : 'connection.password',
        'The mail server rejected the user name or password.',
        'Check the user name and password (the user name is often the full email address; Gmail needs an app password and POP enabled).',
      );
    case 'protocol':
      if (error.code === 'NTLM_PROTOCOL')
        return d(
          'connection.spa',
          `The mail server's SPA (NTLM) messages could not be used: ${error.message}`,
          'Turn SPA off and log in with the password, or ask the mail administrator which log-in the server supports.',
        );
      return d(
        'connection.port',
        `The server at ${where} does not speak POP3.`,
        `Check the port and the SSL setting (${PORT_HINT}).`,
      );
    case 'closed':
      return d(
        error.phase === 'tls' ? 'connection.ssl' : 'connection.port',
        `${where} closed the connection before the session finished.`,
        `If it keeps happening, check the port and the SSL setting (${PORT_HINT}).`,
      );
    case 'server':
      return d(
        'connection.server',
        `The mail server refused the session for now${serverReply ? '' : ' without saying why'} (for example the mailbox is in use by another program).`,
        'Try again in a minute; the next scheduled run will.',
      );
    case 'aborted':
      return d('connection.server', 'The session was stopped before it finished.', 'The next run continues.');
  }
}
