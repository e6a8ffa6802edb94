// File metadata through the query side's two-level cache (type file_metadata, the seed's 2 h):
// a hot file is loaded from the catalog once; a storage-class change or a delete is seen at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CachedFileCatalog } from '../../cluster/files/cached-file-catalog.ts';
import { TieredCache } from '../../cluster/query/tiered-cache.ts';
import type { FileCatalog, FileRecord } from '../../runtime/files/file-catalog.ts';

function countingCatalog() {
  const rows = new Map<string, FileRecord>();
  const calls = { get: 0 };
  const inner: FileCatalog = {
    insert: async (r) => void rows.set(r.id, r),
    get: async (id) => (calls.get++, rows.get(id) ?? null),
    delete: async (id) => void rows.delete(id),
    recordRead: async (id, at) => { const r = rows.get(id); if (r) rows.set(id, { ...r, readCount: r.readCount + 1, lastRead: at }); },
    setStorageClass: async (id, storageClass) => { const r = rows.get(id); if (r) rows.set(id, { ...r, storageClass }); },
    createdBefore: async () => [...rows.values()],
    stats: async () => ({ files: rows.size, bytes: 0, byClass: {} }),
  };
  return { inner, calls };
}

const rec = (id: string): FileRecord => ({
  id, ws: 'w1', ch: 'c1', uploader: 'u1', name: 'a.txt', type: 'text/plain', size: 3, sha256: 'ab', created: 1, key: `w1/c1/${id}`,
  storageClass: 'STANDARD', readCount: 0, lastRead: null,
});

test('file metadata: read through the cache once, invalidated by a storage-class change and a delete', async () => {
  const cache = await new TieredCache({}).start();
  try {
    const { inner, calls } = countingCatalog();
    const cat = new CachedFileCatalog(inner, cache);
    await cat.insert(rec('f1'));
    assert.equal(await cat.get('nope'), null);
    for (let i = 0; i < 20; i++) assert.equal((await cat.get('f1'))!.storageClass, 'STANDARD');
    const loads = calls.get;
    assert.equal(loads, 2, 'one load for the unknown id, one for f1; 19 hits');
    assert.ok(cache.hitRates().file_metadata!.hitRate > 0.8, JSON.stringify(cache.hitRates().file_metadata));
    assert.equal(cache.ttlOf('file_metadata'), 2 * 3600_000, "the seed's 2 h");
    await cat.setStorageClass('f1', 'GLACIER');
    assert.equal((await cat.get('f1'))!.storageClass, 'GLACIER', 'the change is seen at once');
    await cat.delete('f1');
    assert.equal(await cat.get('f1'), null, 'a deleted file is gone at once');
  } finally {
    await cache.close();
  }
});
