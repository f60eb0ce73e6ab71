/**
 * A private Dovecot (POP3, POP3S, IMAP, IMAPS on 127.0.0.1, free ports) for tests.
 *
 * Everything lives in one temp directory: config, self-signed certificate, sockets (base_dir),
 * state, log, per-user password files and Maildirs. So it never clashes with a system Dovecot or a
 * second instance, and removing the directory removes every trace.
 *
 * Two ways to use it:
 * - in a test file: `const dovecot = await startDovecot()` in beforeAll, `await dovecot.stop()` in afterAll;
 * - from a vitest globalSetup: start once, `provide('dovecot', dovecot.info)`, and in test files
 *   `useDovecot(inject('dovecot'))` gives addUser/deliver/clear against the same instance.
 *   Users are one file each (passdb path `%u`), so parallel workers never race on a shared file;
 *   use `uniqueUser()` for names.
 *
 * Needs root (Dovecot switches login processes to `dovenull` and mail processes to `dovecot`).
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ntHash } from '#lib/auth-mech/ntlm';

const DOVECOT = '/usr/sbin/dovecot';
const DIR_PREFIX = 'studio-dovecot-';
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Serializable description of a running instance (what a globalSetup hands to test workers). */
export interface DovecotInfo {
  readonly host: string;
  readonly pop3Port: number;
  readonly pop3sPort: number;
  readonly imapPort: number;
  readonly imapsPort: number;
  /** The self-signed server certificate; pass as `ca` to verify it (name: localhost / 127.0.0.1). */
  readonly caCertPem: string;
  readonly dir: string;
  readonly uid: number;
  readonly gid: number;
  /** The Windows domain `AUTH NTLM` accepts, when started with `ntlm`. */
  readonly ntlmDomain?: string;
}

export interface DovecotUsers {
  /** Creates (or re-creates with a new password) a user with an empty Maildir. */
  addUser(name: string, password: string): Promise<{ maildir: string }>;
  /** Drops a message into the user's Maildir `new/`, exactly these bytes (use CRLF line ends). */
  deliver(user: string, rawMessage: Buffer): Promise<{ path: string; uidl: string }>;
  /** Removes all of the user's mail (and Dovecot's index for it). */
  clear(user: string): Promise<void>;
  /** Messages currently in the user's Maildir (new + cur), as the server would list them. */
  messageCount(user: string): Promise<number>;
}

export interface Dovecot extends DovecotInfo, DovecotUsers {
  readonly info: DovecotInfo;
  readonly logPath: string;
  /** Stops the master (it takes its children along) and deletes the directory. Idempotent. */
  stop(): Promise<void>;
}

export interface StartDovecotOptions {
  /** Give up starting after this long. Default 10 s. */
  readonly startTimeoutMs?: number;
  /** Extra lines appended to dovecot.conf (e.g. `mail_debug = yes`). */
  readonly extraConfig?: string;
  /**
   * Offer `AUTH NTLM` (SPA) as an Exchange server in Windows domain `domain` does. Dovecot 2.3.17+
   * has no NTLM of its own, only through Samba's `ntlm_auth` helper and winbind; the instance
   * runs test/support/ntlm-helper.mjs in its place, which plays the domain controller (NTLMv2
   * only; a wrong domain, user or password is refused). addUser also stores the NT hash for it.
   */
  readonly ntlm?: { readonly domain: string };
  /**
   * Offer `AUTH XOAUTH2` and `OAUTHBEARER` through an `oauth2` passdb that validates tokens at this
   * RFC 7662 introspection endpoint (POST, `token=`); the answer's `username` names the account.
   */
  readonly oauth2?: { readonly introspectionUrl: string };
}

let userCounter = 0;
let deliveryCounter = 0;

/** A user name no other test (or worker) will pick. */
export function uniqueUser(prefix = 'user'): string {
  userCounter += 1;
  return `${prefix}-${process.pid}-${userCounter}-${randomBytes(3).toString('hex')}`;
}

