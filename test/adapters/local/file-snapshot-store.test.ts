// The embedded profile's pair: the PGlite log with snapshots in a local directory, through the
// EventLog + SnapshotStore conformance suite (durability across a reopen included), plus the
// store's own promise: a torn or foreign file reads as no snapshot, never as a wrong state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSnapshotStore } from '../../../adapters/local/file-snapshot-store.ts';
import { PostgresEventLog } from '../../../adapters/postgres/pg-event-log.ts';
import { pgliteClient } from '../../../adapters/postgres/pglite-client.ts';
import { describeEventLog, reopenableFixture } from '../../conformance/event-log.ts';

describeEventLog('PGlite log + FileSnapshotStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-filesnap-'));
  return reopenableFixture(async () => {
    const client = await pgliteClient(join(dir, 'pglite'));
    const log = new PostgresEventLog(client, { tailPollMs: 20 });
    const snapshots = new FileSnapshotStore(join(dir, 'snapshots'));
    return { log, snapshots, close: async () => { await log.close(); await snapshots.close(); await client.close(); } };
  }, () => rm(dir, { recursive: true, force: true }));
});

test('FileSnapshotStore: a torn or foreign file is no snapshot; odd stream names are stored under a hash; no temp files stay', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-filesnap-'));
  try {
    const s = new FileSnapshotStore(dir);
    await s.save('channel.w1.c1', { pos: 7, data: new Uint8Array(1000).fill(3) });
    assert.equal((await s.load('channel.w1.c1'))!.pos, 7);
    await truncate(join(dir, 'channel.w1.c1.snap'), 500); // a crash mid-write without the rename's protection
    assert.equal(await s.load('channel.w1.c1'), null, 'torn file reads as missing');
    await writeFile(join(dir, 'channel.w1.c2.snap'), 'not a snapshot at all');
    assert.equal(await s.load('channel.w1.c2'), null, 'foreign file reads as missing');
    const odd = 'user.w1.../../etc/passwd';
    await s.save(odd, { pos: 3, data: new Uint8Array([1, 2, 3]) });
    assert.deepEqual([...(await s.load(odd))!.data], [1, 2, 3]);
    const files = await readdir(dir);
    assert.ok(files.every((f) => f.endsWith('.snap') && !f.includes('/')), `only snapshot files: ${files}`);
    assert.ok(files.some((f) => f.startsWith('h-')), 'the odd name went under a hash');
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
