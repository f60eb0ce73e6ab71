/**
 * Runtime configuration, read once from the environment. The CDK stack sets these for each
 * Lambda; the local runner and the tests set the `local` flavour. Nothing here holds a secret but the cursor key.
 */
import { randomBytes } from 'node:crypto';

export interface Config {
  /** `aws` uses the AWS adapters; `local` uses the local twins (files under .local/, in-process bus). */
  readonly adapters: 'aws' | 'local';
  readonly region: string;
  readonly tableName: string;
  /** DynamoDB endpoint override (DynamoDB Local); unset in AWS. */
  readonly dynamoEndpoint: string | undefined;
  /** S3 bucket for raw mail, bodies and attachments (aws). */
  readonly blobBucket: string | undefined;
  /** Directory for the local blob store (local). */
  readonly blobDir: string;
  /** Every secret this system writes is named under this prefix; IAM is scoped to it. */
  readonly secretPrefix: string;
  /** Directory of the local encrypted secret store (local). */
  readonly secretDir: string;
  /** SES v2 endpoint override (aws-ses-v2-local); unset in AWS. */
  readonly sesEndpoint: string | undefined;
  readonly sesConfigurationSet: string | undefined;
  readonly eventBusName: string;
  readonly scheduleGroup: string;
  readonly schedulerRoleArn: string | undefined;
  readonly pollerArn: string | undefined;
  /** Verified sender used for notification emails. */
  readonly notificationSender: string;
  /** Name of the JWT claim holding the caller's studio (tenant) id. */
  readonly studioClaim: string;
  /**
   * Whether POP3/SMTP server names may resolve to loopback, private, link-local or metadata
   * addresses (lib/net/guard.ts). `ALLOW_PRIVATE_MAIL_HOSTS=true|false`; unset it is true for the
   * local adapters (npm start, tests: local servers) and false otherwise. The stack sets false.
   */
  readonly allowPrivateMailHosts: boolean;
  /** The AWS account id, for the ARNs of SES sender identities (SES does not return them). */
  readonly accountId: string;
  /** Push intake's receiving domain (RECEIVING_DOMAIN); locally `inbound.studio-mail.localhost`. */
  readonly receivingDomain: string | undefined;
  /**
   * The secret paging cursors are signed and encrypted with (lib/http/cursor.ts), from
   * `CURSOR_KEY`. The local adapters have a fixed development key; a deployment sets its own
   * (unset there, each process makes a random one, so cursors do not survive another instance).
   */
  readonly cursorKey: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const adapters = env.STUDIO_MAIL_ADAPTERS === 'local' ? 'local' : 'aws';
  return {
    adapters,
    region: env.AWS_REGION ?? 'us-east-1',
    tableName: env.TABLE_NAME ?? 'studio-mail',
    dynamoEndpoint: env.DYNAMODB_ENDPOINT || undefined,
    blobBucket: env.BLOB_BUCKET || undefined,
    blobDir: env.BLOB_DIR ?? '.local/blobs',
    secretPrefix: env.SECRET_PREFIX ?? 'studio-mail/',
    secretDir: env.SECRET_DIR ?? '.local/secrets',
    sesEndpoint: env.SES_ENDPOINT || undefined,
    sesConfigurationSet: env.SES_CONFIGURATION_SET || undefined,
    eventBusName: env.EVENT_BUS_NAME ?? 'default',
    scheduleGroup: env.SCHEDULE_GROUP ?? 'studio-mail',
    schedulerRoleArn: env.SCHEDULER_ROLE_ARN || undefined,
    pollerArn: env.POLLER_ARN || undefined,
    notificationSender: env.NOTIFICATION_SENDER ?? 'notifications@studio-mail.local',
    studioClaim: env.STUDIO_CLAIM ?? 'custom:studioId',
    accountId: env.ACCOUNT_ID ?? '000000000000',
    // Push intake: boxes receive forwarded mail at <local part>@this domain (SES receiving in AWS,
    // the inbound SMTP server of `npm start` locally).
    receivingDomain:
      env.RECEIVING_DOMAIN || (adapters === 'local' ? 'inbound.studio-mail.localhost' : undefined),
    cursorKey:
      env.CURSOR_KEY ||
      (adapters === 'local' ? 'studio-mail local development cursor key' : randomBytes(32).toString('hex')),
    allowPrivateMailHosts:
      env.ALLOW_PRIVATE_MAIL_HOSTS === undefined || env.ALLOW_PRIVATE_MAIL_HOSTS === ''
        ? adapters === 'local'
        : env.ALLOW_PRIVATE_MAIL_HOSTS === 'true',
  };
}
