import type { FileCatalog, FileRecord, FileStats } from '../../runtime/files/file-catalog.ts';
import type { StorageClass } from '../../runtime/files/file-store.ts';
import type { TieredCache } from '../query/tiered-cache.ts';

/** The cache tag of one file's metadata. */
const tagOf = (id: string) => `file.${id}`;

/**
 * The file catalog read through the query side's two-level cache, type
 * `file_metadata` (the seed's 2 h): every download looks its file up, and
 * most files are read again and again. Versions are wall-clock times (a
 * record loaded at t is stale after an invalidation at a later t); changes
 * of what readers rely on (delete, storage class) invalidate the file's tag
 * on every node. Read counters (`readCount`, `lastRead`) are left out of
 * that: they change on every download, so a cached record may show them up
 * to one TTL old; the tiering job reads them from the catalog itself
 * (`createdBefore`), never through the cache.
 */
export class CachedFileCatalog implements FileCatalog {
  constructor(private readonly inner: FileCatalog, private readonly cache: TieredCache) {}

  insert(r: FileRecord): Promise<void> {
    // a new id: nothing can be cached under it (a miss that found nothing caches nothing)
    return this.inner.insert(r);
  }

  async get(id: string): Promise<FileRecord | null> {
    const r = await this.cache.get<FileRecord>('file_metadata', id, 0, [tagOf(id)], async () => {
      const at = Date.now();
      const v = await this.inner.get(id);
      return v ? { value: v, atPos: at } : null;
    });
    return r?.value ?? null;
  }

  async delete(id: string): Promise<void> {
    await this.inner.delete(id);
    await this.cache.invalidate(new Map([[tagOf(id), Date.now()]]));
  }

  recordRead(id: string, at: number): Promise<void> {
    return this.inner.recordRead(id, at);
  }

  async setStorageClass(id: string, storageClass: StorageClass): Promise<void> {
    await this.inner.setStorageClass(id, storageClass);
    await this.cache.invalidate(new Map([[tagOf(id), Date.now()]]));
  }

  createdBefore(before: number, opts?: { limit?: number; afterId?: string }): Promise<FileRecord[]> {
    return this.inner.createdBefore(before, opts);
  }

  stats(): Promise<FileStats> {
    return this.inner.stats();
  }
}
