import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster } from '../harness/index.ts';
import { ledgerType } from './fixtures.ts';

test('a node crashes in a 3-node cluster while messages flow: actors come back, single activation holds, no acked write is lost (G6)', async () => {
  const cluster = await TestCluster.start({ nodes: 3, types: [ledgerType], faults: { minDelayMs: 0, maxDelayMs: 3 } });
  const acked = new Map<string, string[]>();
  const keys = Array.from({ length: 30 }, (_, i) => `l${i}`);
  let n = 0;
  const errors: string[] = [];
  // clients: go through n1 and n2; n3 will crash
  const post = async (via: string) => {
    const key = keys[n % keys.length]!;
    const id = `m${n++}`;
    try {
      await cluster.ref('ledger', key, via).ask({ op: 'add', id });
      acked.set(key, [...(acked.get(key) ?? []), id]);
    } catch (e) {
      errors.push((e as { code?: string }).code ?? String(e));
    }
  };
  const rounds = async (count: number) => {
    for (let i = 0; i < count; i++) await cluster.run(Promise.all([post('n1'), post('n2'), post('n1')]));
  };
  await rounds(40);
  const onN3 = [...cluster.liveActivations()].filter(([, nodes]) => nodes.includes('n3')).length;
  assert.ok(onN3 > 0, 'n3 hosted some actors before the crash');
  const crashAt = cluster.clock.now();
  cluster.crash('n3');
  await rounds(40);
  await cluster.stable();
  const recoverMs = cluster.clock.now() - crashAt;
  cluster.checkInvariants();
  // every actor answers, from the survivors, with every acked id in order, no duplicates
  for (const key of keys) {
    const items = await cluster.run(cluster.ref('ledger', key).ask<string[]>({ op: 'list' }));
    const want = acked.get(key) ?? [];
    assert.deepEqual(items.filter((x) => want.includes(x)), want, `acked writes of ${key} all present, in ack order`);
    assert.equal(new Set(items).size, items.length, `no duplicates in ${key}`);
  }
  assert.equal([...cluster.liveActivations().values()].flat().filter((x) => x === 'n3').length, 0);
  assert.ok(errors.every((c) => c === 'CHORUS_ASK_TIMEOUT'), `only timeouts may fail: ${errors.join()}`);
  assert.ok(recoverMs < 10_000, `recovered in ${recoverMs} ms of virtual time`);
  await cluster.stop();
});
