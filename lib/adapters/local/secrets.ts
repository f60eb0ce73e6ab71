import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SecretStore } from '#lib/ports/index';

/**
 * Local twin of Secrets Manager: each secret is a file of AES-256-GCM ciphertext under `dir`,
 * keyed by a random key kept beside them (mode 0600). Keeps passwords out of plain files and
 * out of DynamoDB during `npm start`, the same as in AWS.
 */
export class LocalSecretStore implements SecretStore {
  private key: Buffer | undefined;

  constructor(
    private readonly dir: string,
    private readonly prefix: string,
  ) {}

  private masterKey(): Buffer {
    if (this.key) return this.key;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, '.key');
    if (!existsSync(path)) writeFileSync(path, randomBytes(32), { mode: 0o600, flag: 'wx' });
    this.key = readFileSync(path);
    return this.key;
  }

  private file(ref: string): string {
    const name = ref.replace(/^local:secret:/, '');
    return join(this.dir, `${Buffer.from(name).toString('base64url')}.secret`);
  }

  async create(name: string, value: string): Promise<string> {
    const ref = `local:secret:${this.prefix}${name}`;
    if (existsSync(this.file(ref))) throw new Error(`A secret named ${this.prefix}${name} already exists.`);
    this.write(ref, value);
    return ref;
  }

  async update(ref: string, value: string): Promise<void> {
    if (!existsSync(this.file(ref))) throw new Error('That secret does not exist.');
    this.write(ref, value);
  }

  async get(ref: string): Promise<string> {
    const blob = readFileSync(this.file(ref));
    const decipher = createDecipheriv('aes-256-gcm', this.masterKey(), blob.subarray(0, 12));
    decipher.setAuthTag(blob.subarray(12, 28));
    return Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()]).toString('utf8');
  }

  async scheduleDeletion(ref: string): Promise<void> {
    rmSync(this.file(ref), { force: true });
  }

  private write(ref: string, value: string): void {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.masterKey(), iv);
    const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    writeFileSync(this.file(ref), Buffer.concat([iv, cipher.getAuthTag(), body]), { mode: 0o600 });
  }
}
