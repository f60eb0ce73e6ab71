/**
 * The send service behind functions/send: prepares an email (recipients, form letter, merge fields,
 * signature, threading) without side effects, delivers it (MIME, raw copy in the blob store,
 * transport with retries, record on the client), and sends test emails with a diagnosis.
 * Dependencies come in as arguments; no AWS SDK here.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { SmtpOptions } from '#lib/adapters/mail';
import {
  AttachmentMissingError,
  type AttachmentRef,
  checkSize,
  providerLimitBytes,
  readAttachments,
} from '#lib/bulk/attachments';
import { BlockList } from '#lib/bulk/blocks';
import { readSettings } from '#lib/bulk/settings';
import type { Repositories } from '#lib/data/repositories';
import type { TxItem } from '#lib/data/table';
import { AppError, UpstreamError, ValidationError } from '#lib/domain/errors';
import { mergeValues } from '#lib/domain/merge-fields';
import type { Address, Client, Message } from '#lib/domain/model';
import {
  type SendingSettings as EffectiveSettings,
  type SendingTransport as ResolvedTransport,
  resolveSending as resolveEffective,
  type TransportOwner,
} from '#lib/domain/settings';
import type { GraphSendOptions } from '#lib/graph/send';
import type { AccessTokens } from '#lib/graph/tokens';
import type { BlobStore, EmailIdentities, MailTransport, RawMail, SendResult } from '#lib/ports/index';
import { composeMime, newMessageId, type OutgoingMessage } from './compose.ts';
import {
  type Diagnosis,
  type DiagnosisContext,
  diagnose,
  isTransient,
  passwordMissing,
  secretUnreadable,
  signInProblem,
  tokenRefused,
} from './diagnose.ts';
import { EmailNotSetUpError } from './errors.ts';
import { sesIdentityArn } from './identity.ts';
import type { Prober } from './probe.ts';
import { type ContentSource, type RenderedEmail, renderEmail, type SignatureSource } from './render.ts';
import { type RetryPolicy, withRetry } from './retry.ts';
import { isMsgId, type SendEmailInput } from './schemas.ts';
import {
  type CredentialCache,
  describeTransport,
  openTransport,
  SharedSmtpTransports,
  type TransportPolicy,
} from './transport.ts';

export interface SendServiceDeps {
  repos: Repositories;
  /** SES sender identities (lib/send/identity.ts checks the From address against them). */
  identities: EmailIdentities;
  blobs: BlobStore;
  ses: () => MailTransport;
  smtp: (options: SmtpOptions) => MailTransport;
  /** Microsoft Graph sendMail (lib/graph/send.ts), for method graph. */
  graph?: (options: GraphSendOptions) => MailTransport;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  now: () => Date;
}

export interface SendServiceOptions {
  policy: TransportPolicy;
  credentials: CredentialCache;
  retry: RetryPolicy;
  /** Looks at an SMTP port again when TLS is in doubt; leave out to skip. */
  probe?: Prober;
  /** Access tokens of send settings signed in with OAuth2 (lib/oauth/service.ts sendAccessToken). */
  signIn?: SendSignIn;
  /** The Microsoft token service for Graph app credentials (GRAPH_LOGIN_BASE). */
  graphLoginBase?: string;
}

export type SendSignIn = (
  studioId: string,
  owner: TransportOwner,
  options?: { renew?: boolean },
) => Promise<string>;

/** Graph sendMail takes 4 MB per request, and the MIME goes base64-encoded (a third more). */
const GRAPH_MIME_LIMIT = Math.floor((4 * 1024 * 1024 * 3) / 4) - 1024;

/** Everything about one email decided before anything leaves: safe to throw away (preview). */
/** What a caller writes with a sent message's record (see SendService.deliver). */
export interface Alongside {
  /** Writes for the record's own transaction, given the outcome as it will be answered. */
  writes(delivery: Delivery): TxItem[];
  /** Those writes landed with the record. */
  committed(): void;
  /** The transaction failed: the same facts, each written on its own (must not throw). */
  separately(delivery: Delivery): Promise<void>;
}