export async function startDovecot(options: StartDovecotOptions = {}): Promise<Dovecot> {
  if (!existsSync(DOVECOT))
    throw new Error(`Dovecot is not installed (${DOVECOT} missing): run \`bash scripts/install-dovecot.sh\``);
  if (process.getuid?.() !== 0)
    throw new Error('The test Dovecot must run as root (it drops privileges to dovenull/dovecot itself)');
  reapStaleInstances();

  const { uid, gid } = systemUser('dovecot');
  systemUser('dovenull'); // fail early with a clear message if the package's users are missing
  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  // mkdtemp makes 0700; the unprivileged login and mail processes must traverse it.
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'owner.pid'), String(process.pid));
  for (const sub of ['run', 'state', 'passwd', 'home', 'ntlm']) await mkdir(join(dir, sub));
  for (const sub of ['passwd', 'ntlm']) {
    await chown(join(dir, sub), uid, gid);
    await chmod(join(dir, sub), 0o700);
  }
  if (options.ntlm) await installNtlmHelper(dir, options.ntlm.domain);
  const caCertPem = await makeCertificate(dir);

  const started = await startMaster(dir, options).catch(async (error: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw error;
  });
  const { ports, child } = started;

  const info: DovecotInfo = {
    host: '127.0.0.1',
    ...ports,
    caCertPem,
    dir,
    uid,
    gid,
    ...(options.ntlm ? { ntlmDomain: options.ntlm.domain } : {}),
  };
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  // Last resort if the test process exits without stop(): no orphan master, no leftover directory.
  const onExit = () => {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      process.removeListener('exit', onExit);
      child.kill('SIGTERM'); // the master stops its children and exits, usually within ~1 s
      const again = setTimeout(() => child.kill('SIGTERM'), 1_500);
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(again);
      clearTimeout(force);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  return { ...info, ...useDovecot(info), info, logPath: join(dir, 'dovecot.log'), stop };
}

/** User and mail management for an instance started elsewhere (e.g. by a globalSetup). */
export function useDovecot(info: DovecotInfo): DovecotInfo & DovecotUsers {
  const { dir, uid, gid } = info;
  const home = (user: string) => join(dir, 'home', checkName(user));
  const maildir = (user: string) => join(home(user), 'Maildir');

  const makeMaildir = async (user: string) => {
    for (const path of [
      home(user),
      maildir(user),
      ...['cur', 'new', 'tmp'].map((d) => join(maildir(user), d)),
    ]) {
      await mkdir(path, { recursive: true });
      await chown(path, uid, gid);
    }
  };

  return {
    ...info,
    async addUser(name, password) {
      if (/[:\r\n]/.test(password)) throw new Error('Test passwords must not contain ":" or line breaks');
      const file = join(dir, 'passwd', checkName(name));
      // Write then rename: Dovecot re-reads a passwd-file when it changes and must never see half of one.
      const temp = `${file}.${process.pid}.tmp`;
      await writeFile(temp, `${name}:{PLAIN}${password}::::::\n`, { mode: 0o600 });
      await chown(temp, uid, gid);
      await rename(temp, file);
      if (info.ntlmDomain) {
        // What the domain controller keeps: the NT hash, never the password.
        const hashFile = join(dir, 'ntlm', name.toLowerCase());
        await writeFile(`${hashFile}.tmp`, ntHash(password).toString('hex'), { mode: 0o600 });
        await chown(`${hashFile}.tmp`, uid, gid);
        await rename(`${hashFile}.tmp`, hashFile);
      }
      await makeMaildir(name);
      return { maildir: maildir(name) };
    },
    async deliver(user, rawMessage) {
      // Maildir delivery: write into tmp/, then rename into new/ (atomic: Dovecot never sees a partial file).
      // `,S=` tells Dovecot the exact size so it need not stat every file.
      deliveryCounter += 1;
      const now = process.hrtime.bigint();
      const base = `${now / 1_000_000_000n}.M${(now / 1000n) % 1_000_000n}P${process.pid}Q${deliveryCounter}.studio-test,S=${rawMessage.length}`;
      const temp = join(maildir(user), 'tmp', base);
      const path = join(maildir(user), 'new', base);
      await writeFile(temp, rawMessage, { mode: 0o600 });
      await chown(temp, uid, gid);
      await rename(temp, path);
      return { path, uidl: base }; // pop3_uidl_format = %g: the base file name
    },
    async clear(user) {
      await rm(maildir(user), { recursive: true, force: true });
      await makeMaildir(user);
    },
    async messageCount(user) {
      const [fresh, seen] = await Promise.all([
        readdir(join(maildir(user), 'new')),
        readdir(join(maildir(user), 'cur')),
      ]);
      return fresh.length + seen.length;
    },
  };
}

