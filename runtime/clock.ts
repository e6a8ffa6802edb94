/**
 * Time as a port, so the testing harness can run a whole cluster on a virtual
 * clock that advances only when the test says so.
 */
export interface Clock {
  /** Milliseconds since the epoch (virtual clocks start at a fixed instant). */
  now(): number;
  /** Runs `fn` after `ms` milliseconds; returns a handle for clearTimeout. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** Opaque timer handle. */
export type TimerHandle = { readonly __timer: true } | ReturnType<typeof setTimeout>;

/** The real clock. Timers are unref'd so a pending actor timer never keeps a process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout(h) {
    clearTimeout(h as ReturnType<typeof setTimeout>);
  },
};

interface VTimer { at: number; seq: number; fn: () => void; handle: TimerHandle }

/**
 * A clock that moves only through `advance`/`runUntil`. Timers fire in order
 * of due time, then of creation, so a run is repeatable. Between timers it
 * lets the event loop settle (microtasks and setImmediate callbacks), which is
 * enough for in-memory adapters.
 */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: VTimer[] = [];
  private byHandle = new Map<TimerHandle, VTimer>();

  /** @param start virtual start time in ms (default 2026-01-01T00:00:00Z). */
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = { __timer: true } as TimerHandle;
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, handle };
    // keep sorted: binary insert by (at, seq)
    let lo = 0, hi = this.timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = this.timers[mid]!;
      if (m.at < timer.at || (m.at === timer.at && m.seq < timer.seq)) lo = mid + 1; else hi = mid;
    }
    this.timers.splice(lo, 0, timer);
    this.byHandle.set(handle, timer);
    return handle;
  }
  clearTimeout(handle: TimerHandle): void {
    const t = this.byHandle.get(handle);
    if (!t) return;
    this.byHandle.delete(handle);
    const i = this.timers.indexOf(t);
    if (i >= 0) this.timers.splice(i, 1);
  }
  /** Number of pending timers. */
  get pending(): number {
    return this.timers.length;
  }
  /** Fires every timer due within the next `ms` milliseconds, settling the event loop after each, then sets the time to now+ms. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    await settle();
    for (;;) {
      const next = this.timers[0];
      if (!next || next.at > target) break;
      this.timers.shift();
      this.byHandle.delete(next.handle);
      this.t = Math.max(this.t, next.at);
      try {
        next.fn();
      } catch {
        // a timer callback's failure is its owner's business, not the clock's
      }
      await settle();
    }
    this.t = target;
    await settle();
  }
}

/** Lets queued microtasks and immediates run a few rounds. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}
