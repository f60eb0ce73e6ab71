/** SES sending limits from GetAccount: MaxSendRate and what is left of Max24HourSend (cached a minute). */
import { GetAccountCommand, type SESv2Client } from '@aws-sdk/client-sesv2';
import type { ProviderQuota, SendLimits } from '../ports.ts';

/** SES's rate for a new account out of the sandbox; used when GetAccount cannot be read. */
const FALLBACK: SendLimits = { ratePerSecond: 1 };

export class SesQuota implements ProviderQuota {
  private cached: { at: number; limits: SendLimits } | undefined;

  constructor(
    private readonly client: () => Promise<SESv2Client>,
    private readonly onError: (error: unknown) => void = () => {},
    private readonly ttlMs = 60_000,
  ) {}

  async ses(): Promise<SendLimits> {
    if (this.cached && Date.now() - this.cached.at < this.ttlMs) return this.cached.limits;
    try {
      const out = await (await this.client()).send(new GetAccountCommand({}));
      const q = out.SendQuota;
      const limits: SendLimits = {
        ratePerSecond: q?.MaxSendRate && q.MaxSendRate > 0 ? q.MaxSendRate : FALLBACK.ratePerSecond,
        ...(q?.Max24HourSend !== undefined && q.Max24HourSend >= 0
          ? { remaining24h: Math.max(0, Math.floor(q.Max24HourSend - (q.SentLast24Hours ?? 0))) }
          : {}),
      };
      this.cached = { at: Date.now(), limits };
      return limits;
    } catch (error) {
      this.onError(error);
      return FALLBACK;
    }
  }
}
