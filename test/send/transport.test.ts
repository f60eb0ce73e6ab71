import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { describe, expect, it } from 'vitest';
import type { SmtpOptions } from '#lib/adapters/mail';
import type { SecretStore } from '#lib/ports/index';
import { CredentialCache, openTransport, transportPolicyFromEnv } from '#lib/send/transport';

function countingStore(value: () => string) {
  const reads: string[] = [];
  const store = {
    get: async (ref: string) => {
      reads.push(ref);
      return value();
    },
  } as unknown as SecretStore;
  return { store, reads };
}

describe('CredentialCache', () => {
  it('reads a secret once per five minutes per reference, unless asked for a fresh read', async () => {
    // Prepare
    let clock = 0;
    let password = 'one';
    const { store, reads } = countingStore(() => password);
    const cache = new CredentialCache(store, 5 * 60_000, () => clock);
    // Act
    const first = await cache.get('ref-a');
    clock += 4 * 60_000;
    password = 'two';
    const cached = await cache.get('ref-a');
    const fresh = await cache.get('ref-a', { fresh: true });
    clock += 6 * 60_000;
    password = 'three';
    const expired = await cache.get('ref-a');
    await cache.get('ref-b');
    // Assess
    expect(first).toEqual({ value: 'one', cached: false });
    expect(cached).toEqual({ value: 'one', cached: true });
    expect(fresh).toEqual({ value: 'two', cached: false });
    expect(expired).toEqual({ value: 'three', cached: false });
    expect(reads).toEqual(['ref-a', 'ref-a', 'ref-a', 'ref-b']);
  });
});

describe('transportPolicyFromEnv', () => {
  it('verifies certificates unless the environment says otherwise', () => {
    // Act
    const strict = transportPolicyFromEnv({});
    const insecure = transportPolicyFromEnv({
      SMTP_TLS_INSECURE: 'true',
      SMTP_CONNECTION_TIMEOUT_MS: '2500',
    });
    // Assess
    expect(strict).toEqual({ rejectUnauthorized: true, ca: undefined, connectionTimeoutMs: 10_000 });
    expect(insecure).toMatchObject({ rejectUnauthorized: false, connectionTimeoutMs: 2500 });
  });

  it('adds a CA file to the bundled ones', () => {
    // Prepare
    const file = join(mkdtempSync(join(tmpdir(), 'ca-')), 'ca.pem');
    writeFileSync(file, '-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n');
    // Act
    const policy = transportPolicyFromEnv({ SMTP_TLS_CA_FILE: file });
    // Assess
    expect(policy.ca).toHaveLength(rootCertificates.length + 1);
    expect(policy.ca?.at(-1)).toContain('TEST');
  });
});

describe('openTransport', () => {
  it('expands Gmail to smtp.gmail.com:587 with STARTTLS, logging on as the sending address', () => {
    // Prepare
    const seen: SmtpOptions[] = [];
    const factories = {
      ses: () => {
        throw new Error('not SES');
      },
      smtp: (o: SmtpOptions) => {
        seen.push(o);
        return {
          kind: 'smtp' as const,
          send: async () => ({ messageId: '', accepted: [], rejected: [] }),
          verify: async () => {},
          close: () => {},
        };
      },
    };
    // Act
    openTransport(
      factories,
      {
        method: 'gmail',
        server: 'smtp.gmail.com',
        port: 587,
        security: 'starttls',
        logonName: 'me@gmail.com',
      },
      'app-password',
      { rejectUnauthorized: true, connectionTimeoutMs: 1000 },
    );
    // Assess
    expect(seen[0]).toMatchObject({
      host: 'smtp.gmail.com',
      port: 587,
      security: 'starttls',
      user: 'me@gmail.com',
      password: 'app-password',
      rejectUnauthorized: true,
    });
  });
});
