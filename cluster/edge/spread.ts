/**
 * Periodic work over every connection of an edge (pings, session refreshes)
 * as a steady trickle instead of a burst: small slices, one every
 * SPREAD_TICK_MS, over at most half the period. A ping is a write system
 * call and its pong a read: 10,000 connections pinged in slices of 500 with
 * only a setImmediate between them cost the node's thread 0.4-0.7 s of CPU
 * within about a second, every 30 s (a CPU profile of the fan-out bench at
 * 250 posts/s). The longest event-loop stall of an idle node holding 10,000
 * connections (prom-client's nodejs_eventloop_lag_max_seconds read every
 * 2 s for 70 s, two runs each): 55-89 ms at the sweeps before, at most
 * 46-49 ms after, as between sweeps.
 */

/** Time between two slices when the period allows it. */
export const SPREAD_TICK_MS = 50;
/** Fewest items in a slice (below it, ticks are saved instead). */
export const SPREAD_MIN_SLICE = 16;

/**
 * Runs `fn` on `items` in slices (the first at once, then one every
 * SPREAD_TICK_MS or closer, all within `periodMs / 2`), each of at most
 * `maxSlice` items and at least SPREAD_MIN_SLICE; an async `fn` is awaited
 * before the next slice. Stops early once `stopped()` is true. The waits do
 * not keep the process alive.
 */
export async function spreadOver<T>(
  items: readonly T[], maxSlice: number, periodMs: number, stopped: () => boolean, fn: (batch: readonly T[]) => unknown,
): Promise<void> {
  const ticks = Math.max(1, Math.floor(periodMs / 2 / SPREAD_TICK_MS));
  const size = Math.max(1, Math.min(maxSlice, Math.max(SPREAD_MIN_SLICE, Math.ceil(items.length / ticks))));
  const count = Math.ceil(items.length / size);
  const gap = count > 1 ? Math.min(SPREAD_TICK_MS, periodMs / 2 / count) : 0;
  for (let k = 0; k < count && !stopped(); k++) {
    if (k > 0) await new Promise<void>((r) => setTimeout(r, gap).unref());
    if (stopped()) return;
    await fn(items.slice(k * size, (k + 1) * size));
  }
}
