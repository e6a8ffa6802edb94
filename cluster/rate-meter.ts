/**
 * Events per second over a sliding window (default 60 s) in one-second
 * buckets: O(1) to mark, O(window) to read, no allocation.
 */
export class RateMeter {
  private readonly buckets: Float64Array;
  private readonly stamps: Float64Array;
  constructor(private readonly now: () => number, private readonly windowSec = 60) {
    this.buckets = new Float64Array(windowSec);
    this.stamps = new Float64Array(windowSec);
  }
  /** Counts `n` events now. */
  mark(n = 1): void {
    const sec = Math.floor(this.now() / 1000);
    const i = sec % this.windowSec;
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec;
      this.buckets[i] = 0;
    }
    this.buckets[i]! += n;
  }
  /** Mean rate over the window (the current second excluded, as it is incomplete). */
  perSecond(): number {
    const sec = Math.floor(this.now() / 1000);
    let sum = 0;
    for (let i = 0; i < this.windowSec; i++) {
      const age = sec - this.stamps[i]!;
      if (age >= 1 && age <= this.windowSec) sum += this.buckets[i]!;
    }
    return sum / this.windowSec;
  }
}

/** This process's CPU use in percent of one core since the previous reading (for the right-sizing recommendations). */
export class CpuMeter {
  private last = process.cpuUsage();
  private lastAt = process.hrtime.bigint();
  private value = 0;
  percent(): number {
    const now = process.hrtime.bigint();
    const elapsedUs = Number(now - this.lastAt) / 1000;
    if (elapsedUs < 900_000) return this.value; // at most one reading a second
    const u = process.cpuUsage(this.last);
    this.value = Math.round(((u.user + u.system) / elapsedUs) * 1000) / 10;
    this.last = process.cpuUsage();
    this.lastAt = now;
    return this.value;
  }
}
