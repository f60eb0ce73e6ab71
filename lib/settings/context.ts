/** What the settings services need, passed in by the function (never imported from AWS here). */
import type { Repositories } from '#lib/data/repositories';
import type { EmailBox } from '#lib/domain/model';
import type { BlobStore, EmailIdentities, Scheduler, SecretStore } from '#lib/ports/index';
import type { Pop3Probe, ProbeResult } from './connection-test.ts';

export interface Log {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
}

export interface SettingsContext {
  repos: Repositories;
  secrets: SecretStore;
  /** EventBridge Scheduler (or the in-process twin): one poll schedule per email box. */
  scheduler: Scheduler;
  log: Log;
  /** Raw mail and attachments: read-only here (download links). */
  blobs: BlobStore;
  /** SES sender identities (or their local twin). */
  identities: EmailIdentities;
  /** Logs in to a POP3 server and out again (lib/settings/connection-test.ts). */
  probePop3: Pop3Probe;
  /**
   * Reads an Exchange Online box's inbox through Microsoft Graph once (lib/graph/probe.ts), with
   * its client secret (or its sign-in); absent: Graph boxes are not tested.
   */
  probeGraph?: (box: EmailBox, secret: string, studioId: string) => Promise<ProbeResult>;
  /** The deployment's receiving domain (push intake), when it has one. */
  receivingDomain?: string;
  /** A current OAuth2 access token of a signed-in box (lib/oauth/tokens.ts); absent: OAuth2 not configured. */
  oauthToken?: (studioId: string, boxId: string) => Promise<string>;
}
