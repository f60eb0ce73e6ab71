/**
 * Outgoing transports as the API sees them (with a write-only password) and as they are stored
 * (with a secret reference). Shared by company and user email settings.
 */
import type { TransportRecord } from '#lib/domain/model';
import { expandTransport } from '#lib/domain/settings';
import { PENDING_GRANT } from '#lib/oauth/grant';
import { requirePasswordOnRedirect } from './redirect.ts';
import type { TransportInput, TransportView } from './schemas.ts';
import type { Issues } from './validation.ts';

/** The secret reference a stored transport holds, if any. */
export function passwordRefOf(t: TransportRecord | undefined): string | undefined {
  return t && t.method !== 'ses' ? t.passwordRef : undefined;
}

/**
 * Whether the transport being saved keeps a password, checking that one will exist: Gmail always
 * needs its app password; SMTP needs one exactly when it logs on. A left-out password keeps the
 * stored one, but not across a switch between Gmail and SMTP: that password was for the other
 * server, and would be sent to this one.
 */
export function transportWantsSecret(
  input: TransportInput,
  current: TransportRecord | undefined,
  issues: Issues,
  prefix: string,
  /** The sending address before and after: Gmail logs on as it. */
  addresses: { current?: string | undefined; next?: string | undefined } = {},
): boolean {
  if (input.method === 'graph' || (input.method !== 'ses' && input.authentication === 'oauth2'))
    return signInOrAppWantsSecret(input, current, issues, prefix);
  const switched =
    current !== undefined &&
    current.method !== 'ses' &&
    (current.method !== input.method || authenticationOf(current) !== 'password');
  let stored = Boolean(passwordRefOf(current)) && !switched;
  // The stored password stays with the server and logon it was saved for (lib/settings/redirect.ts).
  const logsOn = input.method === 'gmail' || (input.method === 'smtp' && Boolean(input.logonName));
  if (stored && current && logsOn && input.password === undefined) {
    const destination = (t: TransportRecord | TransportInput, address: string | undefined) =>
      t.method === 'smtp'
        ? { server: t.server, port: t.port, security: t.security, logonName: t.logonName || undefined }
        : { logonName: address };
    stored = requirePasswordOnRedirect(
      issues,
      `${prefix}.password`,
      false,
      destination(current, addresses.current),
      destination(input, addresses.next),
    );
    if (!stored) return true;
  }
  switch (input.method) {
    case 'ses':
      return false;
    case 'gmail':
      if (input.password === undefined && !stored)
        issues.add(
          `${prefix}.password`,
          switched
            ? 'is required when switching to Gmail: paste the app password Google generated (the stored password was for the SMTP server).'
            : 'is required for Gmail: paste the app password Google generated.',
        );
      return true;
    case 'smtp':
      if (input.password !== undefined && !input.logonName)
        issues.add(
          `${prefix}.logonName`,
          'is required with a password: the SMTP log-on name, often the email address.',
        );
      if (input.logonName && input.password === undefined && !stored)
        issues.add(
          `${prefix}.password`,
          switched
            ? 'is required when switching from Gmail to SMTP: the stored password was the Gmail app password.'
            : 'is required when logonName is set: the SMTP server needs both to log on.',
        );
      return Boolean(input.logonName);
  }
}

/** password, oauth2, or (Graph) app: how a stored or submitted transport logs on. */
function authenticationOf(t: TransportRecord | TransportInput): string {
  if (t.method === 'ses') return 'none';
  if (t.method === 'graph') return t.authentication ?? 'app';
  return t.authentication ?? 'password';
}

/** Graph, and SMTP or Gmail signing in with OAuth2: checks what each needs; the secret is kept. */
function signInOrAppWantsSecret(
  input: Exclude<TransportInput, { method: 'ses' }>,
  current: TransportRecord | undefined,
  issues: Issues,
  prefix: string,
): boolean {
  const mode = authenticationOf(input);
  if (mode === 'oauth2') {
    if (input.password !== undefined)
      issues.add(
        `${prefix}.password`,
        'is not used with authentication "oauth2": leave it out and sign in (GET /oauth/{provider}/start?settings=…) after saving.',
      );
    if (input.method === 'smtp') {
      if (!input.logonName)
        issues.add(
          `${prefix}.logonName`,
          'is required with OAuth2: the account XOAUTH2 logs on as, often the email address.',
        );
      if (!input.provider)
        issues.add(
          `${prefix}.provider`,
          'is required with OAuth2: "google" or "microsoft", who signs the account in.',
        );
    }
    return true;
  }
  // Graph with app credentials.
  if (input.method !== 'graph') return true;
  if (!input.tenantId)
    issues.add(
      `${prefix}.tenantId`,
      'is required for Graph app credentials: the Directory (tenant) ID of the app registration.',
    );
  if (!input.clientId)
    issues.add(`${prefix}.clientId`, 'is required for Graph app credentials: the Application (client) ID.');
  // The stored secret stays with the app it was saved for: another tenant or app needs its own.
  const keeps =
    current?.method === 'graph' &&
    current.authentication === 'app' &&
    Boolean(current.passwordRef) &&
    current.tenantId === input.tenantId &&
    current.clientId === input.clientId;
  if (input.password === undefined && !keeps)
    issues.add(
      `${prefix}.password`,
      current?.method === 'graph' && current.authentication === 'app'
        ? 'is required when the tenant or client id changes: the client secret of that app.'
        : 'is required for Graph app credentials: the client secret (its Value, not its ID).',
    );
  return true;
}

