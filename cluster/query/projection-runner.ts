/**
 * ProjectionRunner: the durable consumer that keeps the query store in step
 * with the log. One tail per prefix (`channel.`, `workspace.`, `user.`)
 * feeds one buffer; the buffer is written to the sink in batches (up to
 * `maxBatch` records, or after `maxDelayMs`), one transaction per shard.
 *
 * Exactly-once effects from an at-least-once log: the sink stores each
 * stream's position in the same transaction as the rows and drops records at
 * or below it, so a replay, a second runner or a crash between "written" and
 * "position stored" cannot apply a record twice. On start the runner loads
 * the stored positions and tails from the beginning (the EventLog port's
 * `afterPos` is one number for all the streams under a prefix, so it cannot
 * resume each stream at its own position); records already applied are
 * skipped in memory without touching the store. See docs/query-side.md for
 * what that costs on a long log.
 *
 * Backpressure: a handler call waits while the buffer is full, so a slow or
 * unreachable store stalls the tails instead of filling memory; a failed
 * write is retried with back-off, forever, until stop().
 *
 * Metrics (through the Metrics port):
 * - `chorus_projection_lag_messages{projection}`: records behind the log:
 *   buffered plus, for the streams seen recently, the log's last position minus
 *   the stored one (exact on the PostgreSQL logs, whose positions are dense;
 *   an upper bound on JetStream, whose positions are per workspace stream);
 * - `chorus_projection_lag_seconds{projection}`: age of the oldest record not
 *   yet written, or after a write, how old its newest record was when written;
 * - `chorus_projection_records_total{projection,outcome}` (applied, skipped,
 *   poison), `chorus_projection_batch_seconds{projection}`,
 *   `chorus_projection_errors_total{projection}`.
 */
import type { Disposable } from '../../runtime/transport/transport.ts';
import type { EventLog, LogEntry } from '../../runtime/log/event-log.ts';
import { noopMetrics, silentLogger, type Logger, type Metrics } from '../../runtime/metrics.ts';

/** Where a projection writes: implemented by adapters/postgres PostgresProjectionSink. */
export interface ProjectionSink {
  /** The stored position of every stream. */
  positions(): Promise<Map<string, number>>;
  /** Writes a batch idempotently; `positions` holds each batch stream's stored position afterwards. */
  apply(entries: readonly LogEntry[]): Promise<{ applied: number; skipped: number; poison: number; positions: Map<string, number> }>;
}

/** Options of ProjectionRunner; every field has a default. */
export interface ProjectionRunnerOptions {
  /** Label in metrics and logs. Default 'query'. */
  readonly name?: string;
  /** Stream prefixes to tail. Default the chat's: `channel.`, `workspace.`, `user.`. */
  readonly prefixes?: readonly string[];
  /** Most records per write. Default 500. */
  readonly maxBatch?: number;
  /** A record waits at most this long for others to share its write. Default 10 ms. */
  readonly maxDelayMs?: number;
  /** How often the lag in messages is measured. Default 1000 ms. */
  readonly lagProbeMs?: number;
  /** Most streams asked for their last position per lag probe (each is a statement). Default 32. */
  readonly lagProbeStreams?: number;
  /**
   * The log's positions are dense per stream (1, 2, 3, ...: the memory and
   * PostgreSQL logs; not JetStream). Then a record that skips positions
   * means the tail delivered out of order, and the missing records are read
   * from the log (in order) before it. Default false.
   */
  readonly densePositions?: boolean;
  /** Called after each write with the streams that moved and their new positions (cache invalidation). */
  readonly onCommitted?: (moved: ReadonlyMap<string, number>) => void;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A durable consumer of the log that writes the query store. */
export class ProjectionRunner {
  private readonly o: Required<Omit<ProjectionRunnerOptions, 'onCommitted'>> & Pick<ProjectionRunnerOptions, 'onCommitted'>;
  private readonly known = new Map<string, number>();
  private readonly queued = new Map<string, number>();
  private buffer: LogEntry[] = [];
  private tails: Disposable[] = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private killed = false;
  private readonly active = new Set<string>();
  private readonly behind = new Set<string>();
  /** stop() is writing what is left: partial batches go out back to back. */
  private draining = false;
  private readonly waiters = new Set<{ stream: string; pos: number; resolve: () => void }>();
  private readonly m;

