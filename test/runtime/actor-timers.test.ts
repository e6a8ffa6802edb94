// ActorTimers: every actor timer of a node on one clock timer. Order, repeat,
// restart, cancel and stop as separate clock timers behaved, with one clock
// timer armed whatever the number of actor timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ActorTimers, type TimerOwner } from '../../runtime/actor/actor-timers.ts';
import { VirtualClock, type Clock } from '../../runtime/clock.ts';

class Owner implements TimerOwner {
  timers: TimerOwner['timers'];
  constructor(readonly name: string) {}
}

/** A virtual clock that counts the clock timers pending. */
function counted(): { clock: VirtualClock & Clock; pending: () => number } {
  const clock = new VirtualClock(0);
  const set = clock.setTimeout.bind(clock);
  const clear = clock.clearTimeout.bind(clock);
  const live = new Set<unknown>();
  clock.setTimeout = (fn, ms) => {
    const h = set(() => { live.delete(h); fn(); }, ms);
    live.add(h);
    return h;
  };
  clock.clearTimeout = (h) => { live.delete(h); clear(h); };
  return { clock, pending: () => live.size };
}

test('fires in due order, then creation order; one clock timer however many actor timers', async () => {
  const { clock, pending } = counted();
  const fired: string[] = [];
  const timers = new ActorTimers<Owner>(clock, (o, msg) => fired.push(`${o.name}:${String(msg)}`));
  const owners = Array.from({ length: 1000 }, (_, i) => new Owner(`a${i}`));
  owners.forEach((o, i) => timers.set(o, 't', 1000 + (i % 10) * 10, i, false));
  timers.set(owners[0]!, 'early', 5, 'early', false);
  assert.equal(timers.size, 1001);
  assert.equal(pending(), 1, 'one clock timer');
  await clock.advance(5);
  assert.deepEqual(fired, ['a0:early']);
  await clock.advance(1000);
  assert.deepEqual(fired.slice(1, 4), ['a0:0', 'a10:10', 'a20:20'], 'same due time: creation order');
  await clock.advance(100);
  assert.equal(fired.length, 1001);
  assert.equal(timers.size, 0);
  assert.equal(pending(), 0);
  assert.ok(owners.every((o) => o.timers === undefined), 'fired one-shots leave their owner');
});

test('repeat, restart by name, cancel, cancelAll, stop', async () => {
  const { clock, pending } = counted();
  const fired: Array<[string, unknown, number]> = [];
  const timers = new ActorTimers<Owner>(clock, (o, msg) => fired.push([o.name, msg, clock.now()]));
  const a = new Owner('a');
  const b = new Owner('b');
  timers.set(a, 'tick', 100, 'tick', true);
  timers.set(b, 'once', 250, 'once', false);
  await clock.advance(350);
  assert.deepEqual(fired, [['a', 'tick', 100], ['a', 'tick', 200], ['b', 'once', 250], ['a', 'tick', 300]]);
  timers.set(a, 'tick', 1000, 'slow', true); // restart: the old period is gone
  assert.equal(a.timers?.length, 1);
  await clock.advance(999);
  assert.equal(fired.length, 4);
  await clock.advance(1);
  assert.deepEqual(fired.at(-1), ['a', 'slow', 1350]);
  timers.set(a, 'other', 10, 'other', false);
  timers.cancel(a, 'tick');
  await clock.advance(2000);
  assert.deepEqual(fired.slice(5), [['a', 'other', 1360]], 'the cancelled timer never fires again');
  timers.set(a, 'x', 10, 'x', true);
  timers.set(a, 'y', 10, 'y', true);
  timers.set(b, 'z', 10, 'z', true);
  timers.cancelAll(a);
  assert.equal(a.timers, undefined);
  await clock.advance(10);
  assert.deepEqual(fired.at(-1)?.slice(0, 2), ['b', 'z']);
  timers.stop();
  assert.equal(pending(), 0);
  const n = fired.length;
  await clock.advance(100);
  assert.equal(fired.length, n, 'nothing fires after stop');
});

test('removing from the middle keeps the heap ordered (random sets and cancels against a sorted model)', async () => {
  const { clock } = counted();
  const fired: number[] = [];
  const timers = new ActorTimers<Owner>(clock, (_o, msg) => fired.push(msg as number));
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const owners = Array.from({ length: 300 }, (_, i) => new Owner(`o${i}`));
  const model = new Map<Owner, { at: number; seq: number; id: number }>();
  let seq = 0;
  for (let i = 0; i < 3000; i++) {
    const o = owners[Math.floor(rnd() * owners.length)]!;
    if (rnd() < 0.3) {
      timers.cancel(o, 't');
      model.delete(o);
    } else {
      const delay = Math.floor(rnd() * 500);
      timers.set(o, 't', delay, i, false);
      model.set(o, { at: delay, seq: seq++, id: i });
    }
  }
  const expected = [...model.values()].sort((x, y) => x.at - y.at || x.seq - y.seq).map((x) => x.id);
  await clock.advance(1000);
  assert.deepEqual(fired, expected);
});
