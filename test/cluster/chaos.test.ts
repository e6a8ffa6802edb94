// The CI form of chaos under load (the long form is `npm run chaos -- --minutes N --seed S`):
// a bounded run on 3 Chorus nodes over 3 nats-servers (R3) with seeded node kills, nats-server
// kills, pauses and (where network namespaces work) a network cut, then the full accounting. CHAOS_SECONDS and CHAOS_SEED override the run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runChaos } from './chaos.ts';

const seconds = Number(process.env.CHAOS_SECONDS ?? 60);
const seed = Number(process.env.CHAOS_SEED ?? 20261201);

test(`chaos under load (${seconds} s, seed ${seed}): acknowledged = stored = delivered to every subscriber, no loss, duplicate, gap or double activation (G26)`, { timeout: (seconds + 240) * 1000 }, async () => {
  const f = await runChaos({ seconds, seed, log: (s) => console.log(`# chaos ${s}`) });
  console.log(`# chaos figures ${JSON.stringify(f)}`);
  const faults = Object.values(f.faults).reduce((a, b) => a + b, 0);
  assert.ok(faults >= 3, `the scheduler injected faults (${JSON.stringify(f.faults)})`);
  assert.ok(f.acked > 100, `the load went on through the faults (${f.acked} acked)`);
  // stored may exceed acked: a post whose ack was lost to a fault is stored once and counted by the probe
  assert.ok(f.stored >= f.acked, `every acknowledged post is stored (${f.stored} stored, ${f.acked} acked)`);
  assert.equal(f.lost, 0, 'lost');
  assert.equal(f.duplicates, 0, 'duplicates');
  assert.equal(f.gaps, 0, 'gaps');
  assert.equal(f.deliveryLost, 0, `every subscriber got every acknowledged post (delivered ${f.delivered} of ${f.expectedDeliveries}; missing ${JSON.stringify(f.missing)})`);
  assert.equal(f.deliveryDuplicates, 0, 'no subscriber got a post twice');
  assert.equal(f.doubleActivations, 0, 'single activation');
});
