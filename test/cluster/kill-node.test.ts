import { test } from 'node:test';
import assert from 'node:assert/strict';
import { killNodeUnderLoad } from './scenarios.ts';

test('kill -9 one Chorus node under load: nothing acked is lost, seqs stay gapless, single activation holds (G7)', async (t) => {
  const f = await killNodeUnderLoad({ nodes: 3, channels: 24, users: 6 });
  t.diagnostic(JSON.stringify(f));
  assert.ok(f.ackedWrites > 50, `a real load ran (${f.ackedWrites} acked)`);
  assert.ok(f.ackedWrites > f.ackedBeforeKill, 'posts were acknowledged after the kill');
  assert.equal(f.ackedLost, 0, 'no acknowledged post lost');
  assert.equal(f.duplicates, 0, 'no post stored twice');
  assert.equal(f.gaps, 0, 'every channel seq is gapless');
  assert.equal(f.doubleActivations, 0, 'no actor live on two nodes');
  assert.ok(f.activationSweeps > 5, 'the single-activation watch actually ran');
  assert.ok(f.recoverMs < 10_000, `every actor answered again after ${f.recoverMs} ms`);
});