// ── internals ───────────────────────────────────────────────────────────────────────────────────

function checkName(name: string): string {
  if (!USER_NAME.test(name)) throw new Error(`Bad test user name ${JSON.stringify(name)} (use uniqueUser())`);
  return name;
}

function systemUser(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith(`${name}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined)
    throw new Error(`System user ${name} is missing: run \`bash scripts/install-dovecot.sh\``);
  return { uid: Number(uid), gid: Number(gid) };
}

async function makeCertificate(dir: string): Promise<string> {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return readFile(cert, 'utf8');
}

interface Ports {
  pop3Port: number;
  pop3sPort: number;
  imapPort: number;
  imapsPort: number;
}

function config(dir: string, ports: Ports, options: StartDovecotOptions): string {
  const mechanisms = ['plain', 'login', 'apop'];
  if (options.ntlm) mechanisms.push('ntlm');
  if (options.oauth2) mechanisms.push('xoauth2', 'oauthbearer');
  // The helper is Node, which reserves more address space than the auth service's default limit.
  const ntlm = options.ntlm
    ? `auth_use_winbind = yes\nauth_winbind_helper_path = ${dir}/ntlm-helper\nservice auth {\n  vsz_limit = 0\n}\n`
    : '';
  const oauth2 = options.oauth2
    ? `passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${dir}/oauth2.conf.ext
}
`
    : '';
  return `# Generated by test/support/dovecot.ts — private test instance.
instance_name = ${dir.split('/').pop()}
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
listen = 127.0.0.1
protocols = pop3 imap
default_login_user = dovenull
default_internal_user = dovecot
# Mail is owned by the system 'dovecot' user, whose uid is below the default limit of 500.
first_valid_uid = 1
first_valid_gid = 1
disable_plaintext_auth = no
# apop: the greeting then carries the <timestamp> APOP needs (passwords are stored in plain text).
auth_mechanisms = ${mechanisms.join(' ')}
${ntlm}# Wrong-password tests should not wait the default 2 s.
auth_failure_delay = 0
ssl = yes
ssl_cert = <${dir}/cert.pem
ssl_key = <${dir}/key.pem
mail_location = maildir:~/Maildir
pop3_uidl_format = %g
passdb {
  driver = passwd-file
  # One file per user: workers add users in parallel without rewriting a shared file.
  args = scheme=PLAIN ${dir}/passwd/%u
}
${oauth2}userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=${dir}/home/%u
}
service pop3-login {
  inet_listener pop3 {
    port = ${ports.pop3Port}
  }
  inet_listener pop3s {
    port = ${ports.pop3sPort}
    ssl = yes
  }
}
service imap-login {
  inet_listener imap {
    port = ${ports.imapPort}
  }
  inet_listener imaps {
    port = ${ports.imapsPort}
    ssl = yes
  }
}
${options.extraConfig ?? ''}
`;
}

/**
 * The NTLM helper where Dovecot's auth process (user dovecot) can run it: a copy of
 * ntlm-helper.mjs in the instance directory and a wrapper that starts it with this Node.
 */
