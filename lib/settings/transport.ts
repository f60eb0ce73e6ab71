/**
 * Outgoing transports as the API sees them (with a write-only password) and as they are stored
 * (with a secret reference). Shared by company and user email settings.
 */
import type { TransportRecord } from '#lib/domain/model';
import { expandTransport } from '#lib/domain/settings';
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
  const switched = current !== undefined && current.method !== 'ses' && current.method !== input.method;
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

export function transportRecordFrom(input: TransportInput, passwordRef: string | undefined): TransportRecord {
  switch (input.method) {
    case 'ses':
      return { method: 'ses' };
    case 'gmail':
      return { method: 'gmail', passwordRef };
    case 'smtp':
      return {
        method: 'smtp',
        server: input.server,
        port: input.port,
        security: input.security,
        logonName: input.logonName || undefined,
        passwordRef: input.logonName ? passwordRef : undefined,
      };
  }
}

/** The transport without its secret reference; Gmail's fixed server settings are spelled out. */
export function transportView(t: TransportRecord, sendingAddress: string | undefined): TransportView {
  const expanded = expandTransport(t, sendingAddress ?? '');
  if (expanded.method === 'ses') return { method: 'ses' };
  const { passwordRef, ...connection } = expanded;
  return {
    ...connection,
    logonName: expanded.method === 'gmail' ? sendingAddress : connection.logonName,
    passwordSet: Boolean(passwordRef),
  } as TransportView;
}
