/**
 * What a bulk batch sends with, read once per batch: the sender's effective settings, the form
 * letter (and its automatic attachments), the signature, the From identity and the password; and
 * the email for one recipient (merge fields, unsubscribe headers, MIME), built from those with the
 * single-send pieces (lib/send): rendering, composition, transports, retries and diagnoses.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { SmtpOptions } from '#lib/adapters/mail';
import type { Repositories } from '#lib/data/repositories';
import { escapeHtml, mergeValues } from '#lib/domain/merge-fields';
import type { Client, CompanyEmailSettings, User } from '#lib/domain/model';
import { type EffectiveSettings, resolveEffective } from '#lib/domain/settings';
import type { BlobStore, EmailIdentities, MailTransport, RawMail } from '#lib/ports/index';
import { composeMime, newMessageId, type OutgoingAttachment } from '#lib/send/compose';
import {
  type Diagnosis,
  type DiagnosisContext,
  diagnose,
  isTransient,
  passwordMissing,
  secretUnreadable,
} from '#lib/send/diagnose';
import { sesIdentityArn } from '#lib/send/identity';
import { type ContentSource, type RenderedEmail, renderEmail, type SignatureSource } from '#lib/send/render';
import { type RetryPolicy, withRetry } from '#lib/send/retry';
import {
  type CredentialCache,
  type OpenTransport,
  openTransport,
  type SharedSmtpTransports,
  type TransportPolicy,
} from '#lib/send/transport';
import { attachmentBlobKey, checkSize, providerLimitBytes } from './attachments.ts';
import type { LinkSigner } from './links.ts';
import type { BulkSettings, Job, Recipient } from './model.ts';

export interface MailerDeps {
  repos: Repositories;
  blobs: BlobStore;
  identities: EmailIdentities;
  ses: () => MailTransport;
  smtp: (options: SmtpOptions) => MailTransport;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  links: LinkSigner;
}

export interface MailerOptions {
  policy: TransportPolicy;
  credentials: CredentialCache;
  retry: RetryPolicy;
}

/** Why a batch cannot send at all (settings missing, letter deleted): the job pauses with it. */
export class BulkNotReadyError extends Error {
  override readonly name = 'BulkNotReadyError';
}

export interface BatchContext {
  company: CompanyEmailSettings;
  user: User | undefined;
  effective: EffectiveSettings;
  content: ContentSource;
  signature: SignatureSource | undefined;
  identityArn?: string;
  attachments: OutgoingAttachment[];
  settings: BulkSettings;
  password?: string;
  /** Set when sending cannot work at all (a Gmail transport without a password). */
  refusal?: Diagnosis;
  /** The transport, held for the whole batch so its pooled connections are reused; release() after. */
  open?: OpenTransport;
}

/** The client fields the merge fields use. */
export type MergeClient = Partial<Pick<Client, 'firstName' | 'lastName' | 'company' | 'phone'>>;

export type SendOutcome =
  | { ok: true; messageId: string; providerMessageId?: string; raw: Buffer; rendered: RenderedEmail }
  | { ok: false; messageId: string; diagnosis: Diagnosis; raw: Buffer; rendered: RenderedEmail };

export class BulkMailer {
  constructor(
    private readonly d: MailerDeps,
    private readonly o: MailerOptions,
    private readonly shared: SharedSmtpTransports,
  ) {}

  async context(sid: string, job: Job, settings: BulkSettings): Promise<BatchContext> {
    const { repos } = this.d;
    const [company, userSettings, user, letter] = await Promise.all([
      repos.companyEmail.get(sid, 'company'),
      repos.userEmail.get(sid, job.userId),
      repos.users.get(sid, job.userId),
      repos.formLetters.get(sid, job.formLetterId),
    ]);
    if (!company)
      throw new BulkNotReadyError('Email is not set up for this studio (company email settings).');
    if (!letter) throw new BulkNotReadyError(`The form letter "${job.formLetterId}" no longer exists.`);
    const effective = resolveEffective(company, userSettings);
    const signatureId = effective.signatureId?.value;
    const signature = signatureId ? await repos.signatures.get(sid, signatureId) : undefined;
    const t = effective.transport.value;
    const identityArn =
      t.method === 'ses'
        ? await sesIdentityArn(repos, this.d.identities, sid, effective.emailAddress.value)
        : undefined;
    const files = [...letter.attachments, ...job.attachments];
    const attachments = await Promise.all(
      files.map(async (a) => ({
        filename: a.filename,
        contentType: a.contentType,
        content: await this.d.blobs.getBuffer(attachmentBlobKey(sid, a.id)),
      })),
    );
    let password: string | undefined;
    let refusal: Diagnosis | undefined;
    const ctx = this.diagnosisContext(effective, '', []);
    if (t.method !== 'ses' && t.passwordRef) {
      try {
        password = (await this.o.credentials.get(t.passwordRef)).value;
      } catch {
        refusal = secretUnreadable(ctx);
      }
    } else if (t.method === 'gmail') refusal = passwordMissing(ctx);
    return {
      company,
      user,
      effective,
      content: { subject: letter.subject, html: letter.html, text: letter.text, origin: 'formLetter' },
      signature,
      ...(identityArn ? { identityArn } : {}),
      attachments,
      settings,
      password,
      ...(refusal ? { refusal } : {}),
    };
  }

  /** The context with its transport opened (pooled SMTP connections shared for the batch). */
  withTransport(ctx: BatchContext): BatchContext {
    if (ctx.refusal) return ctx;
    return {
      ...ctx,
      open: openTransport(this.d, ctx.effective.transport.value, ctx.password, this.o.policy, this.shared),
    };
  }

