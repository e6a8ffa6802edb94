/**
 * A token bucket: `capacity` tokens, refilled at `perSecond`. `take()` is
 * O(1) and allocation-free; used per connection and per user at the edge.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(private readonly capacity: number, private readonly perSecond: number, private readonly now: () => number = Date.now) {
    this.tokens = capacity;
    this.last = now();
  }
  /** Takes `n` tokens if there are enough; false means "over the limit". */
  take(n = 1): boolean {
    const t = this.now();
    const refill = ((t - this.last) / 1000) * this.perSecond;
    if (refill > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + refill);
      this.last = t;
    }
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
  /** Milliseconds until `n` tokens are available. */
  retryAfterMs(n = 1): number {
    return this.tokens >= n ? 0 : Math.ceil(((n - this.tokens) / this.perSecond) * 1000);
  }
}
