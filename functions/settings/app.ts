/**
 * Route key → handler for the settings function, assembled from the route modules in ./routes.
 * Each handler: parse → domain (lib/settings) → result; the shared edge maps errors to statuses.
 */
import type { Deps } from '#lib/app/deps';
import { checkHealth } from '#lib/app/health';
import type { RouteHandler } from '#lib/http/api';
import { mailHostPolicy } from '#lib/net/guard';
import { Pop3Client } from '#lib/pop3/client';
import { connectionTestConfig, type Pop3Probe, pop3Probe } from '#lib/settings/connection-test';
import type { SettingsContext } from '#lib/settings/context';
import { buildOpenApi } from '#lib/settings/openapi';
import { boxRoutes } from './routes/boxes.ts';
import type { Route } from './routes/common.ts';
import { companyRoutes } from './routes/company.ts';
import { inboxRoutes } from './routes/inbox.ts';
import { referenceRoutes } from './routes/reference.ts';
import { senderIdentityRoutes } from './routes/sender-identities.ts';
import { userSettingsRoutes } from './routes/user-settings.ts';

export interface SettingsOptions {
  /** The POP3 login used by box saves and tests. Default: Pop3Client, trust and timeouts from `env`. */
  probePop3?: Pop3Probe;
  /** Where POP3_CA_FILE, POP3_TLS_INSECURE and the POP3 timeouts are read; default process.env. */
  env?: Record<string, string | undefined>;
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
      probe = pop3Probe(config, Pop3Client.connect);
    }
    return probe(target);
  };
}

/** Every route with its OpenAPI entry (the document is built from these). */
export function settingsRouteTable(d: Deps, options: SettingsOptions = {}): Route[] {
  const ctx: SettingsContext = {
    repos: d.repos,
    secrets: d.secrets,
    scheduler: d.scheduler,
    identities: d.identities,
    log: d.logger,
    probePop3: options.probePop3 ?? defaultProbe(d, options.env ?? process.env),
  };
  const routes: Route[] = [
    {
      doc: {
        key: 'GET /health',
        tag: 'Operations',
        access: 'public',
        summary: 'Whether the parts answer (503 if not).',
      },
      handle: async () => {
        const health = await checkHealth(d);
        return { status: health.status === 'ok' ? 200 : 503, body: health };
      },
    },
    ...companyRoutes(ctx),
    ...userSettingsRoutes(ctx),
    ...referenceRoutes(ctx),
    ...boxRoutes(ctx),
    ...inboxRoutes(ctx),
    ...senderIdentityRoutes(ctx),
  ];
  let document: unknown;
  routes.push({
    doc: { key: 'GET /openapi.json', tag: 'Operations', access: 'public', summary: 'This document.' },
    handle: async () => {
      document ??= buildOpenApi(
        routes.map((r) => r.doc),
        {
          title: 'studio-mail settings API',
          version: '1',
          description:
            'Company and user email settings, signatures, reference data and email boxes of a photo studio. Passwords are write-only: responses show `passwordSet`.',
        },
      );
      return { status: 200, body: document };
    },
  });
  return routes;
}

export function settingsHandlers(d: Deps, options: SettingsOptions = {}): Record<string, RouteHandler> {
  return Object.fromEntries(settingsRouteTable(d, options).map((r) => [r.doc.key, r.handle]));
}