  private diagnosisContext(effective: EffectiveSettings, from: string, to: string[]): DiagnosisContext {
    return {
      transport: effective.transport.value,
      sources: { transport: effective.transport.source, emailAddress: effective.emailAddress.source },
      from,
      to,
    };
  }

  /** The MIME of one recipient's email. */
  async compose(
    sid: string,
    job: Job,
    ctx: BatchContext,
    r: Recipient,
    client: MergeClient | undefined,
    now: Date,
  ) {
    const e = ctx.effective;
    const unsubscribe = ctx.settings.unsubscribe
      ? await this.d.links.unsubscribeUrl({ s: sid, j: job.id, r: r.key, a: r.address }, job.publicUrl)
      : undefined;
    const values = mergeValues({
      client: {
        firstName: client?.firstName,
        lastName: client?.lastName,
        company: client?.company,
        phone: client?.phone,
        email: r.address,
      },
      studio: {
        name: ctx.company.studioName,
        email: ctx.company.emailAddress,
        phone: ctx.company.phone,
        website: ctx.company.website,
        address: ctx.company.address,
      },
      user: {
        firstName: ctx.user?.firstName,
        lastName: ctx.user?.lastName,
        title: ctx.user?.title,
        phone: ctx.user?.phone,
        displayName: e.displayName.value,
        email: e.emailAddress.value,
      },
      now,
      timeZone: e.timeZone,
      unsubscribeUrl: unsubscribe,
    });
    const rendered = await renderEmail(ctx.content, ctx.signature, values);
    // SMTP only (SES tracks opens and clicks itself through the configuration set), and only when on.
    if (ctx.settings.tracking && e.transport.value.method !== 'ses' && rendered.html !== undefined) {
      const base = job.publicUrl ?? this.d.links.baseUrl;
      const link = { s: sid, j: job.id, r: r.key, a: r.address };
      rendered.html = await tracked(rendered.html, unsubscribe, (url) =>
        this.d.links.clickUrl(link, url, base),
      );
      rendered.html += `<img src="${await this.d.links.openUrl(link, base)}" width="1" height="1" alt="" style="display:none">`;
    }
    const from = { address: e.emailAddress.value, name: e.displayName.value };
    const mail = await composeMime({
      from,
      replyTo: e.replyTo?.value,
      to: [{ address: r.address, ...(r.name ? { name: r.name } : {}) }],
      cc: [],
      bcc: [],
      subject: rendered.subject,
      text: rendered.text,
      html: rendered.html,
      messageId: newMessageId(from.address),
      date: now,
      references: [],
      headers: unsubscribe
        ? // RFC 8058: a POST to this URL unsubscribes at once, no page to click through.
          { 'List-Unsubscribe': `<${unsubscribe}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' }
        : undefined,
      attachments: ctx.attachments,
    });
    return { mail, rendered };
  }

  /** Sends one recipient's email: 4xx and throttling retried with backoff, the rest diagnosed. */
  async send(
    sid: string,
    job: Job,
    ctx: BatchContext,
    r: Recipient,
    client: MergeClient | undefined,
    now: Date,
  ): Promise<SendOutcome> {
    const { mail, rendered } = await this.compose(sid, job, ctx, r, client, now);
    const base = { messageId: mail.messageId, raw: mail.raw, rendered };
    const dctx = this.diagnosisContext(ctx.effective, mail.envelope.from, mail.envelope.to);
    if (ctx.refusal) return { ok: false, ...base, diagnosis: ctx.refusal };
    const t = ctx.effective.transport.value;
    const limit = providerLimitBytes(t.method, t.method === 'smtp' ? t.server : undefined);
    const tooBig = checkSize(mail.raw.length, limit, t.method);
    if (tooBig)
      return { ok: false, ...base, diagnosis: { ...tooBig, settings: ctx.effective.transport.source } };
    const raw: RawMail = {
      ...mail,
      ...(ctx.identityArn ? { identityArn: ctx.identityArn } : {}),
      tags: { studio: tagValue(sid), job: tagValue(job.id), rcpt: r.key.replaceAll('#', '-') },
    };
    const transport = ctx.open?.transport;
    if (!transport) throw new Error('The batch context has no open transport.');
    const sent = await withRetry(() => transport.send(raw), this.o.retry, isTransient);
    if (sent.ok)
      return {
        ok: true,
        ...base,
        ...(sent.value.messageId !== mail.messageId ? { providerMessageId: sent.value.messageId } : {}),
      };
    return { ok: false, ...base, diagnosis: await diagnose(sent.error, dctx) };
  }
}

/** Every `href="http…"` of the HTML through the click redirect, except the unsubscribe link. */
async function tracked(
  html: string,
  keep: string | undefined,
  redirect: (url: string) => Promise<string>,
): Promise<string> {
  const out: string[] = [];
  let last = 0;
  for (const m of html.matchAll(/href="(https?:\/\/[^"]+)"/gi)) {
    const url = (m[1] as string).replaceAll('&amp;', '&');
    out.push(html.slice(last, m.index), url === keep ? m[0] : `href="${escapeHtml(await redirect(url))}"`);
    last = (m.index ?? 0) + m[0].length;
  }
  out.push(html.slice(last));
  return out.join('');
}

/** SES tag values allow letters, digits, `_` and `-`; anything else is hex-encoded. */
export function tagValue(value: string): string {
  return /^[A-Za-z0-9_-]{1,200}$/.test(value) ? value : `x${Buffer.from(value).toString('hex')}`;
}

export function fromTagValue(value: string): string {
  return /^x([0-9a-f]{2})+$/.test(value) && value.length > 1
    ? Buffer.from(value.slice(1), 'hex').toString('utf8')
    : value;
}
