/**
 * Shared set-up for the send tests: the send function's handler over test dependencies, and
 * settings, users, clients and secrets seeded straight through the repositories.
 */

import { SESv2Client } from '@aws-sdk/client-sesv2';
import { type SendHandlerOptions, sendFunction } from '#functions/send/app';
import { sendRoutes } from '#functions/send/routes';
import { sesTransport } from '#lib/adapters/mail';
import type { Deps } from '#lib/app/deps';
import type { CompanyEmailSettings, TransportRecord, UserEmailSettings } from '#lib/domain/model';
import { senderIdentityId } from '#lib/settings/sender-identities';
import { apiClient, type TestDeps, testDeps } from '#test/support/api';
import type { SmtpHarness } from '#test/support/smtp';

export const SID = 'studio-1';
/** Distinctive, so a scan of responses and logs cannot miss it. */
export const PASSWORD = 'Zebra-Quokka-7731!';

export type Call = ReturnType<typeof apiClient>;

/** No real waiting between retries; the delays asked for are kept for assertions. */
export function recordingSleep() {
  const delays: number[] = [];
  return { delays, sleep: async (ms: number) => void delays.push(ms) };
}

export function sendApi(d: Deps, options: SendHandlerOptions = {}): Call {
  const handler = sendFunction(d, options);
  return apiClient(handler, sendRoutes, 'send');
}

/** Policy that trusts the harness certificate (as SMTP_TLS_CA_FILE would) with short timeouts. */
export function trusting(smtp: Pick<SmtpHarness, 'ca'>, connectionTimeoutMs = 1_500) {
  return { rejectUnauthorized: true, ca: [smtp.ca], connectionTimeoutMs };
}

export function sesClient(endpoint: string, maxAttempts?: number) {
  return new SESv2Client({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    ...(maxAttempts ? { maxAttempts } : {}),
  });
}

/** Test dependencies whose `ses()` talks to `endpoint` (the local SES or a stub). */
export function depsWithSes(endpoint: string, maxAttempts?: number): Promise<TestDeps> {
  const transport = sesTransport(sesClient(endpoint, maxAttempts));
  return testDeps({ ses: () => transport });
}

let secretCounter = 0;

export async function smtpTransportRecord(
  d: Deps,
  smtp: Pick<SmtpHarness, 'host' | 'port'>,
  security: 'ssl' | 'starttls' | 'none',
  /** `null` for a server reached without logon. */
  logon: { logonName: string; password: string } | null = { logonName: 'alice', password: PASSWORD },
): Promise<TransportRecord> {
  const passwordRef = logon
    ? await d.secrets.create(`${SID}/smtp-${++secretCounter}-${Date.now()}`, logon.password)
    : undefined;
  return {
    method: 'smtp',
    server: smtp.host,
    port: smtp.port,
    security,
    logonName: logon?.logonName,
    passwordRef,
  };
}

/** A sender identity of `sid`, verified in the local twin (SES has no local identity API). */
export async function seedVerifiedIdentity(d: Deps, identity: string, sid = SID) {
  const id = senderIdentityId(identity);
  if (await d.repos.senderIdentities.get(sid, id)) return;
  await d.identities.create(identity);
  const status = await d.identities.recheck(identity);
  await d.repos.senderIdentities.createClaimed(sid, {
    id,
    identity,
    type: identity.includes('@') ? 'address' : 'domain',
    verified: true,
    arn: status?.arn ?? `arn:aws:ses:local:000000000000:identity/${identity}`,
  });
}

/** The company's settings; with SES the studio's domain is a verified sender identity too. */
export async function seedCompany(
  d: Deps,
  transport: TransportRecord,
  extra: Partial<CompanyEmailSettings> = {},
  sid = SID,
) {
  if (transport.method === 'ses') await seedVerifiedIdentity(d, 'lumen.test', sid);
  return d.repos.companyEmail.upsert(sid, 'company', {
    studioName: 'Lumen Photo Studio',
    displayName: 'Lumen Photo',
    emailAddress: 'hello@lumen.test',
    transport,
    timeZone: 'America/New_York',
    phone: '555-0100',
    website: 'https://lumen.test',
    ...extra,
  });
}

export async function seedUser(d: Deps, userId: string, settings?: Partial<UserEmailSettings>, sid = SID) {
  await d.repos.users.upsert(sid, userId, {
    id: userId,
    firstName: 'Maya',
    lastName: 'Ortiz',
    email: `${userId}@lumen.test`,
    title: 'Lead Photographer',
  });
  if (settings) await d.repos.userEmail.upsert(sid, userId, { userId, ...settings });
}