export interface PreparedEmail {
  studioId: string;
  userId: string;
  /** Id of the message record and of its raw copy. */
  id: string;
  threadId: string;
  clientId?: string;
  effective: EffectiveSettings;
  rendered: RenderedEmail;
  outgoing: OutgoingMessage;
  /** SES only: the studio's verified identity the From address is sent as. */
  identityArn?: string;
  /** Blob keys of the attachments, in order (for the message record). */
  attachmentKeys?: string[];
}

export type Delivery =
  | {
      ok: true;
      id: string;
      threadId: string;
      clientId?: string;
      messageId: string;
      /** The Message-ID the provider put in its place (SES), which replies will quote. */
      providerMessageId?: string;
      accepted: string[];
      rejected: string[];
      response?: string;
      attempts: number;
      /** False when the email left but the record could not be written (logged). */
      recorded: boolean;
    }
  | {
      ok: false;
      id: string;
      threadId: string;
      clientId?: string;
      messageId: string;
      diagnosis: Diagnosis;
      attempts: number;
      recorded: boolean;
    };

export type TestResult =
  | {
      ok: true;
      messageId: string;
      providerMessageId?: string;
      response?: string;
      from: string;
      to: string;
      transport: Record<string, string | number>;
      attempts: number;
    }
  | { ok: false; diagnosis: Diagnosis; from: string; to: string; transport: Record<string, string | number> };

type Transmitted =
  | { ok: true; result: SendResult; attempts: number }
  | { ok: false; diagnosis: Diagnosis; attempts: number };

const toAddress = (r: string | { address: string; name?: string }): Address =>
  typeof r === 'string'
    ? { address: r }
    : r.name
      ? { address: r.address, name: r.name }
      : { address: r.address };

const fullName = (c: Pick<Client, 'firstName' | 'lastName'>) =>
  [c.firstName, c.lastName].filter((p) => p.trim()).join(' ') || undefined;

const isAuthFailure = (error: unknown) => (error as { code?: string } | undefined)?.code === 'EAUTH';

export class SendService {
  /** Default signature id per studio and user, as last resolved: lets prepare() read it early. */
  private readonly lastSignature = new Map<string, string>();

  private rememberSignature(memo: string, id: string | undefined): void {
    if (!id) {
      this.lastSignature.delete(memo);
      return;
    }
    this.lastSignature.delete(memo);
    this.lastSignature.set(memo, id);
    // Bounded: the oldest entry goes first (a Map iterates in insertion order).
    if (this.lastSignature.size > 1_000) this.lastSignature.delete(this.lastSignature.keys().next().value!);
  }

  /** Sends in flight through the same SMTP settings share one pooled transport. */
  private readonly smtpShared: SharedSmtpTransports;

  constructor(
    private readonly d: SendServiceDeps,
    private readonly o: SendServiceOptions,
  ) {
    this.smtpShared = new SharedSmtpTransports((options) => d.smtp(options));
  }

  private async company(sid: string) {
    const company = await this.d.repos.companyEmail.get(sid, 'company');
    if (!company) throw new EmailNotSetUpError();
    return company;
  }

  /** The message `inReplyTo` names, by record id or by Message-ID header. */
  private async parentOf(sid: string, inReplyTo: string): Promise<Message | { header: string } | undefined> {
    if (/^<.+>$/.test(inReplyTo.trim())) {
      const [known] = await this.d.repos.messages.findByMessageId(sid, inReplyTo.trim());
      const parent = known && (await this.d.repos.messages.get(sid, known.id));
      // An unknown Message-ID still makes a proper reply for the recipient; it just starts a thread here.
      return parent ?? { header: inReplyTo.trim() };
    }
    const parent = await this.d.repos.messages.get(sid, inReplyTo);
    if (!parent)
      throw ValidationError.field('inReplyTo', `names no message in this studio ("${inReplyTo}").`);
    return parent;
  }

