import type { Deps } from '#lib/app/deps';
import { lazyTransport } from '#lib/app/lazy';
import { SendLedger } from '#lib/bulk/ledger';
import type { GraphSendOptions } from '#lib/graph/send';
import { graphSettingsFromEnv } from '#lib/graph/settings';
import { httpApi } from '#lib/http/api';
import type { ApiResult, Handlers } from '#lib/http/routes';
import { count } from '#lib/metrics';
import { mailHostPolicy } from '#lib/net/guard';
import { oauthFromEnv } from '#lib/oauth/from-deps';
import type { OAuthService } from '#lib/oauth/service';
import {
  type Completion,
  defaultIdempotency,
  type IdempotencyOptions,
  IdempotencyStore,
  type OnceRequest,
  runOnce,
  watchedTransport,
} from '#lib/send/idempotency';
import { type Prober, portProber } from '#lib/send/probe';
import { defaultRetry, type RetryPolicy } from '#lib/send/retry';
import { type Delivery, type PreparedEmail, SendService, type TestResult } from '#lib/send/service';
import { CredentialCache, defaultPolicy, type TransportPolicy } from '#lib/send/transport';
import { sendRoutes } from './routes.ts';

export interface SendHandlerOptions {
  /** TLS trust and timeouts; from the environment in handler.ts (transportPolicyFromEnv). */
  policy?: TransportPolicy;
  retry?: Partial<RetryPolicy>;
  /** How long a password read from the secret store is reused. */
  credentialTtlMs?: number;
  idempotency?: Partial<IdempotencyOptions>;
  /** Port probe used to tell SSL from STARTTLS after a failure; `false` turns it off. */
  probe?: Prober | false;
  /** OAuth2 sign-ins of send settings; by default configured from OAUTH_* in `env`. */
  oauth?: OAuthService;
  /** GRAPH_API_BASE, GRAPH_LOGIN_BASE, OAUTH_*; default process.env. */
  env?: Record<string, string | undefined>;
}

/** 200 when sent; 422 when the server or SES refused for good; 502 when it may work later. */
function deliveryResult(d: Delivery): ApiResult {
  if (d.ok) return { status: 200, body: d };
  return { status: d.diagnosis.retryable ? 502 : 422, body: d };
}

function testResult(r: TestResult): ApiResult {
  return { status: r.ok ? 200 : 422, body: r };
}

function preview(p: PreparedEmail) {
  const o = p.outgoing;
  return {
    from: o.from,
    replyTo: o.replyTo,
    to: o.to,
    cc: o.cc,
    bcc: o.bcc,
    subject: o.subject,
    html: o.html,
    text: o.text,
    clientId: p.clientId,
    signatureId: p.rendered.signatureId,
    mergeFields: p.rendered.mergeFields,
    inReplyTo: o.inReplyTo,
    references: o.references,
    transport: p.effective.transport.value.method,
  };
}

/** The deployment's rule for SMTP server addresses, unless the caller (a test) brought its own. */
export function withMailHosts(policy: TransportPolicy, d: Deps): TransportPolicy {
  return policy.mailHosts ? policy : { ...policy, mailHosts: mailHostPolicy(d.config) };
}

/** A handler for every route of ./routes.ts. Each: domain → result (the edge has validated input). */
export function sendHandlers(d: Deps, options: SendHandlerOptions = {}): Handlers<typeof sendRoutes> {
  // runOnce learns from these whether a request handed its message over before it failed.
  const env = options.env ?? process.env;
  const graph = graphSettingsFromEnv(env);
  const oauth = options.oauth ?? oauthFromEnv(d, env);
  const watched = {
    ...d,
    ses: watchedTransport(d.ses),
    smtp: watchedTransport(d.smtp),
    // Graph sendMail is loaded by the first send through it, not at cold start.
    graph: watchedTransport((o: GraphSendOptions) =>
      lazyTransport('graph', async () => (await import('#lib/graph/send')).graphSendTransport(o)),
    ),
  };
  const service = new SendService(watched, {
    policy: { ...withMailHosts(options.policy ?? defaultPolicy, d), graphApiBase: graph.apiBase },
    graphLoginBase: graph.loginBase,
    ...(oauth ? { signIn: (sid, owner, o) => oauth.sendAccessToken(sid, owner, o) } : {}),
    credentials: new CredentialCache(d.secrets, options.credentialTtlMs),
    retry: { ...defaultRetry, ...options.retry },
    probe:
      options.probe === false
        ? undefined
        : (options.probe ?? portProber(undefined, mailHostPolicy(d.config))),
  });
  const ledger = new SendLedger(d.repos.table);
  const keys = new IdempotencyStore(d.repos.table, { ...defaultIdempotency, ...options.idempotency });

  const once = <P>(
    req: OnceRequest,
    scope: string,
    prepare: () => Promise<P>,
    send: (prepared: P, complete: Completion) => Promise<ApiResult>,
  ) => runOnce({ store: keys, now: d.now, log: d.logger }, req, scope, prepare, send);

  const nothing = async () => undefined;

  return {
    'POST /settings/company/email/test': async (req) =>
      once(req, 'test', nothing, async () =>
        testResult(await service.sendTest(req.caller.studioId, undefined, req.body.to)),
      ),

    // The edge has checked `self` access and turned `me` into the caller's id.
    'POST /users/{id}/email-settings/test': async (req) =>
      once(req, 'test', nothing, async () =>
        testResult(await service.sendTest(req.caller.studioId, req.params.id ?? '', req.body.to)),
      ),

    'POST /emails': async (req) =>
      // A replay answers from the stored outcome, even if the form letter changed since; a request
      // refused while preparing gives its key back, having sent nothing.
      once(
        req,
        'emails',
        () => service.prepare(req.caller.studioId, req.caller.userId, req.body),
        async (prepared, complete) => {
          // A sent email counts against the studio's caps (shared with bulk email). The count and
          // the idempotency outcome go in the record's transaction: one write round.
          const sid = req.caller.studioId;
          const sends = (dl: Delivery) => (dl.ok ? dl.accepted.length || 1 : 0);
          const delivery = await service.deliver(prepared, {
            writes: (dl) => {
              const at = d.now().getTime();
              const outcome = complete.write(deliveryResult(dl));
              return [
                ...(outcome ? [outcome] : []),
                ...(sends(dl) ? [ledger.recordWrite(sid, sends(dl), at)] : []),
              ];
            },
            committed: () => complete.committed(),
            separately: async (dl) => {
              const counted =
                dl.recorded && sends(dl)
                  ? ledger
                      .record(sid, sends(dl), d.now().getTime())
                      .catch((error: unknown) =>
                        d.logger.warn('send not counted against the caps', { errorMessage: String(error) }),
                      )
                  : undefined;
              await Promise.all([complete(deliveryResult(dl)), counted]);
            },
          });
          count(d.metrics, { EmailsSent: delivery.ok ? 1 : 0, EmailsFailed: delivery.ok ? 0 : 1 });
          return deliveryResult(delivery);
        },
      ),

    'POST /emails/preview': async (req) => {
      const prepared = await service.prepare(req.caller.studioId, req.caller.userId, req.body);
      return { status: 200, body: preview(prepared) };
    },
  };
}

/** The send function's Lambda handler over `d` (the composition root calls this). */
export function sendFunction(d: Deps, options: SendHandlerOptions = {}) {
  return httpApi(sendRoutes, sendHandlers(d, options), {
    logger: d.logger,
    studioClaim: d.config.studioClaim,
  });
}
