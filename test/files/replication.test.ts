import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MinioFileStore, S3FileStore } from '../../adapters/s3/index.ts';
import { MemoryMetrics } from '../../adapters/memory/index.ts';
import { ReplicatedFileStore } from '../../cluster/files/index.ts';
import { startS3 } from '../helpers/s3.ts';
import { waitFor } from '../helpers/ports.ts';

async function* bytes(s: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(s);
}
async function text(store: { get(k: string): Promise<{ body: AsyncIterable<unknown> }> }, key: string): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of (await store.get(key)).body) parts.push(c as Buffer);
  return Buffer.concat(parts).toString();
}
const settings = (s: { endpoint: string; accessKeyId: string; secretAccessKey: string }, bucket: string) => ({
  endpoint: s.endpoint, bucket, accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, forcePathStyle: true, maxAttempts: 1,
});

/** Two s3rvers and a replicated store over them (fast retries); disposing stops both servers. */
async function pair() {
  const p = await startS3({ buckets: ['primary'] });
  const s = await startS3({ buckets: ['secondary'] });
  const metrics = new MemoryMetrics();
  const store = new ReplicatedFileStore(new S3FileStore(settings(p, 'primary')), new MinioFileStore(settings(s, 'secondary')), { metrics, retryBaseMs: 20, retryMaxMs: 200 });
  return { p, s, metrics, store, async [Symbol.asyncDispose]() { await p.stop(); await s.stop(); } };
}

// Two s3rvers over real HTTP: the primary (S3 SDK) and the on-premises secondary (minio client).
test('replication: primary awaited, secondary copied in the background; reads fall back when the primary is down', async () => {
  await using r = await pair();
  const { p, s, metrics, store } = r;
  try {
    await store.put('w/c/F1', bytes('one'), { contentType: 'text/plain' });
    await waitFor(() => store.backlog() === 0, { what: 'the copy to the secondary' });
    assert.equal(await text(store.secondary, 'w/c/F1'), 'one');
    // the primary dies: reads are served by the secondary
    await p.kill();
    assert.equal(await text(store, 'w/c/F1'), 'one');
    assert.equal((await store.head('w/c/F1'))?.size, 3);
    const url = await store.signedUrl('w/c/F1', { expiresInSec: 60 });
    assert.ok(url.startsWith(s.endpoint), `link on the secondary: ${url}`);
    assert.equal(await (await fetch(url)).text(), 'one');
    assert.deepEqual((await store.list('w/')).map((o) => o.key), ['w/c/F1']);
    assert.ok(metrics.value('file_read_fallbacks_total', { op: 'get' }) >= 1);
    // writes need the primary: they fail, nothing is queued
    await assert.rejects(store.put('w/c/F2', bytes('two'), { contentType: 'text/plain' }), { code: 'CHORUS_BACKEND' });
    assert.equal(store.backlog(), 0);
  } finally {
    await store.close();
  }
});

test('replication: with the secondary down the backlog grows and is visible; when it is back the backlog drains', async () => {
  await using r = await pair();
  const { p, s, metrics, store } = r;
  try {
    await s.kill();
    for (let i = 0; i < 5; i++) await store.put(`w/c/F${i}`, bytes(`file ${i}`), { contentType: 'text/plain' }); // the primary write is all an upload waits for
    assert.equal(store.backlog(), 5);
    await waitFor(() => store.pending().every((j) => j.attempts >= 2), { what: 'retries against the dead secondary' });
    assert.equal(metrics.value('file_replication_backlog'), 5);
    assert.ok(metrics.value('file_replication_total', { op: 'copy', result: 'error' }) >= 10);
    await store.delete('w/c/F4'); // the last intent wins: F4 is deleted, not copied
    await s.restart();
    await waitFor(() => store.backlog() === 0, { timeoutMs: 15_000, what: 'the backlog to drain after the secondary came back' });
    assert.equal(metrics.value('file_replication_backlog'), 0);
    assert.deepEqual((await store.secondary.list('w/')).map((o) => o.key), ['w/c/F0', 'w/c/F1', 'w/c/F2', 'w/c/F3']);
    assert.equal(await text(store.secondary, 'w/c/F3'), 'file 3');
  } finally {
    await store.close();
  }
});

test('replication: catchUp queues what the secondary lacks (a backlog lost in a crash)', async () => {
  await using p = await startS3({ buckets: ['primary'] });
  await using s = await startS3({ buckets: ['secondary'] });
  const primary = new S3FileStore(settings(p, 'primary'));
  for (let i = 0; i < 3; i++) await primary.put(`w/c/G${i}`, bytes(`g${i}`), { contentType: 'text/plain' });
  const store = new ReplicatedFileStore(primary, new MinioFileStore(settings(s, 'secondary')), { retryBaseMs: 20 });
  try {
    assert.equal(await store.catchUp(), 3);
    await waitFor(() => store.backlog() === 0, { what: 'catch-up copies' });
    assert.equal((await store.secondary.list()).length, 3);
    assert.equal(await store.catchUp(), 0);
  } finally {
    await store.close();
  }
});