  /** Validates and renders an email without sending it or writing anything. */
  async prepare(sid: string, userId: string, input: SendEmailInput): Promise<PreparedEmail> {
    const { repos } = this.d;
    // Independent reads go out together: each is a DynamoDB round trip. The signature needs the
    // effective settings, so its read starts as soon as those two are in, beside the others.
    const pendingCompany = this.company(sid);
    const pendingUserSettings = repos.userEmail.get(sid, userId);
    // The signature read joins the first round too: a chosen one by its id, the default one by
    // the id this sender's settings named last time (checked against the settings below; a miss
    // costs one more read, never a wrong signature).
    const memo = `${sid}\u0000${userId}`;
    const earlyId =
      input.signatureId ?? (input.signatureId === undefined ? this.lastSignature.get(memo) : undefined);
    const early = earlyId ? { id: earlyId, read: repos.signatures.get(sid, earlyId) } : undefined;
    early?.read.catch(() => {});
    const pendingSignature = Promise.all([pendingCompany, pendingUserSettings]).then(([c, u]) =>
      this.signature(sid, input, resolveEffective(c, u), memo, early),
    );
    // Awaited below, after the errors of the reads before it; until then a refusal must not
    // surface as an unhandled rejection.
    pendingSignature.catch(() => {});
    // Mail to one typed address lands on that address's client: look it up with the rest.
    const lookupAddress =
      !input.clientId && input.to?.length === 1 ? toAddress(input.to[0]!).address : undefined;
    // The block list for the addresses the request names goes with them (an address taken from
    // the client record is looked up once that is read).
    const typed = [...(input.to ?? []), ...(input.cc ?? []), ...(input.bcc ?? [])].map(
      (a) => toAddress(a).address,
    );
    const blockList = new BlockList(repos.table);
    const pendingBlocked = typed.length ? blockList.blocked(sid, typed) : Promise.resolve(new Map());
    pendingBlocked.catch(() => {});
    const [company, userSettings, user, named, content, parent, byAddress] = await allInOrder([
      pendingCompany,
      pendingUserSettings,
      repos.users.get(sid, userId),
      input.clientId ? repos.clients.get(sid, input.clientId) : Promise.resolve(undefined),
      this.content(sid, input),
      input.inReplyTo ? this.parentOf(sid, input.inReplyTo) : Promise.resolve(undefined),
      lookupAddress ? repos.clients.findByAddress(sid, lookupAddress) : Promise.resolve([]),
    ]);
    const effective = resolveEffective(company, userSettings);
    const parentMessage = parent && 'id' in parent ? parent : undefined;

    let client: Client | undefined = named;
    if (input.clientId && !client) {
      throw ValidationError.field('clientId', `names no client in this studio ("${input.clientId}").`);
    }
    let to = (input.to ?? []).map(toAddress);
    if (to.length === 0 && client) {
      const primary = client.emails.find((e) => e.primary) ?? client.emails[0];
      if (!primary) {
        throw ValidationError.field(
          'clientId',
          'this client has no email address: add one to the client, or give "to".',
        );
      }
      to = [{ address: primary.address, ...(fullName(client) ? { name: fullName(client) } : {}) }];
    }
    if (!client) {
      // Mail to a known address, or a reply to a client's message, still lands on that client's record.
      const clientId = byAddress.length === 1 ? byAddress[0] : parentMessage?.clientId;
      client = clientId ? await repos.clients.get(sid, clientId) : undefined;
    }
    const signature = await pendingSignature;
    const typedSet = new Set(typed.map((a) => a.toLowerCase()));
    const untyped = to.map((a) => a.address).filter((a) => !typedSet.has(a.toLowerCase()));
    const [known, more] = await Promise.all([
      pendingBlocked,
      untyped.length ? blockList.blocked(sid, untyped) : new Map(),
    ]);
    const kept = await this.withoutBlocked(
      sid,
      { to, cc: (input.cc ?? []).map(toAddress), bcc: (input.bcc ?? []).map(toAddress) },
      new Map([...known, ...more]),
    );
    to = kept.to;
    // Graph takes a MIME send's recipients from its headers, and Bcc is in none: refused before
    // anything is stored or sent (D41).
    if (effective.transport.value.method === 'graph' && kept.bcc.length > 0)
      throw ValidationError.field(
        'bcc',
        'cannot be sent through Microsoft Graph (transport method graph): Graph sends to the To and Cc recipients only. Put them in cc, or send separately.',
      );

    const now = this.d.now();
    const values = mergeValues({
      client: client && {
        firstName: client.firstName,
        lastName: client.lastName,
        company: client.company,
        phone: client.phone,
        email: to[0]?.address,
      },
      studio: {
        name: company.studioName,
        email: company.emailAddress,
        phone: company.phone,
        website: company.website,
        address: company.address,
      },
      user: {
        firstName: user?.firstName,
        lastName: user?.lastName,
        title: user?.title,
        phone: user?.phone,
        displayName: effective.displayName.value,
        email: effective.emailAddress.value,
      },
      now,
      timeZone: effective.timeZone,
    });
    const rendered = await renderEmail(content, signature, values);
    // A form letter's automatic attachments, then the ones this email names.
    let files: Awaited<ReturnType<typeof readAttachments>>;
    try {
      files = [
        ...(await readAttachments(this.d.blobs, sid, content.attachments ?? [], 'formLetter.attachments')),
        ...(await readAttachments(this.d.blobs, sid, input.attachments ?? [], 'attachments')),
      ];
    } catch (error) {
      if (error instanceof AttachmentMissingError) throw ValidationError.field(error.field, error.message);
      throw error;
    }

    const from: Address = { address: effective.emailAddress.value, name: effective.displayName.value };
    const identityArn =
      effective.transport.value.method === 'ses'
        ? await sesIdentityArn(repos, this.d.identities, sid, from.address)
        : undefined;
    // Imported mail may carry anything in its ids; only RFC 5322 msg-ids go into our headers.
    const parentId = parentMessage
      ? (parentMessage.providerMessageId ?? parentMessage.messageId)
      : (parent as { header?: string } | undefined)?.header;
    const parentHeader = parentId && isMsgId(parentId) ? parentId : undefined;
    const references = parentMessage
      ? [...parentMessage.references.filter(isMsgId), ...(parentHeader ? [parentHeader] : [])]
      : parentHeader
        ? [parentHeader]
        : [];
    return {
      studioId: sid,
      userId,
      id: randomUUID(),
      threadId: parentMessage?.threadId ?? randomUUID(),
      clientId: client?.id,
      effective,
      rendered,
      ...(identityArn ? { identityArn } : {}),
      outgoing: {
        from,
        replyTo: effective.replyTo?.value,
        to,
        cc: kept.cc,
        bcc: kept.bcc,
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        messageId: newMessageId(from.address),
        date: now,
        inReplyTo: parentHeader,
        references,
        ...(files.length
          ? {
              attachments: files.map(({ filename, contentType, content }) => ({
                filename,
                contentType,
                content,
              })),
            }
          : {}),
      },
      attachmentKeys: files.map((f) => f.blobKey),
    };
  }

