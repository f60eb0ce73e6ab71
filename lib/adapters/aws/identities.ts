/** SES v2 email identities (CreateEmailIdentity with Easy DKIM, GetEmailIdentity, DeleteEmailIdentity). */
import {
  CreateEmailIdentityCommand,
  DeleteEmailIdentityCommand,
  GetEmailIdentityCommand,
  NotFoundException,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import type { EmailIdentities, IdentityStatus } from '#lib/ports/index';

/** `arn:aws:ses:<region>:<account>:identity/<identity>`; SES does not return it, so it is built. */
export function identityArn(region: string, accountId: string, identity: string): string {
  return `arn:aws:ses:${region}:${accountId}:identity/${identity}`;
}

export class SesIdentities implements EmailIdentities {
  constructor(
    private readonly client: SESv2Client,
    private readonly region: string,
    private readonly accountId: string,
  ) {}

  private status(
    identity: string,
    r: {
      IdentityType?: string;
      VerifiedForSendingStatus?: boolean;
      DkimAttributes?: { Status?: string; Tokens?: string[] };
    },
  ): IdentityStatus {
    return {
      type: r.IdentityType === 'EMAIL_ADDRESS' ? 'address' : 'domain',
      verified: r.VerifiedForSendingStatus === true,
      dkimStatus: r.DkimAttributes?.Status ?? 'NOT_STARTED',
      dkimTokens: r.DkimAttributes?.Tokens ?? [],
      arn: identityArn(this.region, this.accountId, identity),
    };
  }

  async create(identity: string): Promise<IdentityStatus> {
    try {
      const r = await this.client.send(new CreateEmailIdentityCommand({ EmailIdentity: identity }));
      return this.status(identity, r);
    } catch (error) {
      // Created before (a retried request): SES answers AlreadyExistsException; read it instead.
      if ((error as { name?: string }).name !== 'AlreadyExistsException') throw error;
      const found = await this.get(identity);
      if (!found) throw error;
      return found;
    }
  }

  async get(identity: string): Promise<IdentityStatus | undefined> {
    try {
      const r = await this.client.send(new GetEmailIdentityCommand({ EmailIdentity: identity }));
      return this.status(identity, r);
    } catch (error) {
      if (error instanceof NotFoundException || (error as { name?: string }).name === 'NotFoundException')
        return undefined;
      throw error;
    }
  }

  async delete(identity: string): Promise<void> {
    try {
      await this.client.send(new DeleteEmailIdentityCommand({ EmailIdentity: identity }));
    } catch (error) {
      if ((error as { name?: string }).name !== 'NotFoundException') throw error;
    }
  }

  recheck(identity: string): Promise<IdentityStatus | undefined> {
    return this.get(identity);
  }
}