async function installNtlmHelper(dir: string, domain: string): Promise<void> {
  if (!/^[A-Z][A-Z0-9-]{0,14}$/.test(domain)) throw new Error('ntlm.domain: a NetBIOS name such as CORP');
  const script = join(dir, 'ntlm-helper.mjs');
  await writeFile(script, await readFile(new URL('./ntlm-helper.mjs', import.meta.url)), { mode: 0o644 });
  const wrapper = `#!/bin/sh\nexec '${process.execPath}' '${script}' '${dir}/ntlm' '${domain}' "$@"\n`;
  await writeFile(join(dir, 'ntlm-helper'), wrapper, { mode: 0o755 });
}

/** The oauth2 passdb's settings: validate by RFC 7662 introspection, the account in `username`. */
function oauth2Config(introspectionUrl: string): string {
  return `introspection_mode = post
introspection_url = ${introspectionUrl}
username_attribute = username
active_attribute = active
active_value = true
`;
}

async function startMaster(
  dir: string,
  options: StartDovecotOptions,
): Promise<{ ports: Ports; child: ReturnType<typeof spawn> }> {
  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  let lastError: unknown;
  // Free ports are found by binding port 0 and releasing it; another process may grab one in between,
  // so a failed bind is retried with fresh ports.
  for (let attempt = 0; attempt < 3 && Date.now() < deadline; attempt++) {
    const [pop3Port, pop3sPort, imapPort, imapsPort] = await freePorts(4);
    const ports = { pop3Port: pop3Port!, pop3sPort: pop3sPort!, imapPort: imapPort!, imapsPort: imapsPort! };
    const conf = join(dir, 'dovecot.conf');
    await writeFile(conf, config(dir, ports, options));
    if (options.oauth2)
      await writeFile(join(dir, 'oauth2.conf.ext'), oauth2Config(options.oauth2.introspectionUrl));
    // -F: stay in the foreground as our child, so we hold its pid and it cannot outlive us unnoticed.
    const child = spawn(DOVECOT, ['-F', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const failure = new Promise<never>((_, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        reject(new Error(`dovecot exited (${code ?? signal}): ${stderr}`)),
      );
    });
    failure.catch(() => {});
    try {
      // Ready = listening and master.pid written. Before the pid file a SIGTERM can go unheeded,
      // which would make an immediate stop() wait for the SIGKILL fallback.
      await Promise.race([
        waitForPorts(Object.values(ports), join(dir, 'run', 'master.pid'), deadline),
        failure,
      ]);
      return { ports, child };
    } catch (error) {
      lastError = error;
      child.kill('SIGTERM');
      const log = await readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => '');
      if (!/Address already in use/.test(`${stderr}${log}`)) break;
      await rm(join(dir, 'dovecot.log'), { force: true });
    }
  }
  const log = await readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => '');
  throw new Error(`Could not start the test Dovecot: ${String(lastError)}\n${log}`);
}

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      return server;
    }),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

async function waitForPorts(ports: number[], pidFile: string, deadline: number): Promise<void> {
  const ready = async () =>
    existsSync(pidFile) &&
    (await Promise.all(ports.map(canConnect))).every(Boolean) &&
    (await greets(ports[0]!));
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`ports ${ports.join(', ')} did not open in time`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** True once a login process answers with a POP3 greeting (the services behind the port are up). */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('data', (chunk: Buffer) => done(chunk.toString('latin1').startsWith('+OK')));
    socket.once('error', () => done(false));
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Kills masters and removes directories left behind by test processes that died without cleanup. */
function reapStaleInstances(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const owner = Number(readText(join(dir, 'owner.pid')));
    if (owner ? isAlive(owner) : isRecent(dir)) continue; // no owner.pid yet: maybe being created right now
    const master = Number(readText(join(dir, 'run', 'master.pid')));
    if (master && isAlive(master) && readText(`/proc/${master}/comm`) === 'dovecot') {
      try {
        process.kill(master, 'SIGTERM');
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

function isRecent(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs < 60_000;
  } catch {
    return true;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