  /**
   * The recipients minus the studio's blocked addresses (unsubscribed, bounced, complained),
   * unless the studio lets transactional email bypass the block list. Refuses an email left with
   * nobody to go to, naming the reason.
   */
  private async withoutBlocked(
    sid: string,
    r: { to: Address[]; cc: Address[]; bcc: Address[] },
    blocked: Map<string, { reason: string }>,
  ) {
    // The studio's bypass switch is read only when it matters: mail to nobody blocked costs nothing.
    if (blocked.size === 0 || (await readSettings(this.d.repos.table, sid)).bypassBlocksForTransactional)
      return r;
    const keep = (list: Address[]) => list.filter((a) => !blocked.has(a.address.toLowerCase()));
    const kept = { to: keep(r.to), cc: keep(r.cc), bcc: keep(r.bcc) };
    if (kept.to.length + kept.cc.length + kept.bcc.length === 0) {
      const [address, entry] = [...blocked][0] as [string, { reason: string }];
      throw ValidationError.field(
        r.to.length ? 'to' : 'cc',
        `${address} is on the block list (${entry.reason}); nothing was sent. An admin can reinstate it (POST /block-list/{address}/reinstate) or turn on bypassBlocksForTransactional.`,
      );
    }
    return kept;
  }

  private async content(
    sid: string,
    input: SendEmailInput,
  ): Promise<ContentSource & { attachments?: AttachmentRef[] }> {
    if (!input.formLetterId) {
      return { subject: input.subject ?? '', html: input.html, text: input.text, origin: '' };
    }
    const letter = await this.d.repos.formLetters.get(sid, input.formLetterId);
    if (!letter) {
      throw ValidationError.field(
        'formLetterId',
        `names no form letter in this studio ("${input.formLetterId}").`,
      );
    }
    if (letter.html === undefined && letter.text === undefined) {
      throw ValidationError.field('formLetterId', 'this form letter has no body (neither HTML nor text).');
    }
    return {
      subject: letter.subject,
      html: letter.html,
      text: letter.text,
      origin: 'formLetter',
      attachments: letter.attachments,
    };
  }

