/**
 * Turns a failed send into a diagnosis a studio owner can act on: which settings field to fix,
 * what went wrong in words, what to do, and the server's own reply code and text. Errors come
 * from nodemailer's SMTP client (`code`, `responseCode`, `command`, `response`) or from the SES v2
 * client (`name`, `message`, `$metadata.httpStatusCode`); nothing here imports either.
 */
import type { ResolvedTransport, SendingTransport, Source } from '#lib/domain/settings';
import { GraphError } from '#lib/graph/errors';
import type { Prober } from './probe.ts';

export type DiagnosisKind =
  | 'auth'
  | 'sign-in'
  | 'consent'
  | 'permission'
  | 'tls'
  | 'certificate'
  | 'connect'
  | 'dns'
  | 'timeout'
  | 'sender'
  | 'recipient'
  | 'message'
  | 'identity'
  | 'account'
  | 'throttled'
  | 'temporary'
  | 'password-missing'
  | 'secret'
  | 'unknown';

export interface Diagnosis {
  /** The settings field to look at, as the settings API names it (e.g. `transport.port`). */
  field: string;
  /** Whose settings hold that field: the company's or the sending user's own. */
  settings: Source;
  kind: DiagnosisKind;
  problem: string;
  advice: string;
  /** SMTP reply code, or the HTTP status SES answered with. */
  serverCode?: number;
  /** The server's words (SMTP reply line, or SES error name and message). */
  serverReply?: string;
  /** Whether the same message might go through later unchanged (busy server, throttling). */
  retryable: boolean;
}

export interface DiagnosisContext {
  transport: SendingTransport;
  /** Where the transport and the sending address come from. */
  sources: { transport: Source; emailAddress: Source };
  from: string;
  to: string[];
  /** Looks at the port again after a TLS or greeting failure; absent in unit tests that need no network. */
  probe?: Prober;
}

export const GMAIL_APP_PASSWORD_ADVICE =
  'Gmail needs an app password: turn on 2-Step Verification and create one (Google Account > Security > ' +
  "2-Step Verification > App passwords), then paste it as the password here. Your normal Gmail password won't work.";

const PORT_HINT = 'Port 465 uses SSL on connect; port 587 uses STARTTLS; port 25 often has neither.';

