/**
 * Signed links in bulk email: unsubscribe (one-click, RFC 8058), the open pixel and click
 * redirects. A token is `base64url(JSON payload).base64url(HMAC-SHA256)`; the endpoints serve
 * only tokens signed with the deployment's key, so nobody can unsubscribe (or count opens for)
 * someone else by editing a link.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface LinkPayload {
  /** studio */
  s: string;
  /** job */
  j?: string;
  /** recipient key */
  r?: string;
  /** address */
  a: string;
  /** purpose: unsubscribe, open, click, file upload (local runner) */
  p: 'u' | 'o' | 'c' | 'f';
  /** expiry (epoch seconds), for uploads */
  e?: number;
  /** click target */
  u?: string;
}

export class LinkSigner {
  private key: Promise<Buffer> | undefined;

  constructor(
    private readonly loadKey: () => Promise<string>,
    /** Base URL of the public API, without a trailing slash. */
    readonly baseUrl: string,
  ) {}

  private async hmac(data: string): Promise<Buffer> {
    // A failed read is not kept: the next link tries again instead of failing until a cold start.
    this.key ??= this.loadKey()
      .then((k) => Buffer.from(k))
      .catch((error: unknown) => {
        this.key = undefined;
        throw error;
      });
    return createHmac('sha256', await this.key)
      .update(data)
      .digest();
  }

  async sign(payload: LinkPayload): Promise<string> {
    const data = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${data}.${(await this.hmac(data)).toString('base64url')}`;
  }

  /** The payload of a token signed here, or undefined for anything else. */
  async verify(token: string): Promise<LinkPayload | undefined> {
    const [data, mac, extra] = token.split('.');
    if (!data || !mac || extra !== undefined) return undefined;
    const expected = await this.hmac(data);
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      const p = JSON.parse(Buffer.from(data, 'base64url').toString('utf8')) as LinkPayload;
      return typeof p.s === 'string' && typeof p.a === 'string' ? p : undefined;
    } catch {
      return undefined;
    }
  }

  async openUrl(p: Omit<LinkPayload, 'p'>, baseUrl = this.baseUrl): Promise<string> {
    return `${baseUrl}/t/o/${await this.sign({ ...p, p: 'o' })}`;
  }

  async clickUrl(p: Omit<LinkPayload, 'p' | 'u'>, url: string, baseUrl = this.baseUrl): Promise<string> {
    return `${baseUrl}/t/c/${await this.sign({ ...p, p: 'c', u: url })}`;
  }

  async unsubscribeUrl(p: Omit<LinkPayload, 'p'>, baseUrl = this.baseUrl): Promise<string> {
    return `${baseUrl}/unsubscribe/${await this.sign({ ...p, p: 'u' })}`;
  }
}
