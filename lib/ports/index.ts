/**
 * Ports: the small interfaces domain code depends on. Each has an AWS adapter
 * (lib/adapters/aws) and a local twin (lib/adapters/local) used by `npm start` and tests.
 */
import type { Readable } from 'node:stream';

/** Passwords and app passwords. Only references are stored elsewhere; values never leave here except to a mail server. */
export interface SecretStore {
  /** Creates a secret named `prefix + name`; returns its reference (an ARN in AWS). */
  create(name: string, value: string, tags?: Record<string, string>): Promise<string>;
  /** Writes a new version of an existing secret. */
  update(ref: string, value: string): Promise<void>;
  get(ref: string): Promise<string>;
  /** Schedules deletion (AWS keeps a recovery window); the local twin deletes at once. */
  scheduleDeletion(ref: string): Promise<void>;
}

/**
 * A Content-Type S3 accepts as its header: printable ASCII only (`image/jpeg山` is refused).
 * Both blob stores check it, so a test against the local twin meets what S3 would refuse.
 */
export function isHeaderSafeContentType(value: string): boolean {
  return value.length <= 255 && /^[\x20-\x7e]*$/.test(value);
}

/** What a blob store was given that it refuses (a Content-Type S3 would not take). */
export class InvalidBlobError extends Error {
  override readonly name = 'InvalidBlobError';
}

export interface BlobStore {
  /** Stores bytes under `key`; a stream is written without holding it in memory. */
  put(key: string, body: Buffer | string | Readable, contentType?: string): Promise<{ size: number }>;
  get(key: string): Promise<Readable>;
  getBuffer(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
  /**
   * A short-lived URL that downloads the object as is (a presigned S3 GET in AWS; a signed URL
   * served by the local runner under `npm start`). Anyone holding it may read that object until it
   * expires, so it is handed only to a caller allowed to read it.
   */
  downloadUrl(key: string, options: DownloadOptions): Promise<string>;
}

export interface DownloadOptions {
  /** Seconds the URL stays valid. */
  expiresInSeconds: number;
  /** Offered as the saved file's name (Content-Disposition: attachment). */
  filename?: string;
  /** Served as Content-Type. */
  contentType?: string;
}

/**
 * Starts a function without waiting for it: an asynchronous (`Event`) Lambda invoke in AWS, a
 * call in the same process under `npm start` and in tests.
 */
export interface AsyncInvoker {
  invoke(payload: Record<string, unknown>): Promise<void>;
}

/** A message already rendered to MIME, with its SMTP envelope. */
export interface RawMail {
  envelope: { from: string; to: string[] };
  raw: Buffer;
  messageId: string;
  /** SES: the verified identity to send as (FromEmailAddressIdentityArn); ignored by SMTP. */
  identityArn?: string;
  /** SES: message tags, returned with its delivery, bounce and complaint events; ignored by SMTP. */
  tags?: Record<string, string>;
}

export interface SendResult {
  messageId: string;
  /** Provider's id (SES MessageId or SMTP queue id), when given. */
  providerId?: string;
  accepted: string[];
  rejected: string[];
  response?: string;
}

/** One way out for mail: SES or an SMTP server (Gmail is SMTP with fixed settings). */
export interface MailTransport {
  readonly kind: 'ses' | 'smtp' | 'graph';
  send(mail: RawMail): Promise<SendResult>;
  /** Connects and authenticates without sending (SMTP); SES checks nothing here. */
  verify(): Promise<void>;
  close(): void;
}

export interface ScheduleDefinition {
  /** Unique within the schedule group; recognisable by an admin in the console. */
  name: string;
  description?: string;
  /** EventBridge Scheduler expression, e.g. `cron(0/20 8-17 ? * MON,WED,FRI *)`. */
  expression: string;
  timeZone: string;
  enabled: boolean;
  /** JSON given to the poller on each invocation. */
  input: Record<string, unknown>;
}

export interface Scheduler {
  put(def: ScheduleDefinition): Promise<void>;
  get(name: string): Promise<ScheduleDefinition | undefined>;
  delete(name: string): Promise<void>;
}

export interface DomainEvent {
  source: string;
  detailType: string;
  detail: Record<string, unknown>;
}

export interface EventPublisher {
  publish(events: DomainEvent[]): Promise<void>;
}

/** Verification of a sender identity, as the sending service reports it. */
export interface IdentityStatus {
  /** `domain` or `address`. */
  type: 'domain' | 'address';
  /** SES may send from it (VerifiedForSendingStatus). */
  verified: boolean;
  /** Easy DKIM: PENDING, SUCCESS, FAILED, TEMPORARY_FAILURE or NOT_STARTED. */
  dkimStatus: string;
  /** The three Easy DKIM tokens; each becomes a CNAME `<token>._domainkey.<domain>`. */
  dkimTokens: string[];
  /** ARN to send as (SES v2 FromEmailAddressIdentityArn). */
  arn: string;
}

/**
 * Sender identities of the sending service (SES v2 email identities). SES has no local server
 * for these; the local twin keeps them in the table and verifies one when asked.
 */
export interface EmailIdentities {
  /** Creates the identity (Easy DKIM for a domain); an existing one is returned as it is. */
  create(identity: string): Promise<IdentityStatus>;
  /** Its current status, or undefined when the service does not know it. */
  get(identity: string): Promise<IdentityStatus | undefined>;
  delete(identity: string): Promise<void>;
  /**
   * "I have published the DNS records": the local twin marks the identity verified; SES checks
   * DNS by itself, so the AWS adapter only reads the status again.
   */
  recheck(identity: string): Promise<IdentityStatus | undefined>;
}
