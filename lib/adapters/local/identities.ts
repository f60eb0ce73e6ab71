/**
 * The local twin of SES identities (the local SES has no identity API): identities live in the
 * table under their own partition, start pending and become verified (with DKIM SUCCESS) when
 * `recheck` is called, standing in for SES finding the published DNS records.
 */
import { createHash } from 'node:crypto';
import type { Table } from '#lib/data/table';
import type { EmailIdentities, IdentityStatus } from '#lib/ports/index';

const PK = 'LOCALSES';
const sk = (identity: string) => `IDENTITY#${identity}`;

interface LocalIdentity {
  verified: boolean;
}

export class LocalIdentities implements EmailIdentities {
  constructor(private readonly table: Table) {}

  private status(identity: string, item: LocalIdentity): IdentityStatus {
    const address = identity.includes('@');
    // Deterministic tokens, so `npm start` shows the same DNS records after a restart.
    const tokens = address
      ? []
      : [1, 2, 3].map((n) => createHash('sha256').update(`${identity}#${n}`).digest('hex').slice(0, 32));
    return {
      type: address ? 'address' : 'domain',
      verified: item.verified,
      dkimStatus: address ? 'NOT_STARTED' : item.verified ? 'SUCCESS' : 'PENDING',
      dkimTokens: tokens,
      arn: `arn:aws:ses:local:000000000000:identity/${identity}`,
    };
  }

  async create(identity: string): Promise<IdentityStatus> {
    const existing = await this.get(identity);
    if (existing) return existing;
    await this.table.put({ PK, SK: sk(identity), entity: 'LOCALSES', verified: false });
    return this.status(identity, { verified: false });
  }

  async get(identity: string): Promise<IdentityStatus | undefined> {
    const item = await this.table.get<LocalIdentity>({ PK, SK: sk(identity) });
    return item ? this.status(identity, item) : undefined;
  }

  async delete(identity: string): Promise<void> {
    await this.table.delete({ PK, SK: sk(identity) });
  }

  async recheck(identity: string): Promise<IdentityStatus | undefined> {
    if (!(await this.get(identity))) return undefined;
    await this.table.put({ PK, SK: sk(identity), entity: 'LOCALSES', verified: true });
    return this.status(identity, { verified: true });
  }
}
