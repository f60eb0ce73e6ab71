import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { contentDisposition } from '#lib/adapters/download';
import {
  type BlobStore,
  type DownloadOptions,
  InvalidBlobError,
  isHeaderSafeContentType,
} from '#lib/ports/index';

/** The local runner's path for signed downloads (the twin of a presigned S3 URL). */
export const LOCAL_DOWNLOAD_PATH = '/local/blob';

export interface LocalBlobOptions {
  /** Where the local runner serves LOCAL_DOWNLOAD_PATH, e.g. `http://127.0.0.1:3000`. */
  baseUrl?: string;
  /** HMAC key of download URLs; default random per process (URLs die with the process). */
  signingKey?: Buffer;
}

/** A download URL that is forged, expired or points at nothing; `status` is the HTTP answer. */
export class DownloadRefusedError extends Error {
  override readonly name = 'DownloadRefusedError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Local twin of the S3 bucket: files under `dir`, written to a temp name and renamed so a crash leaves no half file. */
export class LocalBlobStore implements BlobStore {
  private readonly root: string;
  private readonly signingKey: Buffer;
  baseUrl: string | undefined;

  constructor(dir: string, options: LocalBlobOptions = {}) {
    this.root = resolve(dir);
    this.baseUrl = options.baseUrl;
    this.signingKey = options.signingKey ?? randomBytes(32);
  }

  private path(key: string): string {
    const p = resolve(join(this.root, key));
    if (!p.startsWith(this.root + sep)) throw new Error(`Blob key "${key}" leaves the store.`);
    return p;
  }

  /** Folders made already: a put into one skips the mkdir (bulk email keeps a copy of each message). */
  private readonly made = new Set<string>();

  async put(key: string, body: Buffer | string | Readable, contentType?: string): Promise<{ size: number }> {
    if (!(body instanceof Readable)) return this.putBytes(key, Buffer.from(body), contentType);
    const source = body instanceof Readable ? body : Readable.from([Buffer.from(body)]);
    // Listen before the first await: a stream destroyed while we wait for mkdir must not emit an
    // 'error' nobody hears (that ends the process). pipeline() below reports it.
    let early: unknown;
    const onEarly = (error: unknown) => {
      early ??= error;
    };
    source.on('error', onEarly);
    try {
      // As S3 would: a header value it refuses fails the put (S3 answers 400).
      if (contentType !== undefined && !isHeaderSafeContentType(contentType)) {
        throw new InvalidBlobError(
          `Content-Type ${JSON.stringify(contentType)} is not a valid header value.`,
        );
      }
      const target = this.path(key);
      await mkdir(dirname(target), { recursive: true });
      if (early !== undefined || source.destroyed) {
        throw early ?? new Error(`The stream for blob "${key}" ended before it was stored.`);
      }
      const temp = `${target}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`;
      let size = 0;
      try {
        await pipeline(
          source,
          async function* count(chunks: AsyncIterable<Buffer>) {
            for await (const chunk of chunks) {
              size += chunk.length;
              yield chunk;
            }
          },
          createWriteStream(temp),
        );
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
      await rename(temp, target);
      return { size };
    } catch (error) {
      // Whatever failed, nobody reads the source any more: drain it, so a writer into it (a
      // parser waiting for its reader) is not left waiting.
      if (!source.destroyed) source.resume();
      throw error;
    } finally {
      source.off('error', onEarly);
      // pipeline may leave late errors behind (a destroy after it settled): keep them heard.
      source.on('error', () => {});
    }
  }

  /** Bytes in hand: one write to a temp file and a rename, without a stream pipeline. */
  private async putBytes(key: string, bytes: Buffer, contentType?: string): Promise<{ size: number }> {
    if (contentType !== undefined && !isHeaderSafeContentType(contentType))
      throw new InvalidBlobError(`Content-Type ${JSON.stringify(contentType)} is not a valid header value.`);
    const target = this.path(key);
    const dir = dirname(target);
    if (!this.made.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.made.add(dir);
    }
    const temp = `${target}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await writeFile(temp, bytes).catch(async (error: NodeJS.ErrnoException) => {
        // The folder was removed meanwhile (a test cleared the store): make it again.
        if (error.code !== 'ENOENT') throw error;
        await mkdir(dir, { recursive: true });
        await writeFile(temp, bytes);
      });
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    return { size: bytes.length };
  }

  async get(key: string): Promise<Readable> {
    const p = this.path(key);
    await stat(p);
    return createReadStream(p);
  }

  async getBuffer(key: string): Promise<Buffer> {
    return readFile(this.path(key));
  }

  async exists(key: string): Promise<boolean> {
    try {
      await stat(this.path(key));
      return true;
    } catch {
      return false;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  /** A URL of the local runner, HMAC-signed over key, expiry, name and type, like a presigned S3 GET. */
  async downloadUrl(key: string, options: DownloadOptions): Promise<string> {
    if (!this.baseUrl)
      throw new Error('The local blob store has no download base URL (the local runner sets it).');
    this.path(key); // refuses a key outside the store now, not when the URL is used
    const params = new URLSearchParams({
      key,
      expires: String(Math.floor(Date.now() / 1000) + options.expiresInSeconds),
    });
    if (options.filename) params.set('filename', options.filename);
    if (options.contentType) params.set('type', options.contentType);
    params.set('signature', this.sign(params));
    return `${this.baseUrl}${LOCAL_DOWNLOAD_PATH}?${params}`;
  }

  private sign(params: URLSearchParams): string {
    const fields = ['key', 'expires', 'filename', 'type'].map((f) => `${f}=${params.get(f) ?? ''}`);
    return createHmac('sha256', this.signingKey).update(fields.join('\n')).digest('base64url');
  }

  /** Checks a download URL's signature and expiry; the object's stream and headers, or a refusal. */
  async openDownload(search: URLSearchParams) {
    const given = Buffer.from(search.get('signature') ?? '');
    const wanted = Buffer.from(this.sign(search));
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted))
      throw new DownloadRefusedError(403, 'The download link is not valid.');
    if (Number(search.get('expires')) * 1000 < Date.now())
      throw new DownloadRefusedError(403, 'The download link has expired; ask for a new one.');
    const key = search.get('key') ?? '';
    let size: number;
    try {
      size = (await stat(this.path(key))).size;
    } catch {
      throw new DownloadRefusedError(404, 'The file of this download link no longer exists.');
    }
    return {
      stream: createReadStream(this.path(key)),
      size,
      contentType: search.get('type') || 'application/octet-stream',
      disposition: contentDisposition(search.get('filename') || undefined),
    };
  }
}

/** Serves LOCAL_DOWNLOAD_PATH for `npm start` and the tests (S3 serves presigned URLs in AWS). */
export async function serveLocalDownload(
  store: LocalBlobStore,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  try {
    const file = await store.openDownload(url.searchParams);
    res.writeHead(200, {
      'content-type': file.contentType,
      'content-length': String(file.size),
      'content-disposition': file.disposition,
    });
    await pipeline(file.stream, res);
  } catch (error) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status = error instanceof DownloadRefusedError ? error.status : 500;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'download_refused', message: (error as Error).message } }));
  }
}
