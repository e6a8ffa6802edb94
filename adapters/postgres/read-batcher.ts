/**
 * ReadBatcher: concurrent point reads answered by one statement. Requests
 * made in one loop turn, or while the previous statement runs, go out
 * together (up to `max` per statement), the way the log's appends share a
 * transaction.
 *
 * Why: on PGlite a statement has a large fixed cost (parse, plan, the
 * WebAssembly round trip): reading a log stream of five 200-byte records
 * cost 700-970 us of CPU alone and about 200 us as one of 50 in a statement
 * (2,000 streams read at once, on disk). An activation storm,
 * 10,000 clients connecting to a restarted node, reads one stream per user
 * actor; a projection's lag probe asks for the last position of 32 streams.
 * On a PostgreSQL server it saves the round trips.
 */
export class ReadBatcher<Q, R> {
  private queue: Array<{ q: Q; resolve(r: R): void; reject(e: unknown): void }> = [];
  private scheduled = false;
  private running = false;

  /**
   * `run` answers a batch: one result per request, in request order; when it
   * throws, every request of the batch rejects with that error.
   */
  constructor(private readonly run: (batch: readonly Q[]) => Promise<R[]>, private readonly max = 64) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`ReadBatcher: max must be a positive integer, got ${max}`);
  }

  /** Answers `q` with the next batch. */
  submit(q: Q): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ q, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    // setImmediate, not a microtask: requests made by the other I/O callbacks of this loop turn join the batch
    setImmediate(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.max);
        try {
          const out = await this.run(batch.map((b) => b.q));
          if (out.length !== batch.length) throw new Error(`ReadBatcher: ${out.length} results for ${batch.length} requests`);
          batch.forEach((b, i) => b.resolve(out[i]!));
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
