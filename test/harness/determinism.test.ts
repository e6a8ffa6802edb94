import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster } from './index.ts';
import { ledgerType } from '../sim/fixtures.ts';

// The same seed gives the same run: faults, timings and the resulting
// placement and activations are identical; another seed differs.
async function trace(seed: number): Promise<string> {
  const cluster = await TestCluster.start({ nodes: 3, types: [ledgerType], seed, faults: { maxDelayMs: 8, dropRate: 0.05, duplicateRate: 0.05 } });
  const events: string[] = [];
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < 40; i++) {
    const key = `k${Math.floor(cluster.rng() * 6)}`;
    pending.push(cluster.ref('ledger', key, cluster.nodeIds[i % 3]).ask({ op: 'add', id: `m${i}` }, { timeoutMs: 20_000 }).then(
      (seq) => events.push(`${i}:${key}:${seq}@${cluster.clock.now()}`),
      (e) => events.push(`${i}:${key}:${e.code}@${cluster.clock.now()}`),
    ));
    if (i === 20) cluster.crash('n2');
    await cluster.advance(Math.floor(cluster.rng() * 20));
  }
  await cluster.run(Promise.all(pending), 120_000);
  const live = [...cluster.liveActivations()].sort().map(([k, n]) => `${k}=${n}`).join(',');
  await cluster.stop();
  return `${events.join(' ')} | ${live} | ${JSON.stringify(cluster.network.stats)}`;
}

test('the same seed gives the same run, another seed another', async () => {
  const a = await trace(424242);
  const b = await trace(424242);
  assert.equal(a, b);
  const c = await trace(777);
  assert.notEqual(a, c);
});
