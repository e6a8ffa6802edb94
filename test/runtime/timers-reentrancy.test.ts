import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster } from '../harness/index.ts';
import type { ActorType } from '../../runtime/index.ts';

const ticker: ActorType = {
  name: 'ticker',
  create: () => {
    let ticks = 0;
    return {
      receive(msg: any, ctx) {
        if (msg.op === 'start') ctx.setTimer('tick', 100, { op: 'tick' }, { repeat: true });
        if (msg.op === 'once') ctx.setTimer('once', 50, { op: 'tick' });
        if (msg.op === 'stop') ctx.cancelTimer('tick');
        if (msg.op === 'tick') ticks++;
        return ticks;
      },
    };
  },
};

const slowPair = (reentrant: boolean): ActorType => ({
  name: reentrant ? 'reentrant' : 'strict',
  reentrant,
  create: () => {
    const order: string[] = [];
    return {
      async receive(msg: any, ctx) {
        order.push(`start ${msg.tag}`);
        await new Promise<void>((r) => ctx.clock.setTimeout(r, msg.ms));
        order.push(`end ${msg.tag}`);
        return order.slice();
      },
    };
  },
});

test('timers are owned by the activation: repeat, one-shot, cancel', async () => {
  const cluster = await TestCluster.start({ nodes: 2, types: [ticker], seed: 11 });
  const ref = cluster.ref('ticker', 't');
  await cluster.askExpect(ref, { op: 'start' }, 0);
  await cluster.advance(1050);
  const ticks = await cluster.run(ref.ask<number>({ op: 'noop' }));
  assert.ok(ticks >= 9 && ticks <= 11, `about 10 ticks in 1 s, got ${ticks}`);
  await cluster.run(ref.ask({ op: 'stop' }));
  await cluster.advance(1000);
  assert.equal(await cluster.run(ref.ask<number>({ op: 'noop' })), ticks, 'no tick after cancel');
  await cluster.run(ref.ask({ op: 'once' }));
  await cluster.advance(500);
  assert.equal(await cluster.run(ref.ask<number>({ op: 'noop' })), ticks + 1, 'a one-shot timer fires once');
  await cluster.stop();
});

test('turns interleave at awaits only for reentrant types', async () => {
  const cluster = await TestCluster.start({ nodes: 1, types: [slowPair(false), slowPair(true)], seed: 12 });
  for (const [type, expected] of [
    ['strict', ['start a', 'end a', 'start b', 'end b']],
    ['reentrant', ['start a', 'start b', 'end b', 'end a']],
  ] as const) {
    const ref = cluster.ref(type, 'x');
    await cluster.run(Promise.all([ref.ask({ tag: 'a', ms: 100 }), ref.ask({ tag: 'b', ms: 10 })]));
    const order = await cluster.run(ref.ask<string[]>({ tag: 'c', ms: 0 }));
    assert.deepEqual(order.slice(0, 4), [...expected], type);
  }
  await cluster.stop();
});
