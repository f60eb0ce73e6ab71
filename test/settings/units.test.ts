import { describe, expect, it } from 'vitest';
import { mergeFieldNames } from '#lib/domain/merge-fields';
import { Pop3Error } from '#lib/pop3/client';
import { connectionTestConfig, diagnose, type Pop3Target } from '#lib/settings/connection-test';
import { secretName } from '#lib/settings/secrets';

const target: Pop3Target = {
  server: 'pop.lumen.test',
  port: 995,
  ssl: true,
  userName: 'ana',
  password: 'pw-Zebra-9137',
};
const config = { rejectUnauthorized: true, connectTimeoutMs: 10_000, timeoutMs: 10_000 };

describe('mergeFieldNames', () => {
  it('finds each {{path.to.field}} once, in order, ignoring helpers and stray braces', () => {
    // Act
    const names = mergeFieldNames(
      'Hi {{client.firstName}}, {{ client.firstName }}!',
      '{{#if x}}{{{studio.name}}}{{/if}} {{ bad name }} {{}} {{a.b.c_d}}',
      undefined,
    );
    // Assess
    expect(names).toEqual(['client.firstName', 'studio.name', 'a.b.c_d']);
  });
});

describe('diagnose', () => {
  it.each([
    [new Pop3Error('unreachable', 'x', { code: 'EHOSTUNREACH' }), 'connection.server', /cannot be reached/],
    [
      new Pop3Error('timeout', 'x', { phase: 'connect' }),
      'connection.port',
      /did not answer within 10 s.*995 with SSL/,
    ],
    [
      new Pop3Error('timeout', 'x', { phase: 'command', command: 'PASS' }),
      'connection.password',
      /slow down log-ins/,
    ],
    [
      new Pop3Error('tls', 'x', { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }),
      'connection.server',
      /certificate .* another name/,
    ],
    [new Pop3Error('tls', 'x', { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'connection.ssl', /not trusted/],
    [
      new Pop3Error('auth', 'x', { command: 'USER', serverText: 'No such user' }),
      'connection.userName',
      /user name or password/,
    ],
    [new Pop3Error('protocol', 'x', { phase: 'greeting' }), 'connection.port', /does not speak POP3/],
    [new Pop3Error('closed', 'x', { phase: 'tls' }), 'connection.ssl', /closed the connection/],
    [
      new Pop3Error('server', 'x', { command: 'PASS', responseCode: 'IN-USE', serverText: 'locked' }),
      'connection.server',
      /Try again in a minute/,
    ],
  ])('names the field to fix for %s', (error, field, message) => {
    // Act
    const d = diagnose(error, target, config);
    // Assess
    expect(d.field).toBe(field);
    expect(d.message).toMatch(message);
    expect(JSON.stringify(d)).not.toContain(target.password);
  });

  it('quotes the server reply with its response code', () => {
    // Act
    const d = diagnose(
      new Pop3Error('auth', 'x', {
        command: 'PASS',
        responseCode: 'AUTH',
        serverText: 'Authentication failed.',
      }),
      target,
      config,
    );
    // Assess
    expect(d.serverReply).toBe('-ERR [AUTH] Authentication failed.');
  });
});

describe('connectionTestConfig', () => {
  it('checks certificates unless told otherwise, and reads a CA file and timeouts from the environment', () => {
    // Act
    const plain = connectionTestConfig({});
    const custom = connectionTestConfig(
      {
        POP3_CA_FILE: '/ca.pem',
        POP3_TLS_INSECURE: 'true',
        POP3_CONNECT_TIMEOUT_MS: '2500',
        POP3_TIMEOUT_MS: 'soon',
      },
      (path) => `PEM from ${path}`,
    );
    // Assess
    expect(plain).toEqual({
      ca: undefined,
      rejectUnauthorized: true,
      connectTimeoutMs: 10_000,
      timeoutMs: 10_000,
    });
    expect(custom).toEqual({
      ca: 'PEM from /ca.pem',
      rejectUnauthorized: false,
      connectTimeoutMs: 2500,
      timeoutMs: 10_000,
    });
  });
});

describe('secretName', () => {
  it('names a secret under the studio with a fresh suffix, replacing characters secret names refuse', () => {
    // Act
    const a = secretName('studio 1', 'users', 'auth0|abc', 'smtp');
    const b = secretName('studio 1', 'users', 'auth0|abc', 'smtp');
    // Assess
    expect(a).toMatch(/^studio_1\/users\/auth0_abc\/smtp-[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
  });
});
