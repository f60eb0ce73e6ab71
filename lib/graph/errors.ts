/**
 * What can go wrong talking to Microsoft Graph and its token endpoint, and which box field to fix,
 * in words a studio owner can act on. Shared by the connection test and the poll's failure record.
 * Neither error ever carries a token or a client secret: only the service's error code and text.
 */

export type GraphErrorKind =
  | 'tenant'
  | 'client'
  | 'secret'
  | 'consent'
  | 'token-revoked'
  | 'access-denied'
  | 'mailbox-not-found'
  | 'folder-not-found'
  | 'auth'
  | 'throttled'
  | 'network'
  | 'server'
  | 'protocol';

/** A Graph (or token endpoint) request that failed; `code` is the service's error code. */
export class GraphError extends Error {
  override readonly name = 'GraphError';
  constructor(
    readonly kind: GraphErrorKind,
    message: string,
    readonly details: { status?: number; code?: string; serverReply?: string } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface GraphDiagnosis {
  field: string;
  /** Stable name (alert de-duplication, the test's `kind`). */
  kind: string;
  problem: string;
  advice: string;
  serverReply?: string;
}

const PERMISSION =
  'In Microsoft Entra admin center → App registrations → the app → API permissions, add Microsoft Graph "Mail.ReadWrite" (Application) and grant admin consent.';

/** The field to fix and what to do, for a failed Graph request. */
export function diagnoseGraph(error: GraphError, mailbox: string): GraphDiagnosis {
  const reply = error.details.serverReply ? { serverReply: error.details.serverReply } : {};
  const d = (field: string, kind: string, problem: string, advice: string): GraphDiagnosis => ({
    field,
    kind,
    problem,
    advice,
    ...reply,
  });
  switch (error.kind) {
    case 'tenant':
      return d(
        'connection.tenantId',
        'tenant-unknown',
        'Microsoft does not know this tenant.',
        'Check the tenant id: the Directory (tenant) ID of the app registration, or the primary domain of the Microsoft 365 organisation.',
      );
    case 'client':
      return d(
        'connection.clientId',
        'app-unknown',
        'The tenant has no app with this client id.',
        'Check the client id: the Application (client) ID of the app registration, in the same tenant.',
      );
    case 'secret':
      return d(
        'connection.password',
        'secret-rejected',
        'Microsoft refused the client secret (wrong, or expired).',
        'Create a new client secret under the app registration → Certificates & secrets and save its Value (not its ID) as the password.',
      );
    case 'consent':
      return d(
        'connection.clientId',
        'consent-missing',
        'The app has not been granted consent in this tenant.',
        `An administrator of the tenant must grant consent. ${PERMISSION}`,
      );
    case 'token-revoked':
      return d(
        'connection.authentication',
        'sign-in-revoked',
        'Microsoft refused to renew the sign-in (revoked, expired, or the password changed).',
        'Sign the box in with Microsoft again.',
      );
    case 'access-denied':
      return d(
        'connection.clientId',
        'mailbox-access-denied',
        `The app may not read the mailbox ${mailbox}.`,
        `${PERMISSION} If an application access policy limits the app to some mailboxes, add this one.`,
      );
    case 'mailbox-not-found':
      return d(
        'connection.emailAddress',
        'mailbox-not-found',
        `Microsoft 365 has no mailbox ${mailbox} in this tenant.`,
        'Check the email address: the primary address of an Exchange Online mailbox (a licensed user or a shared mailbox).',
      );
    case 'folder-not-found':
      return d(
        'connection.moveToFolder',
        'folder-not-found',
        error.message,
        'Check the folder name (as Outlook shows it, at the top level or under Inbox), or create the folder.',
      );
    case 'auth':
      return d(
        'connection.password',
        'login-rejected',
        'Microsoft Graph refused the access token.',
        'Check the app credentials (or sign in again); if this repeats, create a new client secret.',
      );
    case 'throttled':
      return d(
        'connection.emailAddress',
        'throttled',
        'Microsoft Graph is throttling requests for this mailbox.',
        'Nothing was lost; the next run goes on where this one stopped. Polling less often helps if this repeats.',
      );
    case 'network':
      return d(
        'connection.server',
        'server-unreachable',
        'Microsoft Graph could not be reached.',
        'Nothing was lost; the next run tries again. If this repeats, check the network of the deployment.',
      );
    default:
      return d(
        'connection.server',
        'server-refused',
        `Microsoft Graph failed: ${error.message}`,
        'Nothing was lost; the next run tries again. If this repeats, report it with the run id.',
      );
  }
}

/**
 * The kind of a token endpoint refusal, from its OAuth error and Microsoft's AADSTS code
 * (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
 */
export function tokenErrorKind(error: string, description: string): GraphErrorKind {
  const aadsts = /AADSTS(\d+)/.exec(description)?.[1];
  if (aadsts === '65001') return 'consent';
  // 90002: tenant not found; 900023: not a valid tenant identifier; 90072/500011 are other mailbox tenants.
  if (aadsts === '90002' || aadsts === '900023' || aadsts === '90013') return 'tenant';
  if (aadsts === '700016') return 'client';
  // 7000215: invalid secret; 7000222: expired secret.
  if (aadsts === '7000215' || aadsts === '7000222' || error === 'invalid_client') return 'secret';
  if (error === 'invalid_grant') return 'token-revoked';
  if (error === 'unauthorized_client') return 'client';
  if (error === 'invalid_request' && /tenant/i.test(description)) return 'tenant';
  return 'auth';
}

/** The kind of a Graph API refusal, from its status and `error.code`. */
export function apiErrorKind(status: number, code: string): GraphErrorKind {
  if (status === 401) return 'auth';
  // ErrorAccessDenied: no Mail.ReadWrite application permission, or an access policy excludes the mailbox.
  if (status === 403) return 'access-denied';
  if (
    status === 404 &&
    [
      'ErrorInvalidUser',
      'MailboxNotEnabledForRESTAPI',
      'ResourceNotFound',
      'ErrorNonExistentMailbox',
      'Request_ResourceNotFound',
    ].includes(code)
  )
    return 'mailbox-not-found';
  if (status === 429 || status === 503) return 'throttled';
  if (status >= 500) return 'server';
  return 'protocol';
}
