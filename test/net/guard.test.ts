// @vitest-environment node
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smtpTransport } from '#lib/adapters/mail';
import { loadConfig } from '#lib/config';
import { openBox } from '#lib/inbox/connect';
import { blockedRange, MailHostRefusedError, type Resolve, resolveMailHost } from '#lib/net/guard';
import { Pop3Client } from '#lib/pop3/client';
import { portProber } from '#lib/send/probe';
import { connectionTestConfig, probePop3 } from '#lib/settings/connection-test';
import { type Dovecot, startDovecot, uniqueUser } from '#test/support/dovecot';
import { type SmtpHarness, startSmtpServer } from '#test/support/smtp';

/** A resolver that knows only the names given, as a hostile DNS zone would answer them. */
const zone =
  (names: Record<string, string>): Resolve =>
  async (host) => {
    const address = names[host];
    if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return [{ address, family: net.isIPv6(address) ? 6 : 4 }];
  };

describe('blockedRange', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['100.100.100.200', 'carrier-grade NAT'],
    ['169.254.169.254', 'link-local / instance metadata'],
    ['0.0.0.0', 'this network'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved / broadcast'],
    ['198.18.0.1', 'benchmarking'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fc00::1', 'unique local'],
    ['fd00:ec2::254', 'unique local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::FFFF:169.254.169.254', 'link-local / instance metadata'],
    ['::ffff:10.0.0.1', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'link-local / instance metadata'],
    ['2002:c0a8:0101::1', 'private'],
  ])('refuses %s (%s)', (ip, range) => {
    // Act
    const found = blockedRange(ip);
    // Assess
    expect(found).toContain(range);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '169.255.0.1',
    '2606:4700:4700::1111',
    '2a00:1450:4001::1',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
  ])('allows the public address %s', (ip) => {
    // Act
    const found = blockedRange(ip);
    // Assess
    expect(found).toBeUndefined();
  });
});

describe('resolveMailHost', () => {
  it('refuses a name that resolves to a private address', async () => {
    // Prepare
    const policy = { allowPrivate: false, resolve: zone({ 'pop.evil.test': '10.0.0.7' }) };
    // Act
    const result = resolveMailHost('pop.evil.test', policy);
    // Assess
    await expect(result).rejects.toBeInstanceOf(MailHostRefusedError);
    await expect(result).rejects.toThrow(/pop\.evil\.test resolves to 10\.0\.0\.7 \(private\)/);
  });

  it('refuses a name when any one of its addresses is private', async () => {
    // Prepare
    const resolve: Resolve = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '::ffff:127.0.0.1', family: 6 },
    ];
    // Act
    const result = resolveMailHost('mixed.evil.test', { allowPrivate: false, resolve });
    // Assess
    await expect(result).rejects.toThrow(/loopback/);
  });

  it('refuses localhost and IP literals through the system resolver', async () => {
    // Act
    const named = await resolveMailHost('localhost', { allowPrivate: false }).catch((e: unknown) => e);
    const literal = await resolveMailHost('169.254.169.254', { allowPrivate: false }).catch(
      (e: unknown) => e,
    );
    // Assess
    expect(named).toBeInstanceOf(MailHostRefusedError);
    expect(String(literal)).toMatch(/instance metadata/);
  });

  it('lets private addresses through when the deployment allows them', async () => {
    // Act
    const found = await resolveMailHost('localhost', { allowPrivate: true });
    // Assess
    expect(found.map((a) => a.address)).toContain('127.0.0.1');
  });
});

describe('ALLOW_PRIVATE_MAIL_HOSTS', () => {
  it('is on for the local adapters and off for AWS unless the environment says otherwise', () => {
    // Act
    const local = loadConfig({ STUDIO_MAIL_ADAPTERS: 'local' });
    const aws = loadConfig({ STUDIO_MAIL_ADAPTERS: 'aws' });
    const localOff = loadConfig({ STUDIO_MAIL_ADAPTERS: 'local', ALLOW_PRIVATE_MAIL_HOSTS: 'false' });
    const awsOn = loadConfig({ STUDIO_MAIL_ADAPTERS: 'aws', ALLOW_PRIVATE_MAIL_HOSTS: 'true' });
    // Assess
    expect(local.allowPrivateMailHosts).toBe(true);
    expect(aws.allowPrivateMailHosts).toBe(false);
    expect(localOff.allowPrivateMailHosts).toBe(false);
    expect(awsOn.allowPrivateMailHosts).toBe(true);
  });
});

