/**
 * Drain, in-process and exact: three ChorusNodes on the memory ports and a
 * virtual clock (the testing harness), whose activation observer sees every
 * activation start and end. While clients keep writing, n3 drains; the new
 * owners must not activate an actor before n3 has released it (finished its
 * turn and persisted), although n3 is no longer in the table by then.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ActorType } from '../../runtime/index.ts';
import { TestCluster } from '../harness/index.ts';
import { Ledger } from '../sim/fixtures.ts';

/** A ledger whose writes take a while (a slow disk, a busy log): a turn is often in flight when the table changes. */
class SlowLedger extends Ledger {
  protected override async handle(msg: { op: string }) {
    if (msg.op === 'add') await new Promise<void>((r) => this.ctx.clock.setTimeout(() => r(), 20));
    return super.handle(msg);
  }
}
const slowLedgerType: ActorType = { name: 'ledger', create: () => new SlowLedger() };

test('drain under load: every actor of the draining node is released before its new owner activates it (G14)', async () => {
  const cluster = await TestCluster.start({ nodes: 3, types: [slowLedgerType], faults: { minDelayMs: 0, maxDelayMs: 3 }, seed: 7 });
  try {
    const keys = Array.from({ length: 12 }, (_, i) => `l${i}`);
    const acked = new Map<string, string[]>();
    const errors: string[] = [];
    let n = 0;
    // six independent writers through n1 and n2, several on the same actors at once
    const writer = async (w: number, count: number) => {
      for (let j = 0; j < count; j++) {
        const key = keys[(w * 5 + j) % keys.length]!;
        const id = `m${n++}`;
        try {
          await cluster.ref('ledger', key, w % 2 ? 'n1' : 'n2').ask({ op: 'add', id });
          acked.set(key, [...(acked.get(key) ?? []), id]);
        } catch (e) {
          errors.push((e as { code?: string }).code ?? String(e));
        }
      }
    };
    await cluster.run(Promise.all([0, 1, 2, 3, 4, 5].map((w) => writer(w, 5))));
    const onN3 = [...cluster.liveActivations()].filter(([, nodes]) => nodes.includes('n3')).length;
    assert.ok(onN3 > 0, 'n3 hosts actors before the drain');
    let draining: Promise<void> | undefined;
    cluster.clock.setTimeout(() => { draining = cluster.node('n3').drain(); }, 100);
    await cluster.run(Promise.all([0, 1, 2, 3, 4, 5].map((w) => writer(w, 40))));
    assert.ok(draining, 'the drain started while the writers ran');
    await cluster.run(draining!);
    assert.deepEqual(cluster.violations, [], 'no actor was live on two nodes at once');
    for (const key of keys) {
      const items = await cluster.run(cluster.ref('ledger', key, 'n1').ask<string[]>({ op: 'list' }));
      const want = acked.get(key) ?? [];
      assert.deepEqual(items.filter((x) => want.includes(x)), want, `acked writes of ${key} all present, in order`);
      assert.equal(new Set(items).size, items.length, `no duplicates in ${key}`);
    }
    assert.deepEqual(errors, [], 'no client saw an error');
  } finally {
    await cluster.stop();
  }
});
