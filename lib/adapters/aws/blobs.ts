import { pipeline, Readable, Transform } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  NotFound,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { contentDisposition } from '#lib/adapters/download';
import {
  type BlobStore,
  type DownloadOptions,
  InvalidBlobError,
  isHeaderSafeContentType,
} from '#lib/ports/index';

/** S3 bucket for raw mail, bodies and attachments. Streams go up in parts, never whole in memory. */
export class S3BlobStore implements BlobStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  async put(key: string, body: Buffer | string | Readable, contentType?: string): Promise<{ size: number }> {
    if (contentType !== undefined && !isHeaderSafeContentType(contentType)) {
      if (body instanceof Readable) body.resume();
      throw new InvalidBlobError(`Content-Type ${JSON.stringify(contentType)} is not a valid header value.`);
    }
    let size = 0;
    let counted: Buffer | string | Readable = body;
    if (body instanceof Readable) {
      // pipeline: the source has an error listener from here on, and its error fails the upload.
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          size += chunk.length;
          done(null, chunk);
        },
      });
      counted = pipeline(body, counter, () => {});
    } else {
      size = Buffer.byteLength(body);
    }
    await new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: counted, ContentType: contentType },
      queueSize: 2,
    }).done();
    return { size };
  }

  async get(key: string): Promise<Readable> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return out.Body as Readable;
  }

  async getBuffer(key: string): Promise<Buffer> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return Buffer.from(
      await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (error) {
      if (error instanceof NotFound || error instanceof NoSuchKey) return false;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** A presigned GET; S3 answers it with the given file name and type (response-content-* overrides). */
  async downloadUrl(key: string, options: DownloadOptions): Promise<string> {
    return getSignedUrl(
      this.client,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ResponseContentDisposition: contentDisposition(options.filename),
        ResponseContentType: options.contentType,
      }),
      { expiresIn: options.expiresInSeconds },
    );
  }
}