  /** The request's signature, none for `null`, else the effective default (user over company). */
  private async signature(
    sid: string,
    input: SendEmailInput,
    effective: EffectiveSettings,
    memo: string,
    early?: { id: string; read: Promise<SignatureSource | undefined> },
  ): Promise<SignatureSource | undefined> {
    const read = (id: string) => (early?.id === id ? early.read : this.d.repos.signatures.get(sid, id));
    if (input.signatureId === null) return undefined;
    if (input.signatureId !== undefined) {
      const chosen = await read(input.signatureId);
      if (!chosen) {
        throw ValidationError.field(
          'signatureId',
          `names no signature in this studio ("${input.signatureId}").`,
        );
      }
      return chosen;
    }
    const defaultId = effective.signatureId?.value;
    this.rememberSignature(memo, defaultId);
    if (!defaultId) return undefined;
    const fallback = await read(defaultId);
    // A deleted default signature must not stop the studio's mail; the email goes without one.
    if (!fallback) this.d.logger.warn('default signature missing', { signatureId: defaultId });
    return fallback;
  }

  /**
   * Sends a prepared email and records it on the client (status sent or failed) with its raw
   * copy. Throws only before anything was sent (the raw copy could not be stored); every later
   * problem is part of the returned outcome. `alongside`'s writes (the idempotency outcome, the
   * caps count) go in the record's own transaction: one write round after the SMTP exchange. When
   * that transaction fails (a studio's first send has no ledger yet, a record too large, a fault),
   * the record is written alone and `alongside.separately` writes the rest, with `recorded: false`
   * if the record failed; it must not throw.
   */
  async deliver(p: PreparedEmail, alongside?: Alongside): Promise<Delivery> {
    const mail = await composeMime(p.outgoing);
    const t = p.effective.transport.value;
    const tooBig = checkSize(
      mail.raw.length,
      t.method === 'graph'
        ? GRAPH_MIME_LIMIT
        : providerLimitBytes(t.method, t.method === 'smtp' ? t.server : undefined),
      t.method === 'graph' ? 'smtp' : t.method,
    );
    // Refused before anything is stored or sent: the provider would refuse it anyway.
    if (tooBig) throw ValidationError.field('attachments', `${tooBig.problem} ${tooBig.advice}`);
    const rawKey = `raw/${p.studioId}/out/${p.id}.eml`; // under the studio, like inbound copies
    try {
      await this.d.blobs.put(rawKey, mail.raw, 'message/rfc822');
    } catch (error) {
      this.d.logger.error('raw copy not stored; not sending', { id: p.id, errorMessage: String(error) });
      throw new UpstreamError('The email could not be stored, so it was not sent. Try again in a moment.');
    }
    // SES tags come back with its bounce and complaint events, which map them to the studio.
    const tags = { studio: sesTag(p.studioId), kind: 'single', message: sesTag(p.id) };
    const sent = await this.transmit(
      p.studioId,
      p.effective,
      { ...mail, tags, ...(p.identityArn ? { identityArn: p.identityArn } : {}) },
      false,
    );
    const providerMessageId =
      sent.ok && sent.result.messageId !== mail.messageId ? sent.result.messageId : undefined;
    const o = p.outgoing;
    const record: Message = {
      id: p.id,
      direction: 'out',
      status: sent.ok ? 'sent' : 'failed',
      clientId: p.clientId,
      threadId: p.threadId,
      messageId: mail.messageId,
      providerMessageId,
      inReplyTo: o.inReplyTo,
      references: o.references,
      from: o.from,
      to: o.to,
      cc: o.cc,
      subject: o.subject,
      date: o.date.toISOString(),
      snippet: o.text.replace(/\s+/g, ' ').trim().slice(0, 200),
      rawKey,
      attachments: (o.attachments ?? []).map((a, i) => ({
        filename: a.filename,
        contentType: a.contentType,
        size: a.content.length,
        blobKey: p.attachmentKeys?.[i] ?? '',
      })),
      automatic: o.headers?.['Auto-Submitted'] !== undefined,
      sentBy: p.userId,
      error: sent.ok ? undefined : errorLine(sent.diagnosis),
    };
    const outcome = (recorded: boolean): Delivery => {
      const base = {
        id: p.id,
        threadId: p.threadId,
        clientId: p.clientId,
        messageId: mail.messageId,
        recorded,
      };
      if (!sent.ok) return { ok: false, ...base, diagnosis: sent.diagnosis, attempts: sent.attempts };
      return {
        ok: true,
        ...base,
        providerMessageId,
        accepted: sent.result.accepted,
        rejected: sent.result.rejected,
        response: sent.result.response,
        attempts: sent.attempts,
      };
    };
    const optimistic = outcome(true);
    let delivery = optimistic;
    try {
      const repos = this.d.repos;
      await repos.table.transact([
        ...repos.messages.createWrites(p.studioId, record),
        ...(alongside?.writes(optimistic) ?? []),
      ]);
      alongside?.committed();
    } catch (error) {
      // Expected on a studio's first send (no ledger yet) and on a conflict with a concurrent
      // write of the ledger; anything else shows here too. Each write is then made on its own.
      this.d.logger.info('one-round record write fell back to separate writes', {
        id: p.id,
        errorName: error instanceof Error ? error.name : typeof error,
      });
      const recorded = await this.d.repos.messages.create(p.studioId, record).then(
        () => true,
        (error: unknown) => {
          // The email has left (or definitely failed); the answer must still say so.
          this.d.logger.error('sent message not recorded', { id: p.id, errorMessage: String(error) });
          return false;
        },
      );
      delivery = recorded ? optimistic : outcome(false);
      await alongside?.separately(delivery);
    }
    if (!sent.ok) {
      this.d.logger.warn('email not sent', {
        id: p.id,
        kind: sent.diagnosis.kind,
        serverCode: sent.diagnosis.serverCode,
        attempts: sent.attempts,
      });
    } else {
      this.d.logger.info('email sent', { id: p.id, messageId: mail.messageId, attempts: sent.attempts });
    }
    return delivery;
  }

