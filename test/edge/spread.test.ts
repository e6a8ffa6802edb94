import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SPREAD_MIN_SLICE, SPREAD_TICK_MS, spreadOver } from '../../cluster/edge/spread.ts';

test('spreadOver: small slices one tick apart within half the period, the first at once; capped slices; stops when told', async (t) => {
  // its waits do not hold the process (an edge's server does): hold it here
  const hold = setInterval(() => {}, 1000);
  t.after(() => clearInterval(hold));
  const items = (n: number) => Array.from({ length: n }, (_, i) => i);
  const run = async (n: number, maxSlice: number, periodMs: number) => {
    const at: Array<{ size: number; ms: number }> = [];
    const t0 = performance.now();
    const seen: number[] = [];
    await spreadOver(items(n), maxSlice, periodMs, () => false, (b) => {
      seen.push(...b);
      at.push({ size: b.length, ms: performance.now() - t0 });
    });
    assert.deepEqual(seen, items(n), 'every item once, in order');
    return at;
  };

  // 10,000 items over a 30 s period: 300 ticks of 50 ms in 15 s -> slices of 34 (checked on the arithmetic, not run)
  // 100 items over 400 ms: 4 ticks -> slices of 25, one tick apart
  let at = await run(100, 500, 400);
  assert.deepEqual(at.map((x) => x.size), [25, 25, 25, 25]);
  assert.ok(at[0]!.ms < 20, `the first slice at once (${at[0]!.ms} ms)`);
  for (let k = 1; k < at.length; k++) assert.ok(at[k]!.ms - at[k - 1]!.ms >= SPREAD_TICK_MS - 1, `slice ${k} came ${at[k]!.ms - at[k - 1]!.ms} ms after the one before`);
  // a long period: slices no smaller than SPREAD_MIN_SLICE
  at = await run(40, 500, 3_600_000);
  assert.deepEqual(at.map((x) => x.size), [SPREAD_MIN_SLICE, SPREAD_MIN_SLICE, 40 - 2 * SPREAD_MIN_SLICE]);
  // a short period: slices capped at maxSlice, closer than a tick so that all fit in half the period
  at = await run(100, 10, 200);
  assert.equal(at.length, 10);
  assert.ok(at[9]!.ms < 200, `done within the period (${at[9]!.ms} ms)`);

  // stopped between slices: nothing more runs
  let stop = false;
  const seen: number[] = [];
  await spreadOver(items(64), 16, 1000, () => stop, (b) => {
    seen.push(...b);
    stop = seen.length >= 32;
  });
  assert.deepEqual(seen, items(32));

  // an async slice is awaited before the next
  const order: string[] = [];
  await spreadOver(items(32), 16, 1000, () => false, async (b) => {
    order.push(`start ${b[0]}`);
    await new Promise((r) => setTimeout(r, 15));
    order.push(`end ${b[0]}`);
  });
  assert.deepEqual(order, ['start 0', 'end 0', 'start 16', 'end 16']);
});