/** A TCP listener that only counts who connected: nothing may reach it when the guard refuses. */
async function countingListener(): Promise<{
  port: number;
  connections: () => number;
  close(): Promise<void>;
}> {
  let count = 0;
  const server = net.createServer((socket) => {
    count += 1;
    socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nami-id: i-secret-metadata\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('POP3 connections', () => {
  let dovecot: Dovecot;
  let user: string;
  const password = 'pw-Guard-4471';
  const limits = { connectTimeoutMs: 3_000, timeoutMs: 5_000 };

  beforeAll(async () => {
    dovecot = await startDovecot();
    user = uniqueUser('guard');
    await dovecot.addUser(user, password);
  }, 60_000);
  afterAll(async () => {
    await dovecot?.stop();
  });

  it('refuses a box test whose server name resolves to loopback, before connecting', async () => {
    // Prepare
    const listener = await countingListener();
    const config = {
      ...connectionTestConfig({}),
      ...limits,
      mailHosts: { allowPrivate: false, resolve: zone({ 'pop.evil.test': '127.0.0.1' }) },
    };
    try {
      // Act
      const result = await probePop3(
        { server: 'pop.evil.test', port: listener.port, ssl: false, userName: 'u', password: 'p' },
        config,
        Pop3Client.connect,
      );
      // Assess
      expect(result).toMatchObject({ ok: false, field: 'connection.server' });
      expect(result.message).toMatch(/127\.0\.0\.1 \(loopback\).*public server name/);
      expect(JSON.stringify(result)).not.toContain('ami-id');
      expect(listener.connections()).toBe(0);
    } finally {
      await listener.close();
    }
  });

  it('refuses a box test aimed at the metadata address or ::ffff:127.0.0.1 written as a literal', async () => {
    // Prepare
    const config = { ...connectionTestConfig({}), ...limits, mailHosts: { allowPrivate: false } };
    const target = { port: 80, ssl: false, userName: 'u', password: 'p' };
    // Act
    const metadata = await probePop3({ ...target, server: '169.254.169.254' }, config, Pop3Client.connect);
    const mapped = await probePop3({ ...target, server: '::ffff:127.0.0.1' }, config, Pop3Client.connect);
    // Assess
    expect(metadata).toMatchObject({ ok: false, field: 'connection.server', kind: 'unreachable' });
    expect(mapped).toMatchObject({ ok: false, field: 'connection.server', kind: 'unreachable' });
  });

  it('connects to the address the guard checked, not to a second lookup of the name', async () => {
    // Prepare: the name exists only in the injected zone, so a second (system) lookup would fail.
    const config = {
      ...connectionTestConfig({}),
      ...limits,
      mailHosts: { allowPrivate: true, resolve: zone({ 'pop.pinned.test': '127.0.0.1' }) },
    };
    // Act
    const result = await probePop3(
      { server: 'pop.pinned.test', port: dovecot.pop3Port, ssl: false, userName: user, password },
      config,
      Pop3Client.connect,
    );
    // Assess
    expect(result).toMatchObject({ ok: true, messageCount: 0 });
  });

  it('lets the poller reach a local server when private hosts are allowed, and refuses it otherwise', async () => {
    // Prepare
    const conn = {
      type: 'pop3' as const,
      server: dovecot.host,
      port: dovecot.pop3sPort,
      ssl: true,
      spa: false,
      emailAddress: 'box@lumen.test',
      userName: user,
      passwordRef: 'unused',
    };
    // Act
    const client = await openBox(conn, password, { ca: dovecot.caCertPem }, { allowPrivate: true });
    await client.quit();
    const refused = openBox(conn, password, { ca: dovecot.caCertPem }, { allowPrivate: false });
    // Assess
    await expect(refused).rejects.toMatchObject({ kind: 'unreachable', code: 'EPRIVATEHOST' });
  });
});

describe('SMTP connections and the port probe', () => {
  let smtp: SmtpHarness;
  beforeAll(async () => {
    smtp = await startSmtpServer({ mode: 'plain' });
  });
  afterAll(async () => {
    await smtp?.stop();
  });

  it('refuses to send through a server name that resolves to a private address', async () => {
    // Prepare
    smtp.reset();
    const transport = smtpTransport({
      host: 'smtp.evil.test',
      port: smtp.port,
      security: 'none',
      mailHosts: { allowPrivate: false, resolve: zone({ 'smtp.evil.test': '127.0.0.1' }) },
    });
    // Act
    const sent = transport.verify();
    // Assess
    await expect(sent).rejects.toMatchObject({ code: 'EPRIVATEHOST' });
    expect(smtp.mailFromCount()).toBe(0);
    transport.close();
  });

  it('sends to the checked address of a name when private hosts are allowed', async () => {
    // Prepare
    smtp.reset();
    const transport = smtpTransport({
      host: 'smtp.pinned.test',
      port: smtp.port,
      security: 'none',
      mailHosts: { allowPrivate: true, resolve: zone({ 'smtp.pinned.test': '127.0.0.1' }) },
    });
    // Act
    const result = await transport.send({
      envelope: { from: 'a@lumen.test', to: ['b@example.com'] },
      raw: Buffer.from('From: a@lumen.test\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n'),
      messageId: '<guard-1@lumen.test>',
    });
    transport.close();
    // Assess
    expect(result.accepted).toEqual(['b@example.com']);
    expect(smtp.messages).toHaveLength(1);
  });

  it('does not probe a refused address', async () => {
    // Prepare
    const listener = await countingListener();
    const probe = portProber(1_000, {
      allowPrivate: false,
      resolve: zone({ 'smtp.evil.test': '127.0.0.1' }),
    });
    try {
      // Act
      const byName = await probe('smtp.evil.test', listener.port);
      const byLiteral = await probe('127.0.0.1', listener.port);
      // Assess
      expect(byName).toEqual({ implicitTls: false, plainGreeting: false, offersStartTls: false });
      expect(byLiteral).toEqual({ implicitTls: false, plainGreeting: false, offersStartTls: false });
      expect(listener.connections()).toBe(0);
    } finally {
      await listener.close();
    }
  });
});
