import type { StorageClass } from './file-store.ts';

/** The metadata of one uploaded file. Times in ms since the epoch. */
export interface FileRecord {
  readonly id: string;
  readonly ws: string;
  readonly ch: string;
  readonly uploader: string;
  /** The file name the client gave (display and Content-Disposition). */
  readonly name: string;
  /** MIME type. */
  readonly type: string;
  readonly size: number;
  /** Lower-case hex sha256 of the bytes. */
  readonly sha256: string;
  readonly created: number;
  /** The store's object key. */
  readonly key: string;
  readonly storageClass: StorageClass;
  /** Downloads handed out (signed URLs issued). */
  readonly readCount: number;
  readonly lastRead: number | null;
}

/** Totals per storage class, for the inspector's `costs`. */
export interface FileStats {
  readonly files: number;
  readonly bytes: number;
  readonly byClass: Readonly<Partial<Record<StorageClass, { files: number; bytes: number }>>>;
}

/**
 * The file metadata repository (adapters/postgres: SqlFileCatalog on PGlite
 * or pg). The bytes are in a FileStore; a record is written only after the
 * bytes are committed there.
 */
export interface FileCatalog {
  insert(r: FileRecord): Promise<void>;
  get(id: string): Promise<FileRecord | null>;
  /** Removes a record (an upload whose channel registration failed). */
  delete(id: string): Promise<void>;
  /** Counts one download at `at`. */
  recordRead(id: string, at: number): Promise<void>;
  setStorageClass(id: string, storageClass: StorageClass): Promise<void>;
  /** Files created before `before`, in id order, at most `limit` (default 10000), after id `afterId` (paging). */
  createdBefore(before: number, opts?: { limit?: number; afterId?: string }): Promise<FileRecord[]>;
  stats(): Promise<FileStats>;
}

/** Token for the tsyringe container. */
export const FILE_CATALOG = Symbol.for('chorus.FileCatalog');
