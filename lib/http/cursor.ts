/**
 * Paging cursors as the edge hands them out: opaque and signed, bound to the studio and the list
 * they came from. A repository's cursor (a DynamoDB key) never leaves the edge as it is: on the
 * way out it is encrypted (AES-256-CTR) and signed (HMAC-SHA256, encrypt-then-MAC) together with
 * its binding; on the way in, a cursor that was forged, altered, or issued for another studio or
 * another list (route, path parameters, filters) is a 400 naming `cursor`, so DynamoDB never sees
 * a start key it would reject (a 500). The keys derive from one configured secret
 * (`CURSOR_KEY`, lib/config.ts).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { ValidationError } from '#lib/domain/errors';

/** The longest cursor accepted; ours are far shorter (a DynamoDB key of a few hundred bytes). */
export const MAX_CURSOR_LENGTH = 2048;
const VERSION = 1;
const IV = 16;
const MAC = 32;

export interface CursorBinding {
  studioId: string;
  /** The list: route key, path parameters and filters (everything but `cursor` and `limit`). */
  list: string;
}

/** The binding of one request: its route, path parameters and its filters, canonically. */
export function listOf(
  routeKey: string,
  params: Record<string, unknown>,
  query: Record<string, unknown>,
): string {
  const sorted = (o: Record<string, unknown>) =>
    Object.keys(o)
      .filter((k) => k !== 'cursor' && k !== 'limit' && o[k] !== undefined)
      .sort()
      .map((k) => [k, o[k]]);
  return JSON.stringify([routeKey, sorted(params), sorted(query)]);
}

export class CursorCodec {
  private readonly enc: Buffer;
  private readonly mac: Buffer;

  constructor(secret: string) {
    if (secret.length < 16) throw new Error('The cursor key must be at least 16 characters long.');
    const derive = (info: string) => Buffer.from(hkdfSync('sha256', secret, 'studio-mail cursors', info, 32));
    this.enc = derive('encrypt');
    this.mac = derive('sign');
  }

  private sign(binding: CursorBinding, body: Buffer): Buffer {
    return createHmac('sha256', this.mac)
      .update(JSON.stringify([binding.studioId, binding.list]))
      .update('\n')
      .update(body)
      .digest();
  }

  /** The cursor the client sees for a repository's cursor. */
  seal(inner: string, binding: CursorBinding): string {
    const iv = randomBytes(IV);
    const cipher = createCipheriv('aes-256-ctr', this.enc, iv);
    const body = Buffer.concat([Buffer.from([VERSION]), iv, cipher.update(inner, 'utf8'), cipher.final()]);
    return Buffer.concat([body, this.sign(binding, body)]).toString('base64url');
  }

  /** The repository's cursor inside `outer`; a 400 naming `cursor` unless this edge issued it for `binding`. */
  open(outer: string, binding: CursorBinding): string {
    const refuse = () =>
      ValidationError.field(
        'cursor',
        'is not a cursor this list gave out (it belongs to another list, was changed, or is not one); start again without it.',
      );
    if (outer.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(outer)) throw refuse();
    const raw = Buffer.from(outer, 'base64url');
    if (raw.length < 1 + IV + MAC + 1 || raw[0] !== VERSION) throw refuse();
    const body = raw.subarray(0, raw.length - MAC);
    const mac = raw.subarray(raw.length - MAC);
    if (!timingSafeEqual(mac, this.sign(binding, body))) throw refuse();
    const decipher = createDecipheriv('aes-256-ctr', this.enc, body.subarray(1, 1 + IV));
    return Buffer.concat([decipher.update(body.subarray(1 + IV)), decipher.final()]).toString('utf8');
  }
}