interface SmtpLikeError {
  code?: string;
  responseCode?: number;
  command?: string;
  response?: string;
  message?: string;
  reason?: string;
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

function asError(error: unknown): SmtpLikeError {
  return error && typeof error === 'object' ? (error as SmtpLikeError) : { message: String(error) };
}

/** The SES errors that mean "slow down", which are worth retrying. */
export const SES_THROTTLING = new Set([
  'TooManyRequestsException',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
]);

/** Whether trying the same message again soon may work: SMTP 4xx replies and SES throttling. */
export function isTransient(error: unknown): boolean {
  const e = asError(error);
  if (e.name && SES_THROTTLING.has(e.name)) return true;
  return typeof e.responseCode === 'number' && e.responseCode >= 400 && e.responseCode < 500;
}

/**
 * Only an SMTP reply (three digits, then text) is passed on: whatever else answered on that port
 * (an HTTP server, a metadata service) is not echoed to the caller.
 */
function reply(e: SmtpLikeError): Pick<Diagnosis, 'serverCode' | 'serverReply'> {
  const out: Pick<Diagnosis, 'serverCode' | 'serverReply'> = {};
  if (typeof e.responseCode === 'number') out.serverCode = e.responseCode;
  if (e.response && /^[2-5]\d\d[ -]/.test(e.response)) out.serverReply = e.response;
  return out;
}

/**
 * AWS error text names role ARNs and the account id: internals a studio has no use for and an
 * attacker would. The full text goes to the log; responses get this.
 */
export function redactAws(text: string): string {
  return text.replace(/arn:aws[a-z-]*:[^\s"',;)]+/gi, '[arn]').replace(/\b\d{12}\b/g, '[account]');
}

/** Diagnoses an error the SES v2 client raised. */
function diagnoseSes(e: SmtpLikeError, ctx: DiagnosisContext): Diagnosis {
  const name = e.name ?? 'Error';
  const message = e.message ?? '';
  const server = {
    ...(e.$metadata?.httpStatusCode ? { serverCode: e.$metadata.httpStatusCode } : {}),
    serverReply: redactAws(`${name}: ${message}`),
  };
  if (SES_THROTTLING.has(name)) {
    return {
      field: 'transport.method',
      settings: ctx.sources.transport,
      kind: 'throttled',
      problem: 'Amazon SES is sending more slowly than asked (throttled) and did not take the message.',
      advice: 'Try again in a minute. If it keeps happening, ask AWS to raise the sending rate.',
      retryable: true,
      ...server,
    };
  }
  const notVerified = /not verified|identity/i.test(message);
  if ((name === 'MessageRejected' || name === 'NotFoundException') && notVerified) {
    // In the SES sandbox recipients must be verified too; the message lists the identities that failed.
    const failed = message.toLowerCase();
    const senderFailed =
      failed.includes(ctx.from.toLowerCase()) || !ctx.to.some((t) => failed.includes(t.toLowerCase()));
    if (senderFailed) {
      return {
        field: 'emailAddress',
        settings: ctx.sources.emailAddress,
        kind: 'identity',
        problem: `Amazon SES has not verified the sending address ${ctx.from} (nor its domain).`,
        advice:
          'Verify the address or its domain in Amazon SES (an AWS admin task), or send from an address ' +
          'that is already verified.',
        retryable: false,
        ...server,
      };
    }
    return {
      field: 'to',
      settings: ctx.sources.emailAddress,
      kind: 'identity',
      problem: 'Amazon SES is in its sandbox and has not verified the recipient address.',
      advice: 'Verify the recipient in SES for testing, or ask AWS to take the account out of the sandbox.',
      retryable: false,
      ...server,
    };
  }
  if (name === 'MailFromDomainNotVerifiedException') {
    return {
      field: 'emailAddress',
      settings: ctx.sources.emailAddress,
      kind: 'identity',
      problem: `The MAIL FROM domain of ${ctx.from} is not verified in Amazon SES.`,
      advice:
        'Finish the custom MAIL FROM domain setup in SES (DNS records), or send from a verified domain.',
      retryable: false,
      ...server,
    };
  }
  if (name === 'AccountSuspendedException' || name === 'SendingPausedException') {
    return {
      field: 'transport.method',
      settings: ctx.sources.transport,
      kind: 'account',
      problem: 'Amazon SES sending is paused or suspended for this account.',
      advice: 'An AWS admin checks the SES account dashboard; until then choose SMTP or Gmail to send.',
      retryable: false,
      ...server,
    };
  }
  if (name === 'LimitExceededException') {
    return {
      field: 'transport.method',
      settings: ctx.sources.transport,
      kind: 'account',
      problem: 'The Amazon SES sending quota for today is used up.',
      advice: 'Try again tomorrow, or ask AWS for a higher quota.',
      retryable: false,
      ...server,
    };
  }
  if (name === 'MessageRejected') {
    return {
      field: 'message',
      settings: ctx.sources.transport,
      kind: 'message',
      problem: 'Amazon SES refused the message.',
      advice: 'Its reply below says why (often a virus or a header it does not accept).',
      retryable: false,
      ...server,
    };
  }
  return unknown(e, ctx, server);
}

function unknown(
  e: SmtpLikeError,
  ctx: DiagnosisContext,
  server: Pick<Diagnosis, 'serverCode' | 'serverReply'>,
): Diagnosis {
  // An SMTP client's own words are safe to show; anything else (AWS SDK text) is redacted.
  const said = ctx.transport.method === 'ses' ? redactAws(e.message ?? '') : (e.message ?? '');
  return {
    field: 'transport.method',
    settings: ctx.sources.transport,
    kind: 'unknown',
    problem: `Sending failed: ${said || 'no reason given'}.`,
    advice: 'Try again; if it fails again, send a test email from the email settings to find the cause.',
    retryable: false,
    ...server,
  };
}

const TLS_VERSION_MISMATCH =
  /wrong version number|packet length too long|unknown protocol|record layer failure/i;
const CERTIFICATE = /certificate|self[- ]signed|altname|CERT_|unable to verify|issuer/i;

/** Diagnoses an error nodemailer's SMTP client raised, probing the port when TLS is in doubt. */
async function diagnoseSmtp(e: SmtpLikeError, ctx: DiagnosisContext): Promise<Diagnosis> {
  const t = ctx.transport as Exclude<ResolvedTransport, { method: 'ses' }>;
  const gmail = t.method === 'gmail';
  const where = `${t.server}:${t.port}`;
  const message = `${e.message ?? ''} ${e.reason ?? ''}`;
  const settings = ctx.sources.transport;
  const server = reply(e);
  const code = e.responseCode;

  if (e.code === 'EPRIVATEHOST') {
    return {
      field: 'transport.server',
      settings,
      kind: 'connect',
      problem: e.message ?? `The server ${t.server} points to an address mail may not be sent through.`,
      advice:
        "Use your email provider's public SMTP server name (e.g. smtp.example.com); internal and private addresses are not allowed.",
      retryable: false,
    };
  }
  if (e.code === 'EPROTOCOL') {
    return {
      field: 'transport.port',
      settings,
      kind: 'connect',
      problem: `Whatever answers on ${where} is not an SMTP server.`,
      advice: `Check the server name and port. ${PORT_HINT}`,
      retryable: false,
    };
  }
  if (e.code === 'EDNS' || /ENOTFOUND|EAI_AGAIN/.test(message)) {
    const temporary = /EAI_AGAIN/.test(message);
    return {
      field: 'transport.server',
      settings,
      kind: 'dns',
      problem: temporary
        ? `The server name ${t.server} could not be looked up just now (DNS did not answer).`
        : `There is no server called ${t.server}: the name does not exist.`,
      advice: temporary
        ? 'Try again in a minute; if it persists, check the server name.'
        : 'Check the SMTP server name for typos; your email provider lists it (e.g. smtp.example.com).',
      retryable: temporary,
      serverReply: e.message,
    };
  }
  if (/ECONNREFUSED/.test(message)) {
    return {
      field: 'transport.port',
      settings,
      kind: 'connect',
      problem: `Nothing accepted a connection on ${where}: the server is there, but not listening on port ${t.port}.`,
      advice: `Check the port and the server name with your email provider. ${PORT_HINT}`,
      retryable: false,
      serverReply: e.message,
    };
  }
  if (/EHOSTUNREACH|ENETUNREACH/.test(message)) {
    return {
      field: 'transport.server',
      settings,
      kind: 'connect',
      problem: `The server ${t.server} cannot be reached from here.`,
      advice: 'Check the server name; if it is right, its network or a firewall is blocking the way.',
      retryable: true,
      serverReply: e.message,
    };
  }
  if (e.code === 'ESOCKET' && TLS_VERSION_MISMATCH.test(message) && t.security === 'ssl') {
    const probe = await ctx.probe?.(t.server, t.port);
    const advice =
      probe?.plainGreeting && !probe.offersStartTls
        ? `This port talks unencrypted and offers no STARTTLS: use port 465 with SSL if the server has it, or set security to "none" only on a trusted network.`
        : `Set security to STARTTLS for port ${t.port} (usual on 587), or keep SSL and use port 465.`;
    return {
      field: 'transport.security',
      settings,
      kind: 'tls',
      problem: `SSL is set, but the server on port ${t.port} does not start with SSL: it greets in plain text first (STARTTLS style).`,
      advice,
      retryable: false,
      serverReply: e.message?.trim(),
    };
  }
  if (e.command === 'CONN' && /Greeting never received/i.test(message) && t.security !== 'ssl') {
    const probe = await ctx.probe?.(t.server, t.port);
    if (probe?.implicitTls) {
      return {
        field: 'transport.security',
        settings,
        kind: 'tls',
        problem: `${t.security === 'starttls' ? 'STARTTLS' : 'No encryption'} is set, but the server on port ${t.port} expects SSL from the first byte (SSL on connect) and never greets in plain text.`,
        advice: `Set security to SSL for port ${t.port} (usual on 465), or use port 587 with STARTTLS.`,
        retryable: false,
        serverReply: e.message,
      };
    }
    return {
      field: 'transport.port',
      settings,
      kind: 'timeout',
      problem: `The server on ${where} accepted the connection but never greeted.`,
      advice: `Check that ${where} is an SMTP server. ${PORT_HINT}`,
      retryable: true,
      serverReply: e.message,
    };
  }
  if (e.code === 'ETIMEDOUT') {
    return {
      field: 'transport.port',
      settings,
      kind: 'timeout',
      problem: `No answer from ${where} in time.`,
      advice: `Check the server name and port; firewalls often silently drop ports 25, 465 and 587. ${PORT_HINT}`,
      retryable: true,
      serverReply: e.message,
    };
  }
  if ((e.code === 'ESOCKET' || e.code === 'ETLS') && CERTIFICATE.test(message)) {
    return {
      field: 'transport.server',
      settings,
      kind: 'certificate',
      problem: `The server's TLS certificate is not valid for ${t.server}: ${e.message}`,
      advice:
        'Use the server name exactly as your provider gives it (the one on its certificate), not an alias ' +
        'or IP address. A server with a self-signed certificate cannot be used.',
      retryable: false,
    };
  }
  if (e.code === 'ETLS' || (e.code === 'EAUTH' && (code === 538 || /STARTTLS/i.test(e.response ?? '')))) {
    const notOffered = e.command === 'STARTTLS' || /STARTTLS/i.test(message);
    if (e.code === 'EAUTH') {
      return {
        field: 'transport.security',
        settings,
        kind: 'tls',
        problem: 'The server will not take a logon over an unencrypted connection.',
        advice: `Set security to STARTTLS (usual on port 587) or SSL (port 465). ${PORT_HINT}`,
        retryable: false,
        ...server,
      };
    }
    return {
      field: 'transport.security',
      settings,
      kind: 'tls',
      problem: notOffered
        ? `STARTTLS is set, but the server on port ${t.port} does not offer it.`
        : `The encrypted connection to ${where} could not be set up.`,
      advice: `Use the port your provider gives for encrypted mail (465 with SSL, or 587 with STARTTLS); choose "none" only on a trusted network. ${PORT_HINT}`,
      retryable: false,
      ...server,
    };
  }
  if (e.code === 'EAUTH' || e.code === 'ENOAUTH') {
    const temporary = typeof code === 'number' && code >= 400 && code < 500;
    if (gmail) {
      const appPassword = code === 534 || /application-specific|app password|5\.7\.9/i.test(e.response ?? '');
      return {
        field: 'transport.password',
        settings,
        kind: 'auth',
        problem: appPassword
          ? 'Gmail refused the password: it only accepts an app password here.'
          : `Gmail did not accept ${t.logonName ?? 'the address'} with the saved password.`,
        advice: `${GMAIL_APP_PASSWORD_ADVICE} The email address must be the Gmail address itself.`,
        retryable: temporary,
        ...server,
      };
    }
    return {
      field: 'transport.password',
      settings,
      kind: 'auth',
      problem: temporary
        ? 'The server could not check the logon just now.'
        : `The server refused to log on as "${t.logonName ?? ''}" with the saved password.`,
      advice: temporary
        ? 'Try again in a few minutes.'
        : 'Check the logon name (often the full email address) and enter the password again; some providers ' +
          'want an app password instead of the mailbox password.',
      retryable: temporary,
      ...server,
    };
  }
  if (e.code === 'EENVELOPE' && e.command === 'MAIL FROM') {
    if (code === 530 || /auth(entication)? required/i.test(e.response ?? '')) {
      return {
        field: 'transport.logonName',
        settings,
        kind: 'auth',
        problem: 'The server only sends for users who log on, and no logon name and password are set.',
        advice: 'Enter the logon name (often the full email address) and the password of the mailbox.',
        retryable: false,
        ...server,
      };
    }
    if (typeof code === 'number' && code >= 400 && code < 500) return temporary(ctx, server);
    return {
      field: 'emailAddress',
      settings: ctx.sources.emailAddress,
      kind: 'sender',
      problem: `The server refused to send from ${ctx.from}.`,
      advice:
        'Use an address this mail account may send from: usually the logon address itself or an alias the ' +
        'provider has confirmed.',
      retryable: false,
      ...server,
    };
  }
  if (e.code === 'EENVELOPE') {
    if (typeof code === 'number' && code >= 400 && code < 500) return temporary(ctx, server);
    return {
      field: 'to',
      settings: ctx.sources.emailAddress,
      kind: 'recipient',
      problem: 'The server refused the recipient address.',
      advice: 'Check the recipient address for typos; the reply below says why it was refused.',
      retryable: false,
      ...server,
    };
  }
  if (e.code === 'EMESSAGE' || e.command === 'DATA') {
    if (typeof code === 'number' && code >= 400 && code < 500) return temporary(ctx, server);
    return {
      field: 'message',
      settings,
      kind: 'message',
      problem: 'The server received the message and refused it.',
      advice:
        'Its reply below says why (often size, content or a spam rule); change the message or ask the provider.',
      retryable: false,
      ...server,
    };
  }
  if (typeof code === 'number' && code >= 400 && code < 500) return temporary(ctx, server);
  if (e.code === 'ECONNECTION' || e.code === 'ESOCKET') {
    return {
      field: 'transport.server',
      settings,
      kind: 'connect',
      problem: `The connection to ${where} broke off: ${e.message}`,
      advice: `Try again; if it keeps failing, check the server, port and security settings. ${PORT_HINT}`,
      retryable: true,
      ...server,
    };
  }
  return unknown(e, ctx, server);
}

function temporary(ctx: DiagnosisContext, server: Pick<Diagnosis, 'serverCode' | 'serverReply'>): Diagnosis {
  return {
    field: 'transport.server',
    settings: ctx.sources.transport,
    kind: 'temporary',
    problem: 'The server is refusing mail for now (a temporary reply) and still did after several tries.',
    advice: 'Try again later; the reply below says why (often greylisting or a busy server).',
    retryable: true,
    ...server,
  };
}

export async function diagnose(error: unknown, ctx: DiagnosisContext): Promise<Diagnosis> {
  if (error instanceof GraphError) return diagnoseGraphSend(error, ctx);
  const e = asError(error);
  if (ctx.transport.method === 'ses') return diagnoseSes(e, ctx);
  return diagnoseSmtp(e, ctx);
}

const MAIL_SEND_PERMISSION =
  'In Microsoft Entra admin center → App registrations → the app → API permissions, add Microsoft Graph "Mail.Send" (Application for app credentials, Delegated for a sign-in) and grant admin consent.';

/** A Graph sendMail (or its token service) refusal, naming the transport field to fix. */
function diagnoseGraphSend(error: GraphError, ctx: DiagnosisContext): Diagnosis {
  const mailbox = ctx.transport.method === 'graph' ? ctx.transport.mailbox : ctx.from;
  const server = {
    ...(error.details.status ? { serverCode: error.details.status } : {}),
    ...(error.details.code || error.details.serverReply
      ? { serverReply: [error.details.code, error.details.serverReply].filter(Boolean).join(': ') }
      : {}),
  };
  const d = (
    field: string,
    kind: DiagnosisKind,
    problem: string,
    advice: string,
    retryable = false,
  ): Diagnosis => ({
    field,
    settings: ctx.sources.transport,
    kind,
    problem,
    advice,
    retryable,
    ...server,
  });
  switch (error.kind) {
    case 'tenant':
      return d(
        'transport.tenantId',
        'auth',
        'Microsoft does not know this tenant.',
        'Check the tenant id: the Directory (tenant) ID of the app registration, or the primary domain of the Microsoft 365 organisation.',
      );
    case 'client':
      return d(
        'transport.clientId',
        'auth',
        'The tenant has no app with this client id.',
        'Check the client id: the Application (client) ID of the app registration, in the same tenant.',
      );
    case 'secret':
      return d(
        'transport.password',
        'auth',
        'Microsoft refused the client secret (wrong, or expired).',
        'Create a new client secret under the app registration → Certificates & secrets and save its Value (not its ID) as the password.',
      );
    case 'consent':
      return d(
        'transport.clientId',
        'consent',
        'The app has not been granted consent in this tenant.',
        `An administrator of the tenant must grant consent. ${MAIL_SEND_PERMISSION}`,
      );
    case 'access-denied':
      return d(
        'transport.clientId',
        'permission',
        `The app may not send as ${mailbox} (ErrorAccessDenied).`,
        `${MAIL_SEND_PERMISSION} If an application access policy limits the app to some mailboxes, add this one.`,
      );
    case 'mailbox-not-found':
      return d(
        'emailAddress',
        'sender',
        `Microsoft 365 has no mailbox ${mailbox} in this tenant.`,
        'Send from the primary address of an Exchange Online mailbox (a licensed user or a shared mailbox) in this tenant.',
      );
    case 'token-revoked':
      return d(
        'transport.authentication',
        'sign-in',
        'Microsoft refused to renew the sign-in (revoked, expired, or the password changed).',
        'Sign in with Microsoft again (GET /oauth/microsoft/start?settings=…).',
      );
    case 'auth':
      return d(
        'transport.authentication',
        'auth',
        'Microsoft Graph refused the access token.',
        'Check the app credentials, or sign in again; if this repeats, create a new client secret.',
      );
    case 'throttled':
      // 429 comes before Exchange takes the message; a 503 may come after it did.
      if (error.details.status !== 503)
        return d(
          'transport.method',
          'throttled',
          'Microsoft Graph is throttling this mailbox.',
          'Nothing was sent; try again in a few minutes.',
          true,
        );
      return mayHaveGone(d, error.message);
    case 'network':
      return d(
        'transport.method',
        'connect',
        'Microsoft Graph could not be reached.',
        'Nothing was sent; try again. If this repeats, check the network of the deployment.',
        true,
      );
    default:
      if (error.details.code === 'BccNotSupported')
        return d(
          'bcc',
          'message',
          error.message,
          'Put those recipients in To or Cc, or send them a separate email.',
        );
      // A 5xx to sendMail may come after Exchange took the message: never "try again" blindly.
      if (error.kind === 'server') return mayHaveGone(d, error.message);
      return d(
        'transport.method',
        'unknown',
        `Microsoft Graph failed: ${error.message}`,
        'Try again; if it fails again, send a test email from the email settings.',
      );
  }
}

/** Graph answered a send with a server error: the message may have been sent, so it is not retried. */
function mayHaveGone(
  d: (field: string, kind: DiagnosisKind, problem: string, advice: string) => Diagnosis,
  message: string,
): Diagnosis {
  return d(
    'transport.method',
    'unknown',
    `Microsoft Graph failed after the message was handed over (${message}); it may have been sent.`,
    "Check the mailbox's Sent Items before sending it again.",
  );
}

/** The OAuth2 sign-in of the transport cannot give a token (never signed in, refused, unreachable). */
export function signInProblem(
  ctx: DiagnosisContext,
  error: { message: string; status?: number },
  startQuery: string,
): Diagnosis {
  const provider =
    ctx.transport.method === 'gmail'
      ? 'google'
      : ctx.transport.method === 'ses'
        ? 'google'
        : (ctx.transport.signIn?.provider ?? 'microsoft');
  const upstream = error.status !== undefined && error.status >= 500;
  return {
    field: 'transport.authentication',
    settings: ctx.sources.transport,
    kind: upstream ? 'temporary' : 'sign-in',
    problem: error.message,
    advice: upstream
      ? 'Nothing was sent; try again in a few minutes.'
      : `An administrator signs these settings in again: GET /oauth/${provider}/start?${startQuery}.`,
    retryable: upstream,
  };
}

/** The server refused a freshly renewed OAuth2 token (XOAUTH2): the grant lacks the mail scope. */
export function tokenRefused(ctx: DiagnosisContext, serverReply: string | undefined): Diagnosis {
  return {
    field: 'transport.authentication',
    settings: ctx.sources.transport,
    kind: 'auth',
    problem: 'The server refused the OAuth2 access token (XOAUTH2), even after renewing it.',
    advice:
      'Sign in again and accept the mail permission (Google: https://mail.google.com/; Microsoft: SMTP.Send, with SMTP AUTH allowed for the mailbox); check that logonName is the account that signed in.',
    retryable: false,
    ...(serverReply && /^[2-5]\d\d[ -]/.test(serverReply) ? { serverReply } : {}),
  };
}

/** No password is saved for a transport that needs one; found before contacting any server. */
export function passwordMissing(ctx: DiagnosisContext): Diagnosis {
  const gmail = ctx.transport.method === 'gmail';
  return {
    field: 'transport.password',
    settings: ctx.sources.transport,
    kind: 'password-missing',
    problem: gmail ? 'No Gmail app password is saved.' : 'No password is saved for the logon name.',
    advice: gmail ? GMAIL_APP_PASSWORD_ADVICE : 'Enter the password of the mailbox in the email settings.',
    retryable: false,
  };
}

/** The saved password could not be read from the secret store. */
export function secretUnreadable(ctx: DiagnosisContext): Diagnosis {
  return {
    field: 'transport.password',
    settings: ctx.sources.transport,
    kind: 'secret',
    problem: 'The saved password could not be read.',
    advice: 'Enter the password again in the email settings and save; then send again.',
    retryable: true,
  };
}
