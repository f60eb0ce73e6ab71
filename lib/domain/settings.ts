/**
 * Settings resolution: a user's email settings override the company's, field by field, and the
 * result says where each value came from. Pure; no AWS imports.
 */
import type { CompanyEmailSettings, SmtpSecurity, TransportRecord, UserEmailSettings } from './model.ts';

export type Source = 'user' | 'company';
export interface Sourced<T> {
  value: T;
  source: Source;
}

/** Gmail is SMTP with the server, port and security filled in for the studio. */
export const GMAIL_SMTP = { server: 'smtp.gmail.com', port: 587, security: 'starttls' as SmtpSecurity };

/** A transport with every connection value spelled out (Gmail expanded), plus who owns its password. */
export type ResolvedTransport =
  | { method: 'ses' }
  | {
      method: 'smtp' | 'gmail';
      server: string;
      port: number;
      security: SmtpSecurity;
      logonName?: string;
      passwordRef?: string;
    };

export interface EffectiveSettings {
  studioName: string;
  displayName: Sourced<string>;
  emailAddress: Sourced<string>;
  replyTo?: Sourced<string>;
  transport: Sourced<ResolvedTransport>;
  signatureId?: Sourced<string>;
  timeZone: string;
}

export function expandTransport(t: TransportRecord, emailAddress: string): ResolvedTransport {
  switch (t.method) {
    case 'ses':
      return { method: 'ses' };
    case 'gmail':
      return { method: 'gmail', ...GMAIL_SMTP, logonName: emailAddress, passwordRef: t.passwordRef };
    case 'smtp':
      return {
        method: 'smtp',
        server: t.server,
        port: t.port,
        security: t.security,
        logonName: t.logonName,
        passwordRef: t.passwordRef,
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
export function resolveEffective(company: CompanyEmailSettings, user?: UserEmailSettings): EffectiveSettings {
  const emailAddress = pick(user?.emailAddress, company.emailAddress) as Sourced<string>;
  const transportRecord = pick(user?.transport, company.transport) as Sourced<TransportRecord>;
  // The company's Gmail account logs on with the company address even when a user sends from their own.
  const logonAddress = transportRecord.source === 'user' ? emailAddress.value : company.emailAddress;
  return {
    studioName: company.studioName,
    displayName: pick(user?.displayName, company.displayName) as Sourced<string>,
    emailAddress,
    replyTo: pick(user?.replyTo, company.replyTo),
    transport: {
      value: expandTransport(transportRecord.value, logonAddress),
      source: transportRecord.source,
    },
    signatureId: pick(user?.defaultSignatureId, company.defaultSignatureId),
    timeZone: company.timeZone,
  };
}
