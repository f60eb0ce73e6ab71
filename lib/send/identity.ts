/**
 * Who may send as whom through SES. One SES account serves every studio, so a From address goes
 * out through SES only when a verified sender identity *of that studio* covers it, and is sent
 * with that identity's ARN (FromEmailAddressIdentityArn), which IAM and SES check again. SMTP and
 * Gmail need none of this: the provider's own logon decides what the studio may send as.
 */
import type { Repositories } from '#lib/data/repositories';
import { ValidationError } from '#lib/domain/errors';
import { identityCovers, type SenderIdentity } from '#lib/domain/model';
import type { EmailIdentities } from '#lib/ports/index';

/**
 * The ARN to send `from` with, or a 400 naming `emailAddress` that lists the studio's
 * identities. A stored "not verified" is checked again with SES (it may have verified since).
 */
export async function sesIdentityArn(
  repos: Pick<Repositories, 'senderIdentities'>,
  identities: EmailIdentities,
  sid: string,
  from: string,
): Promise<string> {
  const all = await repos.senderIdentities.list(sid);
  // An address identity is more specific than its domain: prefer it.
  const covering = all
    .filter((i) => identityCovers(i.identity, from))
    .sort((a, b) => Number(b.type === 'address') - Number(a.type === 'address'));
  for (const candidate of covering) {
    if (candidate.verified) return candidate.arn;
    const status = await identities.get(candidate.identity);
    if (status?.verified) {
      await repos.senderIdentities
        .replace(
          sid,
          candidate.id,
          { ...strip(candidate), verified: true, arn: status.arn },
          candidate.version,
        )
        .catch(() => {}); // only a cache of SES's answer; the next send reads SES again
      return status.arn;
    }
  }
  throw ValidationError.field('emailAddress', refusal(from, all));
}

function strip(i: SenderIdentity): SenderIdentity {
  return { id: i.id, identity: i.identity, type: i.type, verified: i.verified, arn: i.arn };
}

function refusal(from: string, all: SenderIdentity[]): string {
  const list = all.map((i) => `${i.identity} (${i.verified ? 'verified' : 'not verified yet'})`);
  const known = list.length
    ? `This studio's sender identities: ${list.join(', ')}.`
    : 'This studio has no sender identities yet.';
  return (
    `${from} is not covered by a verified sender identity of this studio, so Amazon SES may not send from it. ` +
    `${known} Use an address at a verified identity, or add one with POST /sender-identities and publish its DNS records.`
  );
}