/**
 * Whether a transport saved again keeps its OAuth2 sign-in: the same way out, provider and
 * account. Anything else starts with an empty grant, so tokens never go to another account.
 */
function keepsSignIn(
  input: TransportInput,
  current: TransportRecord | undefined,
  addresses: { current?: string | undefined; next?: string | undefined },
): boolean {
  if (!current || current.method !== input.method || authenticationOf(input) !== 'oauth2') return false;
  if (current.method === 'ses' || authenticationOf(current) !== 'oauth2' || !current.passwordRef)
    return false;
  if (input.method === 'smtp' && current.method === 'smtp')
    return (
      current.provider === input.provider &&
      current.server === input.server &&
      current.port === input.port &&
      current.logonName === input.logonName
    );
  // Gmail and Graph sign in as the sending address.
  return addresses.current === addresses.next;
}

/**
 * The value to write to the transport's secret: a new password or client secret, an empty
 * grant when an OAuth2 sign-in starts (or must start again), or nothing (keep the stored one).
 */
export function transportSecretValue(
  input: TransportInput,
  current: TransportRecord | undefined,
  addresses: { current?: string | undefined; next?: string | undefined } = {},
): string | undefined {
  if (input.method === 'ses') return undefined;
  if (authenticationOf(input) === 'oauth2')
    return keepsSignIn(input, current, addresses) ? undefined : PENDING_GRANT;
  return input.password;
}

export function transportRecordFrom(
  input: TransportInput,
  passwordRef: string | undefined,
  current?: TransportRecord,
  addresses: { current?: string | undefined; next?: string | undefined } = {},
): TransportRecord {
  // The sign-in facts are the server's, kept while the sign-in is.
  const oauth =
    current && current.method !== 'ses' && keepsSignIn(input, current, addresses) ? current.oauth : undefined;
  switch (input.method) {
    case 'ses':
      return { method: 'ses' };
    case 'gmail':
      return input.authentication === 'oauth2'
        ? { method: 'gmail', passwordRef, authentication: 'oauth2', ...(oauth ? { oauth } : {}) }
        : { method: 'gmail', passwordRef };
    case 'smtp':
      if (input.authentication === 'oauth2')
        return {
          method: 'smtp',
          server: input.server,
          port: input.port,
          security: input.security,
          logonName: input.logonName || undefined,
          passwordRef,
          authentication: 'oauth2',
          provider: input.provider,
          ...(oauth ? { oauth } : {}),
        };
      return {
        method: 'smtp',
        server: input.server,
        port: input.port,
        security: input.security,
        logonName: input.logonName || undefined,
        passwordRef: input.logonName ? passwordRef : undefined,
      };
    case 'graph':
      return input.authentication === 'oauth2'
        ? { method: 'graph', authentication: 'oauth2', passwordRef, ...(oauth ? { oauth } : {}) }
        : {
            method: 'graph',
            authentication: 'app',
            tenantId: input.tenantId,
            clientId: input.clientId,
            passwordRef,
          };
  }
}

/** The transport without its secret reference; Gmail's fixed server settings are spelled out. */
export function transportView(t: TransportRecord, sendingAddress: string | undefined): TransportView {
  const expanded = expandTransport(t, sendingAddress ?? '');
  if (expanded.method === 'ses' || t.method === 'ses') return { method: 'ses' };
  const oauth = t.oauth ? { oauth: t.oauth } : {};
  if (expanded.method === 'graph')
    return {
      method: 'graph',
      authentication: expanded.authentication,
      mailbox: expanded.mailbox,
      ...(expanded.tenantId ? { tenantId: expanded.tenantId } : {}),
      ...(expanded.clientId ? { clientId: expanded.clientId } : {}),
      // For a sign-in: whether it has happened (the secret holds only an empty grant before).
      passwordSet: expanded.authentication === 'oauth2' ? Boolean(t.oauth) : Boolean(expanded.passwordRef),
      ...oauth,
    };
  const { passwordRef, signIn, ...connection } = expanded;
  return {
    ...connection,
    logonName: expanded.method === 'gmail' ? sendingAddress : connection.logonName,
    passwordSet: signIn ? Boolean(t.oauth) : Boolean(passwordRef),
    ...(signIn ? { authentication: 'oauth2' as const } : {}),
    ...(expanded.method === 'smtp' && signIn ? { provider: signIn.provider } : {}),
    ...oauth,
  } as TransportView;
}
