/** S3-compatible file stores: S3FileStore (@aws-sdk/client-s3, the primary) and MinioFileStore (minio, the on-premises secondary). */
export * from './minio-file-store.ts';
export * from './options.ts';
export * from './s3-file-store.ts';
export { contentDisposition } from './shared.ts';
