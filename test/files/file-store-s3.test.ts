import { after, before } from 'node:test';
import { MinioFileStore, S3FileStore } from '../../adapters/s3/index.ts';
import { ReplicatedFileStore } from '../../cluster/files/index.ts';
import { describeFileStore } from '../conformance/file-store.ts';
import { startS3, type S3Server } from '../helpers/s3.ts';

// One s3rver for the file (real HTTP on a free port); every test works under its own key prefix.
let s3: S3Server;
before(async () => {
  s3 = await startS3({ buckets: ['primary', 'secondary'] });
});
after(async () => {
  await s3?.stop();
});
const settings = (bucket: string) => ({
  endpoint: s3.endpoint, region: 'us-east-1', bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey,
  forcePathStyle: true, partSizeBytes: 5 * 1024 * 1024,
});
const MULTIPART = 11 * 1024 * 1024; // three parts of 5 MiB

describeFileStore('S3 (@aws-sdk/client-s3) on s3rver', async () => {
  const store = new S3FileStore(settings('primary'));
  return { store, close: () => store.close() };
}, { multipartBytes: MULTIPART });

describeFileStore('MinIO client on s3rver', async () => {
  const store = new MinioFileStore(settings('secondary'));
  return { store, close: () => store.close() };
}, { multipartBytes: MULTIPART });

describeFileStore('replicated (S3 primary, MinIO secondary)', async () => {
  const store = new ReplicatedFileStore(new S3FileStore(settings('primary')), new MinioFileStore(settings('secondary')), { retryBaseMs: 50 });
  return { store, close: () => store.close() };
});
