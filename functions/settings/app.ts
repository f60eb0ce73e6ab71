/**
 * The settings function over its dependencies: a handler bound to every route of ./routes.ts.
 * Each handler: domain (lib/settings) → result; the edge has checked access and validated input.
 */
import { apiTables } from '#functions/routes';
import type { Deps } from '#lib/app/deps';
import { checkHealth } from '#lib/app/health';
import type { GraphProbe } from '#lib/graph/probe';
import { graphSettingsFromEnv } from '#lib/graph/settings';
import { httpApi } from '#lib/http/api';
import { mailHostPolicy } from '#lib/net/guard';
import { oauthFromEnv } from '#lib/oauth/from-deps';
import type { OAuthService } from '#lib/oauth/service';
import { Pop3Client } from '#lib/pop3/client';
import { connectionTestConfig, mailProbe, type Pop3Probe } from '#lib/settings/connection-test';
import type { SettingsContext } from '#lib/settings/context';
import { boxHandlers } from './handlers/boxes.ts';
import type { SettingsHandlers } from './handlers/common.ts';
import { companyHandlers } from './handlers/company.ts';
import { docsHandlers, mergeFieldHandlers } from './handlers/docs.ts';
import { inboxHandlers } from './handlers/inbox.ts';
import { oauthHandlers } from './handlers/oauth.ts';
import { referenceHandlers } from './handlers/reference.ts';
import { senderIdentityHandlers } from './handlers/sender-identities.ts';
import { userSettingsHandlers } from './handlers/user-settings.ts';
import { settingsRoutes } from './routes.ts';

export interface SettingsOptions {
  /** The POP3/IMAP login used by box saves and tests. Default: Pop3Client or imapflow, trust and timeouts from `env`. */
  probePop3?: Pop3Probe;
  /** Where POP3_CA_FILE, POP3_TLS_INSECURE, the POP3 timeouts and OAUTH_* are read; default process.env. */
  env?: Record<string, string | undefined>;
  /** The Exchange Online (Graph) box test; default against GRAPH_API_BASE / GRAPH_LOGIN_BASE in `env`. */
  probeGraph?: GraphProbe;
  /** OAuth2 sign-in and tokens; default from OAUTH_* in `env` (none configured: the routes answer 404). */
  oauth?: OAuthService;
}

function defaultProbe(d: Deps, env: Record<string, string | undefined>): Pop3Probe {
  let probe: Pop3Probe | undefined;
  // Built on first use, so a bad POP3_CA_FILE fails a box test, not every request of the function.
  return (target) => {
    if (!probe) {
      const config = connectionTestConfig(env, undefined, mailHostPolicy(d.config));
      if (!config.rejectUnauthorized)
        d.logger.warn(
          'POP3_TLS_INSECURE is set: mail server certificates are not checked (development only)',
        );
      probe = mailProbe(config, Pop3Client.connect);
    }
    return probe(target);
  };
}

/**
 * The document for every route of every function; built once per process, on first request. The
 * generator (and zod's JSON Schema code) is loaded then too: no other request needs it.
 */
let document: unknown;
export async function openApiDocument(): Promise<unknown> {
  const { buildOpenApi } = await import('#lib/http/openapi');
  document ??= buildOpenApi(Object.values(apiTables), {
    title: 'studio-mail API',
    version: '1',
    description:
      'Email back end of a photo studio: company and user email settings, signatures, reference data, email boxes and their inbox, sending and previews. Passwords are write-only: responses show `passwordSet`. Every error answers `{ error: { code, message, field?, fields?, details?, requestId } }`.',
  });
  return document;
}

export function settingsHandlers(d: Deps, options: SettingsOptions = {}): SettingsHandlers {
  const oauth = options.oauth ?? oauthFromEnv(d, options.env ?? process.env);
  const ctx: SettingsContext = {
    repos: d.repos,
    secrets: d.secrets,
    scheduler: d.scheduler,
    identities: d.identities,
    log: d.logger,
    blobs: d.blobs,
    probePop3: options.probePop3 ?? defaultProbe(d, options.env ?? process.env),
    receivingDomain: d.config.receivingDomain,
    ...(oauth ? { oauthToken: (sid: string, boxId: string) => oauth.accessToken(sid, boxId) } : {}),
    // The Graph probe (and the connector under it) loads when a Graph box is first tested.
    probeGraph:
      options.probeGraph ??
      (async (box, secret, sid) =>
        (await import('#lib/graph/probe')).graphProbe(
          graphSettingsFromEnv(options.env ?? process.env),
          oauth ? (s, boxId, o) => oauth.accessToken(s, boxId, o) : undefined,
        )(box, secret, sid)),
  };
  return {
    'GET /health': async () => {
      const health = await checkHealth(d);
      return { status: health.status === 'ok' ? 200 : 503, body: health };
    },
    'GET /openapi.json': async () => ({ status: 200, body: await openApiDocument() }),
    ...companyHandlers(ctx),
    ...userSettingsHandlers(ctx),
    ...referenceHandlers(ctx),
    ...boxHandlers(ctx),
    ...inboxHandlers(ctx),
    ...docsHandlers(),
    ...mergeFieldHandlers(),
    ...senderIdentityHandlers(ctx),
    ...oauthHandlers(oauth),
  };
}

/** The settings function's Lambda handler over `d` (the composition root calls this). */
export function settingsFunction(d: Deps, options: SettingsOptions = {}) {
  return httpApi(settingsRoutes, settingsHandlers(d, options), {
    logger: d.logger,
    studioClaim: d.config.studioClaim,
    cursorKey: d.config.cursorKey,
  });
}