  /**
   * Send Test Email: a real message through the settings under test (the company's, or a user's
   * effective ones) to `to` or the sender itself. The password is read fresh, since the owner may
   * have just changed it.
   */
  async sendTest(sid: string, userId: string | undefined, to: string | undefined): Promise<TestResult> {
    const [company, userSettings] = await allInOrder([
      this.company(sid),
      userId ? this.d.repos.userEmail.get(sid, userId) : Promise.resolve(undefined),
    ]);
    const effective = resolveEffective(company, userSettings);
    const t = effective.transport.value;
    const from = effective.emailAddress.value;
    const recipient = to ?? from;
    const identityArn =
      t.method === 'ses' ? await sesIdentityArn(this.d.repos, this.d.identities, sid, from) : undefined;
    const how = describeHow(t);
    const now = this.d.now();
    const text =
      `This is a test email from studio-mail for ${company.studioName}.\n\n` +
      `It was sent from ${from} ${how} at ${now.toISOString()}.\n` +
      'If you can read it, sending email works with these settings.\n';
    const mail = await composeMime({
      from: { address: from, name: effective.displayName.value },
      replyTo: effective.replyTo?.value,
      to: [{ address: recipient }],
      cc: [],
      bcc: [],
      subject: `Test email from ${company.studioName}`,
      text,
      messageId: newMessageId(from),
      date: now,
      references: [],
    });
    const transport = describeTransport(t);
    const sent = await this.transmit(sid, effective, identityArn ? { ...mail, identityArn } : mail, true);
    if (!sent.ok) {
      this.d.logger.warn('test email failed', {
        kind: sent.diagnosis.kind,
        serverCode: sent.diagnosis.serverCode,
      });
      return { ok: false, diagnosis: sent.diagnosis, from, to: recipient, transport };
    }
    return {
      ok: true,
      messageId: mail.messageId,
      ...(sent.result.messageId !== mail.messageId ? { providerMessageId: sent.result.messageId } : {}),
      response: sent.result.response,
      from,
      to: recipient,
      transport,
      attempts: sent.attempts,
    };
  }

