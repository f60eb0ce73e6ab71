import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type BlobStore, InvalidBlobError, isHeaderSafeContentType } from '#lib/ports/index';

/** Local twin of the S3 bucket: files under `dir`, written to a temp name and renamed so a crash leaves no half file. */
export class LocalBlobStore implements BlobStore {
  private readonly root: string;
  constructor(dir: string) {
    this.root = resolve(dir);
  }

  private path(key: string): string {
    const p = resolve(join(this.root, key));
    if (!p.startsWith(this.root + sep)) throw new Error(`Blob key "${key}" leaves the store.`);
    return p;
  }

  async put(key: string, body: Buffer | string | Readable, contentType?: string): Promise<{ size: number }> {
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
}
