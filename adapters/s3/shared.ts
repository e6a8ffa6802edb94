import { BackendError, ChorusError, STORAGE_CLASSES, type FileObjectInfo, type StorageClass } from '../../runtime/index.ts';

/** A storage class name from a store's answer; absent or unknown (S3 omits STANDARD) reads as STANDARD. */
export function classOf(c: unknown): StorageClass {
  return typeof c === 'string' && (STORAGE_CLASSES as readonly string[]).includes(c) ? (c as StorageClass) : 'STANDARD';
}

/** Orders listings by key (the FileStore contract). */
export function byKey(a: FileObjectInfo, b: FileObjectInfo): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** Rethrows a ChorusError as is; wraps a driver error in BackendError (cause kept). */
export function backendFailure(store: string, what: string, err: unknown): never {
  if (err instanceof ChorusError) throw err;
  throw new BackendError(store, `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/** A presigned link's life: 1 s .. 7 days (S3's SigV4 maximum). */
export function presignSeconds(expiresInSec: number): number {
  return Math.max(1, Math.min(7 * 86_400, Math.floor(expiresInSec)));
}

/** An ASCII-safe Content-Disposition with the UTF-8 name as filename* (RFC 6266). */
export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}