  /** Picks the transport, reads its password and sends with retries; diagnoses a failure. */
  private async transmit(
    sid: string,
    effective: EffectiveSettings,
    mail: RawMail,
    fresh: boolean,
  ): Promise<Transmitted> {
    const t = effective.transport.value;
    const ctx: DiagnosisContext = {
      transport: t,
      sources: { transport: effective.transport.source, emailAddress: effective.emailAddress.source },
      from: mail.envelope.from,
      to: mail.envelope.to,
      probe: this.o.probe,
    };
    if (t.method === 'graph' || (t.method !== 'ses' && t.signIn))
      return this.transmitWithTokens(sid, t, ctx, mail, fresh);
    let password: string | undefined;
    let cached = false;
    if (t.method !== 'ses' && t.passwordRef) {
      try {
        ({ value: password, cached } = await this.o.credentials.get(t.passwordRef, { fresh }));
      } catch {
        return { ok: false, diagnosis: secretUnreadable(ctx), attempts: 0 };
      }
    } else if (t.method === 'gmail') {
      return { ok: false, diagnosis: passwordMissing(ctx), attempts: 0 };
    }

    let outcome = await this.attempt(t, password, mail);
    let attempts = outcome.attempts;
    // A password changed in the settings keeps the same secret reference; a refused logon with a
    // cached password is tried once more with a fresh read before it counts as wrong.
    if (!outcome.ok && cached && t.method !== 'ses' && t.passwordRef && isAuthFailure(outcome.error)) {
      const again = await this.o.credentials.get(t.passwordRef, { fresh: true }).catch(() => undefined);
      if (again && again.value !== password) {
        outcome = await this.attempt(t, again.value, mail);
        attempts += outcome.attempts;
      }
    }
    if (outcome.ok) return { ok: true, result: outcome.value, attempts };
    return { ok: false, diagnosis: await diagnose(outcome.error, ctx), attempts };
  }

