import { Client, CopyDestinationOptions, CopySourceOptions } from 'minio';
import type { Readable } from 'node:stream';
import { FileNotFoundError, checkFileKey, type FileObjectInfo, type FileStore, type PutOptions, type SignedUrlOptions, type StorageClass } from '../../runtime/index.ts';
import { s3Settings, type S3Settings, type S3SettingsInput } from './options.ts';
import { backendFailure, byKey, classOf, contentDisposition, presignSeconds } from './shared.ts';

function isNotFound(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'NotFound' || code === 'NoSuchKey';
}

/**
 * A FileStore on the `minio` client, for an on-premises MinIO: the secondary
 * provider of a ReplicatedFileStore (docs/files.md). It talks to its own
 * server and never shares calls with S3FileStore's client: each client has
 * one provider. Needs an explicit endpoint and keys.
 *
 * put: the body is cut into parts of `partSizeBytes` (one part in memory at a
 * time): a body that fits in one part is one PutObject; a larger one is a
 * multipart upload (initiate, uploadPart, complete) that is aborted when the
 * body or a part fails, so no object appears. The parts are driven here, not
 * by the client's own `putObject(stream)`, because that looks for an earlier
 * upload to resume with ListMultipartUploads, which not every S3-compatible
 * server has (s3rver does not).
 */
export class MinioFileStore implements FileStore {
  readonly name: string;
  readonly settings: S3Settings;
  private readonly client: Client;

  constructor(settings: S3SettingsInput, opts: { name?: string } = {}) {
    this.settings = s3Settings(settings);
    this.name = opts.name ?? 'minio';
    const s = this.settings;
    if (!s.endpoint || !s.accessKeyId || !s.secretAccessKey) throw new TypeError('MinioFileStore: endpoint, accessKeyId and secretAccessKey are required');
    const u = new URL(s.endpoint);
    const useSSL = u.protocol === 'https:';
    this.client = new Client({
      endPoint: u.hostname, port: u.port ? Number(u.port) : useSSL ? 443 : 80, useSSL,
      accessKey: s.accessKeyId, secretKey: s.secretAccessKey, region: s.region, pathStyle: s.forcePathStyle, partSize: s.partSizeBytes,
    });
  }

  private fail(what: string, err: unknown): never {
    backendFailure(this.name, what, err);
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<FileObjectInfo> {
    checkFileKey(key);
    const b = this.settings.bucket;
    const partSize = this.settings.partSizeBytes;
    const headers: Record<string, string> = { 'Content-Type': opts.contentType };
    if (opts.storageClass && opts.storageClass !== 'STANDARD') headers['x-amz-storage-class'] = opts.storageClass;
    let uploadId: string | undefined;
    const etags: Array<{ part: number; etag: string }> = [];
    let size = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flushPart = async (buf: Buffer) => {
      uploadId ??= await this.client.initiateNewMultipartUpload(b, key, headers);
      const part = etags.length + 1;
      const r = await this.client.uploadPart({ bucketName: b, objectName: key, uploadID: uploadId, partNumber: part, headers: {} }, buf);
      etags.push({ part, etag: r.etag });
    };
    let stage = 'body';
    try {
      for await (const c of body) {
        size += c.length;
        pending.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
        pendingBytes += c.length;
        while (pendingBytes >= partSize) {
          const all = Buffer.concat(pending);
          stage = 'part';
          await flushPart(all.subarray(0, partSize));
          stage = 'body';
          pending = pendingBytes > partSize ? [all.subarray(partSize)] : [];
          pendingBytes -= partSize;
        }
      }
      const rest = Buffer.concat(pending);
      stage = 'commit';
      if (uploadId === undefined) {
        await this.client.putObject(b, key, rest, rest.length, headers); // fits in one part: one PUT, nothing to clean up
      } else {
        if (rest.length) await flushPart(rest);
        await this.client.completeMultipartUpload(b, key, uploadId, etags);
      }
    } catch (err) {
      // the parts uploaded so far are dropped: no object appears under the key
      if (uploadId !== undefined) await this.client.abortMultipartUpload(b, key, uploadId).catch(() => {});
      if (stage === 'body') throw err;
      this.fail(`put ${key}`, err);
    }
    return { key, size, storageClass: opts.storageClass ?? 'STANDARD', contentType: opts.contentType };
  }

  async get(key: string): Promise<{ body: Readable; info: FileObjectInfo }> {
    const info = await this.head(key);
    if (!info) throw new FileNotFoundError(key);
    try {
      return { body: await this.client.getObject(this.settings.bucket, key), info };
    } catch (err) {
      if (isNotFound(err)) throw new FileNotFoundError(key);
      this.fail(`get ${key}`, err);
    }
  }

  async head(key: string): Promise<FileObjectInfo | null> {
    checkFileKey(key);
    try {
      const s = await this.client.statObject(this.settings.bucket, key);
      const meta = s.metaData as Record<string, unknown>;
      return { key, size: s.size, storageClass: classOf(meta['x-amz-storage-class']), contentType: (meta['content-type'] as string | undefined) ?? undefined };
    } catch (err) {
      if (isNotFound(err)) return null;
      this.fail(`head ${key}`, err);
    }
  }

  async delete(key: string): Promise<void> {
    checkFileKey(key);
    try {
      await this.client.removeObject(this.settings.bucket, key);
    } catch (err) {
      if (!isNotFound(err)) this.fail(`delete ${key}`, err);
    }
  }

  async list(prefix = ''): Promise<FileObjectInfo[]> {
    const out: FileObjectInfo[] = [];
    try {
      for await (const o of this.client.listObjectsV2(this.settings.bucket, prefix, true)) {
        if (o.name) out.push({ key: o.name, size: o.size, storageClass: 'STANDARD' });
      }
    } catch (err) {
      this.fail(`list ${prefix}`, err);
    }
    return out.sort(byKey);
  }

  async setStorageClass(key: string, storageClass: StorageClass): Promise<void> {
    const h = await this.head(key);
    if (!h) throw new FileNotFoundError(key);
    if (h.storageClass === storageClass) return;
    const b = this.settings.bucket;
    try {
      await this.client.copyObject(
        new CopySourceOptions({ Bucket: b, Object: key }),
        new CopyDestinationOptions({
          Bucket: b, Object: key, MetadataDirective: 'REPLACE',
          Headers: { 'x-amz-storage-class': storageClass, ...(h.contentType ? { 'Content-Type': h.contentType } : {}) },
        }),
      );
    } catch (err) {
      if (isNotFound(err)) throw new FileNotFoundError(key);
      this.fail(`setStorageClass ${key}`, err);
    }
  }

  async signedUrl(key: string, opts: SignedUrlOptions): Promise<string> {
    checkFileKey(key);
    const headers: Record<string, string> = {};
    if (opts.contentType) headers['response-content-type'] = opts.contentType;
    if (opts.filename) headers['response-content-disposition'] = contentDisposition(opts.filename);
    try {
      return await this.client.presignedGetObject(this.settings.bucket, key, presignSeconds(opts.expiresInSec), headers);
    } catch (err) {
      this.fail(`signedUrl ${key}`, err);
    }
  }

  async close(): Promise<void> {}
}
