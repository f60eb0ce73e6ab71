/** Presigned S3 PUT URLs for attachment uploads (the browser sends the file straight to S3). */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { UploadUrls } from '../attachments.ts';

export class S3Uploads implements UploadUrls {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  uploadUrl(key: string, contentType: string, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(
      this.client,
      new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }),
      {
        expiresIn: expiresInSeconds,
      },
    );
  }
}
