import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadBatcher } from '../../../adapters/postgres/read-batcher.ts';

test('ReadBatcher: requests of one loop turn and those made while a batch runs share batches of at most max; results in request order', async () => {
  const batches: number[][] = [];
  let release: (() => void) | undefined;
  const b = new ReadBatcher<number, string>(async (qs) => {
    batches.push([...qs]);
    if (batches.length === 1) await new Promise<void>((r) => { release = r; });
    return qs.map((q) => `r${q}`);
  }, 3);
  const first = [b.submit(1), b.submit(2)];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(batches, [[1, 2]]);
  const later = [4, 5, 6, 7].map((q) => b.submit(q)); // queued while the first batch runs
  release!();
  assert.deepEqual(await Promise.all([...first, ...later]), ['r1', 'r2', 'r4', 'r5', 'r6', 'r7']);
  assert.deepEqual(batches, [[1, 2], [4, 5, 6], [7]]);
});

test('ReadBatcher: a failing batch rejects each of its requests, not the next batch; a wrong result count is an error', async () => {
  let calls = 0;
  const b = new ReadBatcher<number, number>(async (qs) => {
    calls++;
    if (calls === 1) throw new Error('boom');
    if (calls === 2) return [];
    return qs.map((q) => q * 2);
  });
  const r = await Promise.allSettled([b.submit(1), b.submit(2)]);
  assert.deepEqual(r.map((x) => x.status === 'rejected' && (x.reason as Error).message), ['boom', 'boom']);
  await assert.rejects(b.submit(3), /0 results for 1 requests/);
  assert.equal(await b.submit(4), 8);
  assert.throws(() => new ReadBatcher(async () => [], 0), RangeError);
});
