/**
 * Ports whose adapter is imported on first use. The Lambda bundles are built with esbuild's
 * `splitting`, so each dynamic import is a chunk of its own that is only read and compiled when
 * first called: a function that never sends mail never loads nodemailer or the SES client
 * (docs/performance.md, `npm run bench -- bundles`).
 */
import type { MailTransport, RawMail } from '#lib/ports/index';

/** A stand-in for a port whose methods are all async: each call loads the adapter once, then delegates. */
export function lazyPort<T extends object>(load: () => Promise<T>): T {
  let instance: Promise<T> | undefined;
  return new Proxy({} as T, {
    get(_target, prop) {
      // Not a thenable: `await port` must not try to call a method named `then`.
      if (prop === 'then') return undefined;
      return async (...args: unknown[]) => {
        instance ??= load().catch((error: unknown) => {
          instance = undefined; // a failed load is tried again on the next call
          throw error;
        });
        const target = (await instance) as Record<PropertyKey, (...a: unknown[]) => unknown>;
        return target[prop]?.(...args);
      };
    },
  });
}

export function lazyTransport(
  kind: MailTransport['kind'],
  load: () => Promise<MailTransport>,
): MailTransport {
  let instance: Promise<MailTransport> | undefined;
  let loaded: MailTransport | undefined;
  const get = () => {
    instance ??= load().then(
      (t) => {
        loaded = t;
        return t;
      },
      (error: unknown) => {
        instance = undefined; // as lazyPort: a failed load is tried again on the next call
        throw error;
      },
    );
    return instance;
  };
  return {
    kind,
    send: async (mail: RawMail) => (await get()).send(mail),
    verify: async () => (await get()).verify(),
    close: () => loaded?.close(),
  };
}
