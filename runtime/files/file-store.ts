import type { Readable } from 'node:stream';

/**
 * The Files port: where uploaded bytes live. Embedded: a local directory
 * (adapters/local). Cluster: any S3-compatible store (adapters/s3), optionally
 * replicated to a second provider. Metadata (who, which channel, reads) is not
 * here but in the FileCatalog.
 *
 * Keys are `/`-separated tokens of [A-Za-z0-9._-] (see FILE_KEY_PATTERN).
 */

/** Storage classes a store may hold an object in (S3's names; the local store keeps one directory per class). */
export const STORAGE_CLASSES = ['STANDARD', 'STANDARD_IA', 'GLACIER_IR', 'GLACIER'] as const;
/** A storage class. `GLACIER_IR` is instant retrieval; `GLACIER` (flexible retrieval) needs a restore before reads and is only for stores that lack GLACIER_IR. */
export type StorageClass = (typeof STORAGE_CLASSES)[number];

/** Object keys: 1..512 chars of `/`-separated [A-Za-z0-9._-] tokens, no `..`. */
export const FILE_KEY_PATTERN = /^(?!.*\.\.)[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;

/** What a store knows about one object. */
export interface FileObjectInfo {
  readonly key: string;
  readonly size: number;
  readonly storageClass: StorageClass;
  /** When the store keeps it (S3 does; the local store does not). */
  readonly contentType?: string | undefined;
}

/** Options of `put`. */
export interface PutOptions {
  /** MIME type, stored with the object where the store can. */
  readonly contentType: string;
  /** The size when known in advance (sizes multipart parts; not trusted: the bytes read decide). */
  readonly size?: number | undefined;
  /** Default STANDARD. */
  readonly storageClass?: StorageClass | undefined;
}

/** Options of `signedUrl`. */
export interface SignedUrlOptions {
  /** Life of the URL in seconds (1 .. 7 days). */
  readonly expiresInSec: number;
  /** Suggested download name (Content-Disposition). */
  readonly filename?: string | undefined;
  /** Content-Type the download is served with. */
  readonly contentType?: string | undefined;
}

/**
 * A blob store. Contract (test/conformance/file-store.ts checks it on every
 * implementation):
 * - `put` streams `body` (never the whole object in memory) and is all or
 *   nothing: if `body` throws or errors at any point, nothing is stored under
 *   `key`, no temporary object stays visible, and `put` rejects with that error.
 * - `get` and `setStorageClass` reject with FileNotFoundError for a missing key;
 *   `head` resolves null; `delete` of a missing key is a no-op.
 * - `signedUrl` gives a URL that serves the object without other credentials
 *   until it expires.
 */
export interface FileStore {
  /** A short name for logs and metrics (`local`, `s3`, `minio`, `replicated`). */
  readonly name: string;
  put(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<FileObjectInfo>;
  /** The object's bytes as a stream (the caller must consume or destroy it). */
  get(key: string): Promise<{ body: Readable; info: FileObjectInfo }>;
  head(key: string): Promise<FileObjectInfo | null>;
  delete(key: string): Promise<void>;
  /** Objects whose key starts with `prefix`, in key order. */
  list(prefix?: string): Promise<FileObjectInfo[]>;
  /** Moves the object to another storage class in place (S3: CopyObject onto itself). */
  setStorageClass(key: string, storageClass: StorageClass): Promise<void>;
  /** A short-lived URL that serves the object. */
  signedUrl(key: string, opts: SignedUrlOptions): Promise<string>;
  /** Releases clients and sockets. */
  close(): Promise<void>;
}

/** Token for the tsyringe container. */
export const FILE_STORE = Symbol.for('chorus.FileStore');

/** Throws a TypeError (misuse at the call site) unless `key` is a valid object key. */
export function checkFileKey(key: string): void {
  if (key.length > 512 || !FILE_KEY_PATTERN.test(key)) throw new TypeError(`invalid file key ${JSON.stringify(key)}`);
}