  constructor(private readonly log: EventLog, private readonly sink: ProjectionSink, options: ProjectionRunnerOptions = {}) {
    this.o = {
      name: options.name ?? 'query',
      prefixes: options.prefixes ?? ['channel.', 'workspace.', 'user.'],
      maxBatch: options.maxBatch ?? 500,
      maxDelayMs: options.maxDelayMs ?? 10,
      lagProbeMs: options.lagProbeMs ?? 1000,
      lagProbeStreams: options.lagProbeStreams ?? 32,
      densePositions: options.densePositions ?? false,
      onCommitted: options.onCommitted,
      metrics: options.metrics ?? noopMetrics,
      logger: options.logger ?? silentLogger,
    };
    const problems: string[] = [];
    for (const k of ['maxBatch', 'maxDelayMs', 'lagProbeMs', 'lagProbeStreams'] as const) {
      if (!Number.isSafeInteger(this.o[k]) || this.o[k] < 1) problems.push(`${k} must be a positive integer, got ${String(this.o[k])}`);
    }
    if (!this.o.prefixes.length) problems.push('prefixes must not be empty');
    if (problems.length) throw new RangeError(`ProjectionRunner options: ${problems.join('; ')}`);
    const mt = this.o.metrics;
    this.m = {
      lagMessages: mt.gauge('chorus_projection_lag_messages', 'Log records not yet in the query store', ['projection']),
      lagSeconds: mt.gauge('chorus_projection_lag_seconds', 'Age of the oldest log record not yet in the query store (or of the newest, when it was written)', ['projection']),
      records: mt.counter('chorus_projection_records_total', 'Log records seen by the projection, by outcome', ['projection', 'outcome']),
      batch: mt.histogram('chorus_projection_batch_seconds', 'Time to write one projection batch', ['projection'], [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]),
      errors: mt.counter('chorus_projection_errors_total', 'Failed projection writes (retried)', ['projection']),
      gaps: mt.counter('chorus_projection_gaps_total', 'Records the tail delivered out of order, filled by reading the log', ['projection']),
    };
  }

  /** Loads the stored positions and starts the tails. */
  async start(): Promise<this> {
    for (const [s, p] of await this.sink.positions()) this.known.set(s, p);
    for (const prefix of this.o.prefixes) this.tails.push(await this.log.tail(prefix, 0, (e) => this.onRecord(e)));
    const probe = () => {
      if (this.stopped) return;
      this.probeLag().catch(() => undefined).finally(() => {
        if (!this.stopped) this.probeTimer = setTimeout(probe, this.o.lagProbeMs).unref();
      });
    };
    this.probeTimer = setTimeout(probe, this.o.lagProbeMs).unref();
    this.o.logger.info({ projection: this.o.name, streams: this.known.size }, 'projection started');
    return this;
  }

  /** The stored position of `stream` as this runner knows it (0 if none). */
  position(stream: string): number {
    return this.known.get(stream) ?? 0;
  }

  /** Resolves once `stream` is written up to `pos` (tests, tools). */
  waitFor(stream: string, pos: number, timeoutMs = 10_000): Promise<void> {
    if (this.position(stream) >= pos) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = { stream, pos, resolve: () => { clearTimeout(t); resolve(); } };
      const t = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`projection ${this.o.name}: ${stream} not at ${pos} within ${timeoutMs} ms (at ${this.position(stream)})`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  private async onRecord(e: LogEntry): Promise<void> {
    if (this.stopped) return;
    const seen = Math.max(this.known.get(e.stream) ?? 0, this.queued.get(e.stream) ?? 0);
    if (e.pos <= seen) {
      this.m.records.inc({ projection: this.o.name, outcome: 'skipped' });
      return;
    }
    if (this.o.densePositions && e.pos > seen + 1) {
      // a gap: the tail skipped or reordered records of this stream; read them from the log, in order
      const missing = await this.log.read(e.stream, seen, e.pos - seen - 1);
      this.m.gaps.inc({ projection: this.o.name });
      for (const m of missing) if (m.pos > seen && m.pos < e.pos) this.buffer.push(m);
    }
    this.queued.set(e.stream, e.pos);
    this.buffer.push(e);
    if (this.active.size < this.o.lagProbeStreams) this.active.add(e.stream);
    if (this.buffer.length >= this.o.maxBatch) await this.flush();
    else this.armTimer();
  }

  /** Writes the buffer `maxDelayMs` from now, unless a write is already due. */
  private armTimer(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.o.maxDelayMs);
  }