  /**
   * Graph sendMail, or SMTP/Gmail logging on with XOAUTH2: the token comes from the sign-in (or
   * Graph app credentials); a refused token is renewed once and the message tried again.
   */
  private async transmitWithTokens(
    sid: string,
    t: Exclude<ResolvedTransport, { method: 'ses' }>,
    ctx: DiagnosisContext,
    mail: RawMail,
    fresh: boolean,
  ): Promise<Transmitted> {
    const signIn = t.signIn;
    const startQuery =
      signIn?.owner.kind === 'user'
        ? `settings=user&userId=${encodeURIComponent(signIn.owner.userId)}`
        : 'settings=company';
    const refused = (error: unknown): Transmitted | undefined =>
      error instanceof AppError && error.field === 'transport.authentication'
        ? { ok: false, diagnosis: signInProblem(ctx, error, startQuery), attempts: 0 }
        : error instanceof AppError && error.status >= 500
          ? { ok: false, diagnosis: signInProblem(ctx, error, startQuery), attempts: 0 }
          : undefined;
    const token = (renew: boolean) => {
      if (!signIn || !this.o.signIn)
        return Promise.reject(
          new SignInUnavailableError('OAuth2 sign-in is not configured in this deployment (OAUTH_*).', {
            field: 'transport.authentication',
          }),
        );
      return this.o.signIn(sid, signIn.owner, renew ? { renew: true } : {});
    };
    if (t.method === 'graph') {
      let tokens: AccessTokens;
      if (t.authentication === 'app') {
        if (!t.tenantId || !t.clientId || !t.passwordRef)
          return { ok: false, diagnosis: passwordMissing(ctx), attempts: 0 };
        let secret: string;
        try {
          secret = (await this.o.credentials.get(t.passwordRef, { fresh })).value;
        } catch {
          return { ok: false, diagnosis: secretUnreadable(ctx), attempts: 0 };
        }
        const { appTokens } = await import('#lib/graph/tokens');
        tokens = appTokens({
          loginBase: this.o.graphLoginBase ?? 'https://login.microsoftonline.com',
          tenantId: t.tenantId,
          clientId: t.clientId,
          clientSecret: secret,
        });
      } else {
        let renew = false;
        tokens = {
          get: () => token(renew).finally(() => (renew = false)),
          expire: () => (renew = true),
        };
      }
      const outcome = await this.attempt(t, undefined, mail, undefined, tokens);
      if (outcome.ok) return { ok: true, result: outcome.value, attempts: outcome.attempts };
      return (
        refused(outcome.error) ?? {
          ok: false,
          diagnosis: await diagnose(outcome.error, ctx),
          attempts: outcome.attempts,
        }
      );
    }
    let accessToken: string;
    try {
      accessToken = await token(false);
    } catch (error) {
      const r = refused(error);
      if (r) return r;
      throw error;
    }
    let outcome = await this.attempt(t, undefined, mail, accessToken);
    let attempts = outcome.attempts;
    // Revoked or expired before its time: one renewal (a refused one alerts), one more try.
    if (!outcome.ok && isAuthFailure(outcome.error)) {
      try {
        accessToken = await token(true);
      } catch (error) {
        const r = refused(error);
        if (r) return { ...r, attempts };
        throw error;
      }
      outcome = await this.attempt(t, undefined, mail, accessToken);
      attempts += outcome.attempts;
      if (!outcome.ok && isAuthFailure(outcome.error))
        return {
          ok: false,
          diagnosis: tokenRefused(ctx, (outcome.error as { response?: string }).response),
          attempts,
        };
    }
    if (outcome.ok) return { ok: true, result: outcome.value, attempts };
    return { ok: false, diagnosis: await diagnose(outcome.error, ctx), attempts };
  }

  private async attempt(
    t: ResolvedTransport,
    password: string | undefined,
    mail: RawMail,
    accessToken?: string,
    graphTokens?: AccessTokens,
  ) {
    const open = openTransport(this.d, t, password, this.o.policy, this.smtpShared, accessToken, graphTokens);
    try {
      return await withRetry(() => open.transport.send(mail), this.o.retry, isTransient);
    } finally {
      open.release();
    }
  }
}

/**
 * Promise.all that waits for every promise and then throws the first failure in argument order,
 * so that which validation error a request gets does not depend on which read came back first.
 */
async function allInOrder<T extends readonly unknown[]>(
  promises: { [K in keyof T]: Promise<T[K]> },
): Promise<T> {
  const results = await Promise.allSettled(promises);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** Signing in is not set up here (no OAUTH_* provider): 409, naming the field. */
class SignInUnavailableError extends AppError {
  override readonly name = 'SignInUnavailableError';
  override readonly status = 409;
  override readonly code = 'oauth_sign_in_required';
}

function describeHow(t: ResolvedTransport): string {
  if (t.method === 'ses') return 'through Amazon SES';
  if (t.method === 'graph') return `through Microsoft Graph as ${t.mailbox}`;
  const security = { ssl: 'SSL', starttls: 'STARTTLS', none: 'no encryption' }[t.security];
  return `through ${t.method === 'gmail' ? 'Gmail' : 'SMTP'} server ${t.server}:${t.port} (${security})`;
}

/** One line for the failed message's record. */
function errorLine(d: Diagnosis): string {
  return [d.problem, d.serverReply].filter(Boolean).join(' Server said: ').slice(0, 1000);
}

/** SES tag values allow letters, digits, `_` and `-`; anything else is hex-encoded (as lib/bulk reads it). */
function sesTag(value: string): string {
  return /^[A-Za-z0-9_-]{1,200}$/.test(value) ? value : `x${Buffer.from(value).toString('hex')}`;
}
