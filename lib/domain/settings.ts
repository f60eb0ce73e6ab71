/**
 * Settings resolution: a user's email settings override the company's, field by field, and the
 * result says where each value came from. Pure; no AWS imports.
 */
import { ValidationError } from './errors.ts';
import type {
  CompanyEmailSettings,
  OAuthProvider,
  SmtpSecurity,
  TransportRecord,
  UserEmailSettings,
} from './model.ts';

export type Source = 'user' | 'company';
export interface Sourced<T> {
  value: T;
  source: Source;
}

/** Gmail is SMTP with the server, port and security filled in for the studio. */
export const GMAIL_SMTP = { server: 'smtp.gmail.com', port: 587, security: 'starttls' as SmtpSecurity };

/** Whose send settings a transport is: the studio's, or one user's own. */
export type TransportOwner = { kind: 'company' } | { kind: 'user'; userId: string };

/** An OAuth2 sign-in a transport logs on with: its grant is in the secret `grantRef`. */
export interface TransportSignIn {
  provider: OAuthProvider;
  grantRef?: string;
  owner: TransportOwner;
}

/**
 * A transport with every connection value spelled out (Gmail expanded), plus who owns its password.
 * A transport signing in with OAuth2 has no `passwordRef` (its secret is a grant, never a password)
 * but `signIn`; code that knows only passwords (bulk email) therefore never logs on with a grant.
 */
export type ResolvedTransport =
  | { method: 'ses' }
  | {
      method: 'smtp' | 'gmail';
      server: string;
      port: number;
      security: SmtpSecurity;
      logonName?: string;
      passwordRef?: string;
      signIn?: TransportSignIn;
    };

/** Microsoft Graph `sendMail` as `mailbox`, with app credentials or a sign-in with Microsoft. */
export interface GraphTransport {
  method: 'graph';
  mailbox: string;
  authentication: 'app' | 'oauth2';
  tenantId?: string;
  clientId?: string;
  /** The client secret (app credentials). */
  passwordRef?: string;
  signIn?: TransportSignIn;
}

/** Every way out single sends know (lib/send). */
export type SendingTransport = ResolvedTransport | GraphTransport;

interface Effective<T> {
  studioName: string;
  displayName: Sourced<string>;
  emailAddress: Sourced<string>;
  replyTo?: Sourced<string>;
  transport: Sourced<T>;
  signatureId?: Sourced<string>;
  timeZone: string;
}

export type EffectiveSettings = Effective<ResolvedTransport>;
export type SendingSettings = Effective<SendingTransport>;

export function expandTransport(
  t: TransportRecord,
  emailAddress: string,
  owner: TransportOwner = { kind: 'company' },
): SendingTransport {
  switch (t.method) {
    case 'ses':
      return { method: 'ses' };
    case 'gmail':
      return t.authentication === 'oauth2'
        ? {
            method: 'gmail',
            ...GMAIL_SMTP,
            logonName: emailAddress,
            signIn: { provider: 'google', grantRef: t.passwordRef, owner },
          }
        : { method: 'gmail', ...GMAIL_SMTP, logonName: emailAddress, passwordRef: t.passwordRef };
    case 'smtp':
      return {
        method: 'smtp',
        server: t.server,
        port: t.port,
        security: t.security,
        logonName: t.logonName,
        ...(t.authentication === 'oauth2'
          ? { signIn: { provider: t.provider ?? 'microsoft', grantRef: t.passwordRef, owner } }
          : { passwordRef: t.passwordRef }),
      };
    case 'graph':
      return {
        method: 'graph',
        mailbox: emailAddress,
        authentication: t.authentication,
        ...(t.authentication === 'oauth2'
          ? { signIn: { provider: 'microsoft', grantRef: t.passwordRef, owner } }
          : { tenantId: t.tenantId, clientId: t.clientId, passwordRef: t.passwordRef }),
      };
  }
}

function pick<T>(user: T | undefined, company: T | undefined): Sourced<T> | undefined {
  if (user !== undefined) return { value: user, source: 'user' };
  if (company !== undefined) return { value: company, source: 'company' };
  return undefined;
}

/**
 * Resolves what a user sends with. When the user has their own transport but no own address,
 * the company address is used; a Gmail transport always logs on as the address it sends from.
 */
export function resolveSending(company: CompanyEmailSettings, user?: UserEmailSettings): SendingSettings {
  const emailAddress = pick(user?.emailAddress, company.emailAddress) as Sourced<string>;
  const transportRecord = pick(user?.transport, company.transport) as Sourced<TransportRecord>;
  // The company's Gmail account logs on with the company address even when a user sends from their own.
  const logonAddress = transportRecord.source === 'user' ? emailAddress.value : company.emailAddress;
  const owner: TransportOwner =
    transportRecord.source === 'user' && user ? { kind: 'user', userId: user.userId } : { kind: 'company' };
  return {
    studioName: company.studioName,
    displayName: pick(user?.displayName, company.displayName) as Sourced<string>,
    emailAddress,
    replyTo: pick(user?.replyTo, company.replyTo),
    transport: {
      value: expandTransport(transportRecord.value, logonAddress, owner),
      source: transportRecord.source,
    },
    signatureId: pick(user?.defaultSignatureId, company.defaultSignatureId),
    timeZone: company.timeZone,
  };
}

/**
 * resolveSending for callers that send with passwords only (bulk email): a Graph transport or an
 * OAuth2 sign-in is refused with a 400 naming the field, rather than sent some other way.
 */
export function resolveEffective(company: CompanyEmailSettings, user?: UserEmailSettings): EffectiveSettings {
  const e = resolveSending(company, user);
  const t = e.transport.value;
  if (t.method === 'graph' || (t.method !== 'ses' && t.signIn))
    throw ValidationError.field(
      t.method === 'graph' ? 'transport.method' : 'transport.authentication',
      `Bulk email cannot send through ${t.method === 'graph' ? 'Microsoft Graph' : 'an OAuth2 sign-in'} yet; choose SES, or SMTP/Gmail with a password, for bulk sends.`,
    );
  return { ...e, transport: { value: t, source: e.transport.source } };
}