  /** Writes the buffer (one write at a time); retries a failed write until it succeeds or the runner stops. */
  private flush(): Promise<void> {
    // chained: whatever is buffered when the write in flight ends is written next (nothing is left behind by a race)
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (!this.buffer.length) return Promise.resolve();
    this.flushing = this.writeLoop().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /**
   * Writes the buffer: its first batch whatever its size (the delay is up, the
   * buffer is full, or stop() drains), then only full batches. Records that
   * arrived during a write wait for their own delay instead of going out at
   * once: written back to back, a steady trickle became a write per few
   * records (250 posts/s: 29 query-side writes a second instead of 20, the
   * search projection 11 instead of 4; the query side then cost more CPU than
   * at ten times the rate, since a write costs about the same for 2 records or
   * 200).
   */
  private async writeLoop(): Promise<void> {
    let failures = 0;
    let written = false;
    while (this.buffer.length && !this.killed) {
      if (written && !this.draining && this.buffer.length < this.o.maxBatch) {
        this.armTimer();
        return;
      }
      const batch = this.buffer.slice(0, this.o.maxBatch);
      const started = performance.now();
      try {
        const r = await this.sink.apply(batch);
        if (this.killed) return;
        this.buffer = this.buffer.slice(batch.length);
        failures = 0;
        written = true;
        this.m.batch.observe((performance.now() - started) / 1000, { projection: this.o.name });
        this.m.records.inc({ projection: this.o.name, outcome: 'applied' }, r.applied);
        if (r.skipped) this.m.records.inc({ projection: this.o.name, outcome: 'skipped' }, r.skipped);
        if (r.poison) {
          this.m.records.inc({ projection: this.o.name, outcome: 'poison' }, r.poison);
          this.o.logger.warn({ projection: this.o.name, poison: r.poison }, 'projection skipped records it cannot decode');
        }
        const moved = new Map<string, number>();
        for (const [s, p] of r.positions) {
          if (p > (this.known.get(s) ?? 0)) moved.set(s, p);
          this.known.set(s, Math.max(p, this.known.get(s) ?? 0));
        }
        const newest = batch[batch.length - 1]!;
        this.m.lagSeconds.set(this.buffer.length ? (Date.now() - this.buffer[0]!.ts) / 1000 : Math.max(0, Date.now() - newest.ts) / 1000, { projection: this.o.name });
        this.m.lagMessages.set(this.buffer.length, { projection: this.o.name });
        for (const w of this.waiters) if (this.position(w.stream) >= w.pos) { this.waiters.delete(w); w.resolve(); }
        if (moved.size && this.o.onCommitted) {
          try {
            this.o.onCommitted(moved);
          } catch (err) {
            this.o.logger.warn({ projection: this.o.name, err: (err as Error).message }, 'onCommitted failed');
          }
        }
      } catch (err) {
        if (this.killed) return;
        failures++;
        this.m.errors.inc({ projection: this.o.name });
        this.m.lagSeconds.set((Date.now() - this.buffer[0]!.ts) / 1000, { projection: this.o.name });
        if (failures === 1 || failures % 20 === 0) this.o.logger.warn({ projection: this.o.name, failures, err: (err as Error).message }, 'projection write failed; retrying');
        if (this.stopped) return;
        await sleep(Math.min(5000, 50 * 2 ** Math.min(failures, 7)));
      }
    }
  }

  /** Measures the lag in messages over the streams seen recently and those behind at the last probe. */
  private async probeLag(): Promise<void> {
    const streams = [...new Set([...this.behind, ...this.active])].slice(0, this.o.lagProbeStreams);
    this.active.clear();
    let lag = this.buffer.length;
    const bufferedBy = new Map<string, number>();
    for (const e of this.buffer) bufferedBy.set(e.stream, (bufferedBy.get(e.stream) ?? 0) + 1);
    this.behind.clear();
    // asked together: the PostgreSQL logs answer concurrent lookups with one statement
    const lasts = await Promise.all(streams.map((s) => this.log.lastPos(s)));
    streams.forEach((s, i) => {
      const last = lasts[i]!;
      if (last > this.position(s)) this.behind.add(s);
      lag += Math.max(0, last - this.position(s) - (bufferedBy.get(s) ?? 0));
    });
    this.m.lagMessages.set(lag, { projection: this.o.name });
    if (!this.buffer.length && !this.behind.size) this.m.lagSeconds.set(0, { projection: this.o.name });
    else if (this.buffer.length) this.m.lagSeconds.set((Date.now() - this.buffer[0]!.ts) / 1000, { projection: this.o.name });
  }

  /** Stops the tails and writes what is buffered (one attempt per failure back-off, until it succeeds or `timeoutMs`). */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.stopped) return;
    await Promise.all(this.tails.map((t) => t.dispose()));
    this.tails = [];
    if (this.timer) clearTimeout(this.timer);
    this.draining = true;
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length && Date.now() < deadline && !this.killed) {
      await this.flush();
      if (this.buffer.length) await sleep(50);
    }
    this.stopped = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
  }

  /** Simulates a crash: stops at once, drops the buffer, abandons a write in flight (tests). */
  async kill(): Promise<void> {
    this.killed = true;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.buffer = [];
    await Promise.all(this.tails.map((t) => t.dispose()));
    this.tails = [];
  }
}
