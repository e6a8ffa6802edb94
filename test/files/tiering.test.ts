import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalFileStore } from '../../adapters/local/index.ts';
import { pgliteClient, SqlFileCatalog } from '../../adapters/postgres/index.ts';
import { S3FileStore } from '../../adapters/s3/index.ts';
import { applyTiering, formatPlan, planTiering, planTieringFromCatalog, storageCosts } from '../../cluster/files/index.ts';
import type { FileRecord, FileStore, StorageClass } from '../../runtime/index.ts';
import { startS3 } from '../helpers/s3.ts';

const DAY = 86_400_000;
const GIB = 1024 ** 3;
const NOW = Date.UTC(2026, 11, 1); // the virtual "now" every plan is made for

function rec(id: string, ageDays: number, readCount: number, o: { size?: number; storageClass?: StorageClass } = {}): FileRecord {
  return {
    id, ws: 'w', ch: 'c', uploader: 'ada', name: `${id}.bin`, type: 'application/octet-stream', size: o.size ?? 10 * GIB, sha256: '0'.repeat(64),
    created: NOW - ageDays * DAY, key: `w/c/${id}`, storageClass: o.storageClass ?? 'STANDARD', readCount, lastRead: null,
  };
}

test('the plan follows the seed: > 90 days and < 5 reads -> cold, < 20 reads -> infrequent access; saving from the prices', () => {
  const plan = planTiering([
    rec('cold', 100, 0),
    rec('warm', 100, 10),
    rec('hot', 100, 25),
    rec('young', 89, 0),
    rec('at90days', 90, 0), // not older than 90 days
    rec('five', 100, 5), // 5 reads is not "under 5": warm
    rec('twenty', 100, 20), // 20 is not "under 20": stays
    rec('already', 100, 3, { storageClass: 'GLACIER_IR' }),
    rec('iaToCold', 100, 2, { storageClass: 'STANDARD_IA' }),
    rec('neverBack', 100, 30, { storageClass: 'STANDARD_IA' }), // hot again: never moved back
  ], { now: NOW });
  assert.deepEqual(plan.moves.map((m) => `${m.id}:${m.from}->${m.to}`), [
    'cold:STANDARD->GLACIER_IR', 'warm:STANDARD->STANDARD_IA', 'five:STANDARD->STANDARD_IA', 'iaToCold:STANDARD_IA->GLACIER_IR',
  ]);
  assert.equal(plan.scanned, 8);
  // 10 GiB each: (0.023-0.004) + 2 x (0.023-0.0125) + (0.0125-0.004) = 0.19 + 0.21 + 0.085
  assert.ok(Math.abs(plan.monthlySaving - 0.485) < 1e-9, String(plan.monthlySaving));
  assert.equal(plan.byTarget.GLACIER_IR?.files, 2);
  assert.equal(plan.bytesMoved, 40 * GIB);
  // prices are settings
  const custom = planTiering([rec('cold', 100, 0)], { now: NOW, prices: { STANDARD: 0.1, GLACIER_IR: 0 } });
  assert.ok(Math.abs(custom.monthlySaving - 1) < 1e-9);
  const text = formatPlan(plan);
  console.log(text);
  assert.match(text, /plan \(dry run\)/);
  assert.match(text, /estimated saving \$0\.4850\/month/);
});

async function applyOn(store: FileStore, coldClass: StorageClass): Promise<void> {
  const sql = await pgliteClient();
  const catalog = new SqlFileCatalog(sql);
  try {
    const files = [rec('F0', 120, 0, { size: 4 }), rec('F1', 120, 7, { size: 4 }), rec('F2', 120, 50, { size: 4 }), rec('F3', 10, 0, { size: 4 })];
    for (const f of files) {
      await store.put(f.key, (async function* () { yield Buffer.from('data'); })(), { contentType: 'application/octet-stream' });
      await catalog.insert(f);
    }
    // reads recorded through the catalog count (F1: 7 + 1 = 8 reads: still warm)
    await catalog.recordRead('F1', NOW - DAY);
    assert.equal((await catalog.get('F1'))?.readCount, 8);
    const plan = await planTieringFromCatalog(catalog, { now: NOW, policy: { coldClass } });
    assert.deepEqual(plan.moves.map((m) => `${m.id}->${m.to}`), [`F0->${coldClass}`, 'F1->STANDARD_IA']);
    const result = await applyTiering(plan, store, catalog);
    assert.deepEqual(result, { moved: 2, failed: [] });
    assert.equal((await store.head('w/c/F0'))?.storageClass, coldClass);
    assert.equal((await store.head('w/c/F1'))?.storageClass, 'STANDARD_IA');
    assert.equal((await store.head('w/c/F2'))?.storageClass, 'STANDARD');
    assert.equal((await catalog.get('F0'))?.storageClass, coldClass);
    // applied: the next run has nothing to do
    assert.equal((await planTieringFromCatalog(catalog, { now: NOW, policy: { coldClass } })).moves.length, 0);
    // the inspector's numbers
    const costs = storageCosts(await catalog.stats());
    assert.equal(costs.files, 4);
    assert.deepEqual(costs.byClass.map((c) => [c.storageClass, c.files]).sort(), [[coldClass, 1], ['STANDARD', 2], ['STANDARD_IA', 1]].sort());
  } finally {
    await sql.close();
  }
}

test('apply on S3 (s3rver): CopyObject with the new StorageClass, catalog updated (cold = GLACIER: s3rver predates GLACIER_IR)', async () => {
  await using s3 = await startS3({ buckets: ['tiering'] });
  const store = new S3FileStore({ endpoint: s3.endpoint, bucket: 'tiering', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true });
  try {
    await applyOn(store, 'GLACIER');
  } finally {
    await store.close();
  }
});

test('apply on the local store (a directory per class)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-tier-'));
  try {
    await applyOn(new LocalFileStore({ dir, secret: 'tiering-secret-12345', baseUrl: () => 'http://x' }), 'GLACIER_IR');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
