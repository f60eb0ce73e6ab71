import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { SecretStore } from '#lib/ports/index';

/** Secrets Manager: one secret per credential, named under the stack's prefix (IAM is scoped to it). */
export class AwsSecretStore implements SecretStore {
  constructor(
    private readonly client: SecretsManagerClient,
    private readonly prefix: string,
    /** Days AWS keeps a deleted secret recoverable. */
    private readonly recoveryWindowDays = 7,
  ) {}

  async create(name: string, value: string, tags: Record<string, string> = {}): Promise<string> {
    const out = await this.client.send(
      new CreateSecretCommand({
        Name: `${this.prefix}${name}`,
        SecretString: value,
        Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
      }),
    );
    if (!out.ARN) throw new Error('Secrets Manager returned no ARN for a new secret.');
    return out.ARN;
  }

  async update(ref: string, value: string): Promise<void> {
    await this.client.send(new PutSecretValueCommand({ SecretId: ref, SecretString: value }));
  }

  async get(ref: string): Promise<string> {
    const out = await this.client.send(new GetSecretValueCommand({ SecretId: ref }));
    if (out.SecretString === undefined) throw new Error('The stored credential has no text value.');
    return out.SecretString;
  }

  async scheduleDeletion(ref: string): Promise<void> {
    await this.client.send(
      new DeleteSecretCommand({ SecretId: ref, RecoveryWindowInDays: this.recoveryWindowDays }),
    );
  }
}
