import { z } from 'zod';

/**
 * Settings of an S3-compatible provider (AWS S3, MinIO, Ceph, R2, s3rver ...).
 * Defaults: region `us-east-1`, path-style off (on for anything with an
 * explicit endpoint is usual), 8 MiB parts, 2 parts in flight, 3 attempts.
 */
export const S3Settings = z.object({
  /** `https://s3.eu-west-1.amazonaws.com`, `http://minio:9000`; omit for AWS's default endpoint. */
  endpoint: z.string().url().optional(),
  region: z.string().min(1).default('us-east-1'),
  bucket: z.string().min(3).max(63),
  /** Omit to use the SDK's default credential chain (AWS S3 provider only; MinioFileStore needs keys). */
  accessKeyId: z.string().min(1).optional(),
  secretAccessKey: z.string().min(1).optional(),
  /** Path-style URLs (`endpoint/bucket/key`), which MinIO and most S3-compatible stores want. */
  forcePathStyle: z.boolean().default(false),
  /** Multipart part size: at least 5 MiB (S3's minimum). Memory per upload is about partSize x queueSize. */
  partSizeBytes: z.number().int().min(5 * 1024 * 1024).default(8 * 1024 * 1024),
  /** Parts uploaded in parallel per upload. */
  queueSize: z.number().int().min(1).max(16).default(2),
  /** SDK attempts per request (1 = no retry). */
  maxAttempts: z.number().int().min(1).max(10).default(3),
});
/** Validated S3 settings. */
export type S3Settings = z.infer<typeof S3Settings>;
/** S3 settings before defaults. */
export type S3SettingsInput = z.input<typeof S3Settings>;

/** Validates settings, listing every problem in one TypeError. */
export function s3Settings(raw: S3SettingsInput): S3Settings {
  const r = S3Settings.safeParse(raw);
  if (!r.success) throw new TypeError(`invalid S3 settings: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  if ((r.data.accessKeyId === undefined) !== (r.data.secretAccessKey === undefined)) throw new TypeError('invalid S3 settings: set both accessKeyId and secretAccessKey, or neither');
  return r.data;
}
