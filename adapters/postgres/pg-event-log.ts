import { systemClock, type Clock } from '../../runtime/clock.ts';
import { BackendError, ChorusError, LogConflictError } from '../../runtime/errors.ts';
import type { AppendOptions, AppendRecord, AppendResult, EventLog, LogEntry } from '../../runtime/log/event-log.ts';
import type { Snapshot, SnapshotStore } from '../../runtime/log/snapshot-store.ts';
import type { Disposable } from '../../runtime/transport/transport.ts';
import { migrate } from './migrations.ts';
import { ReadBatcher } from './read-batcher.ts';
import { RETRYABLE_SQLSTATES, sqlState, type SqlClient, type SqlQueryable } from './sql-client.ts';

/** Options of PostgresEventLog; every field has a default. */
export interface PostgresEventLogOptions {
  /** Most appends written in one transaction (group commit). Default 1000. */
  readonly maxBatch?: number;
  /** Rows per INSERT ... SELECT FROM unnest statement. Default 1000. */
  readonly rowsPerStatement?: number;
  /**
   * Least time between the starts of two batches (group commit): appends that
   * arrive within it share the next batch. The first append after a quiet
   * spell is written at once. Default 0 (the embedded profile uses 5).
   */
  readonly minBatchIntervalMs?: number;
  /** Transaction attempts when another writer wins a race (unique violation, deadlock). Default 20. */
  readonly maxAttempts?: number;
  /** How often an idle tail polls for rows written by other clients. Default 100 ms (appends through this instance wake it at once). */
  readonly tailPollMs?: number;
  /** Rows fetched per tail poll. Default 500. */
  readonly tailBatch?: number;
  /**
   * Least time between two polls of one tail once it has caught up, even when
   * appends wake it: wakes within the interval share one poll. Every poll is a
   * statement (about 0.3-1 ms of CPU on PGlite), and under load every group
   * commit would otherwise wake every tail. The price is up to this much
   * projection delay. Default 50 ms; 0 polls on every wake.
   */
  readonly tailMinIntervalMs?: number;
  /**
   * This instance is the only writer of `chorus_log` in its database (PGlite:
   * one process owns the directory, and the composition root makes one log
   * per client). Then a tail that has caught up takes the rows this instance
   * commits straight from memory, in commit order, instead of reading them
   * back (each poll is a statement, and bytea comes back as hex through
   * PGlite's WebAssembly boundary); it polls again only to catch up after
   * falling `feedLimit` records behind. Never set it when other processes or
   * other instances write the same table: their rows would be missed.
   * Default false.
   */
  readonly singleWriter?: boolean;
  /** Records a caught-up single-writer tail may have waiting in memory before it goes back to polling. Default 10000. */
  readonly feedLimit?: number;
  /** Streams whose last position is remembered, so a batch of known streams is planned without reading the table. Default 100000. */
  readonly positionCache?: number;
  /** Runs the schema migrations before first use. Default true. */
  readonly migrate?: boolean;
  /** `close()` also closes the SqlClient. Default false: whoever made the client closes it. */
  readonly closeClient?: boolean;
  /** Told about tail poll and handler failures (the tail retries them). Default: ignore. */
  readonly onTailError?: (err: unknown) => void;
  /** Source of the `ts` column. Default: the system clock. */
  readonly clock?: Clock;
}

type Resolved = Required<Omit<PostgresEventLogOptions, 'clock' | 'onTailError'>> & Pick<PostgresEventLogOptions, 'onTailError'> & { clock: Clock };

/** Defaults, then validation listing every problem, then a frozen object. */
function resolveOptions(o: PostgresEventLogOptions): Readonly<Resolved> {
  const r: Resolved = {
    maxBatch: o.maxBatch ?? 1000,
    rowsPerStatement: o.rowsPerStatement ?? 1000,
    maxAttempts: o.maxAttempts ?? 20,
    tailPollMs: o.tailPollMs ?? 100,
    tailBatch: o.tailBatch ?? 500,
    tailMinIntervalMs: o.tailMinIntervalMs ?? 50,
    minBatchIntervalMs: o.minBatchIntervalMs ?? 0,
    singleWriter: o.singleWriter ?? false,
    feedLimit: o.feedLimit ?? 10_000,
    positionCache: o.positionCache ?? 100_000,
    migrate: o.migrate ?? true,
    closeClient: o.closeClient ?? false,
    onTailError: o.onTailError,
    clock: o.clock ?? systemClock,
  };
  const problems: string[] = [];
  for (const k of ['maxBatch', 'rowsPerStatement', 'maxAttempts', 'tailPollMs', 'tailBatch', 'feedLimit'] as const) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 1) problems.push(`${k} must be a positive integer, got ${String(r[k])}`);
  }
  for (const k of ['tailMinIntervalMs', 'positionCache', 'minBatchIntervalMs'] as const) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 0) problems.push(`${k} must be a non-negative integer, got ${String(r[k])}`);
  }
  if (problems.length) throw new RangeError(`PostgresEventLog options: ${problems.join('; ')}`);
  return Object.freeze(r);
}

interface PendingAppend {
  readonly stream: string;
  readonly data: Uint8Array;
  readonly dedupId: string | undefined;
  readonly expected: number | undefined;
  resolve(r: AppendResult): void;
  reject(e: unknown): void;
}

type Outcome = { ok: AppendResult } | { err: ChorusError };

/** A batch planned and written: each caller's outcome, the rows inserted, each stream's last position, the transaction id. */
interface Planned {
  outcomes: Outcome[];
  rows: LogEntry[];
  last: Map<string, number>;
  txid: string | undefined;
}

interface LogRow extends Record<string, unknown> {
  stream: string;
  pos: number;
  dedup_id: string | null;
  data: Uint8Array;
  ts: number;
}

function toEntry(r: LogRow): LogEntry {
  return { stream: r.stream, pos: Number(r.pos), data: r.data, ts: Number(r.ts), ...(r.dedup_id !== null ? { dedupId: r.dedup_id } : {}) };
}

function checkStream(stream: unknown): asserts stream is string {
  if (typeof stream !== 'string' || stream.length === 0) throw new TypeError(`stream must be a non-empty string, got ${String(stream)}`);
}

function checkPos(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer, got ${String(v)}`);
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

const wrap = (what: string, err: unknown) =>
  err instanceof ChorusError ? err : new BackendError('postgres', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });

/**
 * EventLog port on PostgreSQL, for PGlite (embedded profile) and pg alike.
 *
 * Table `chorus_log(stream, pos, dedup_id, data, ts, gseq, txid)`: positions
 * are dense from 1 per stream; the primary key (stream, pos) and unique
 * (stream, dedup_id) make fencing and dedup hold even with several writer
 * processes, and dedup ids are kept forever.
 *
 * Group commit: appends queued while a transaction is running (or within one
 * tick) go into the next transaction together: one query reads the state
 * of every stream and dedup id in the batch, one INSERT ... SELECT FROM
 * unnest writes the rows; one transaction in flight per instance. Each caller
 * still gets its own result: the batch is planned in memory in arrival order
 * (dedup first, then the fencing check, then the next position), so a
 * conflict fails only its own append. If another process wins a race (unique
 * violation), the whole transaction is re-planned and retried.
 *
 * Tail: polls by (txid, gseq) and only passes rows of transactions older than
 * the oldest running one (`pg_snapshot_xmin`), so a row committed late with a
 * smaller sequence number is never skipped; appends through this instance
 * wake local tails at once. A long-running write transaction elsewhere in the
 * same database delays tails until it ends.
 */
export class PostgresEventLog implements EventLog {
  private readonly opts: Readonly<Resolved>;
  private readonly pending: PendingAppend[] = [];
  private scheduled = false;
  private flushing: Promise<void> | undefined;
  /** When the last batch started (performance.now()), for minBatchIntervalMs. */
  private lastBatchAt = -Infinity;
  private readonly tails = new Set<PgTail>();
  /** Last position of recently written streams (see `positionCache`). */
  private readonly lastWritten = new Map<string, number>();
  private closed = false;
  private readyP: Promise<unknown> | undefined;
  /** Concurrent reads and last-position lookups share statements (see ReadBatcher). */
  private readonly reads = new ReadBatcher<{ stream: string; afterPos: number; limit: number }, LogEntry[]>((b) => this.readMany(b));
  private readonly lasts = new ReadBatcher<string, number>((b) => this.lastPosMany(b));

  constructor(private readonly client: SqlClient, options: PostgresEventLogOptions = {}) {
    this.opts = resolveOptions(options);
  }

  /** Resolves once the schema is migrated (appends and reads wait for it anyway). */
  ready(): Promise<unknown> {
    this.readyP ??= this.opts.migrate ? migrate(this.client) : Promise.resolve();
    return this.readyP;
  }

  append(stream: string, record: AppendRecord, opts: AppendOptions = {}): Promise<AppendResult> {
    checkStream(stream);
    if (!(record?.data instanceof Uint8Array)) throw new TypeError('record.data must be a Uint8Array');
    if (record.dedupId !== undefined && typeof record.dedupId !== 'string') throw new TypeError('record.dedupId must be a string');
    if (opts.expectedLastPos !== undefined) checkPos('expectedLastPos', opts.expectedLastPos);
    if (this.closed) return Promise.reject(new BackendError('postgres', 'the event log is closed'));
    return new Promise<AppendResult>((resolve, reject) => {
      // copy now: the caller may reuse its buffer before the batch is written
      this.pending.push({ stream, data: record.data.slice(), dedupId: record.dedupId, expected: opts.expectedLastPos, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    // setImmediate, not a microtask: appends issued by other I/O callbacks of this loop turn join the batch
    setImmediate(() => {
      this.scheduled = false;
      this.flushing = this.flushLoop().finally(() => {
        this.flushing = undefined;
        if (this.pending.length) this.schedule();
      });
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      await this.ready();
    } catch (err) {
      for (const p of this.pending.splice(0)) p.reject(wrap('schema not ready', err));
      return;
    }
    while (this.pending.length) {
      const wait = this.lastBatchAt + this.opts.minBatchIntervalMs - performance.now();
      if (wait > 0 && this.pending.length < this.opts.maxBatch) await new Promise((r) => setTimeout(r, wait));
      this.lastBatchAt = performance.now();
      await this.writeBatch(this.pending.splice(0, this.opts.maxBatch));
      // PGlite answers through microtasks only: without this yield a steady stream of appends would starve timers and I/O
      // (and the yield lets callers woken by this batch join the next one)
      await yieldToLoop();
    }
  }

  /** Writes one batch atomically, retrying lost races; settles every caller, never throws. */
  private async writeBatch(batch: PendingAppend[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let done: Planned;
      try {
        // Plan from the remembered positions on the first attempt when it can; a retry (a lost race or a stored
        // duplicate id surfaced as a unique violation) reads the table.
        const fromCache = attempt === 1 && this.canPlanFromCache(batch);
        // A batch that fits one INSERT needs no transaction: that statement is atomic, and a state read that went stale
        // before it surfaces as a unique violation (retried), never as a wrong position; saves BEGIN and COMMIT (on PGlite
        // each is a round trip through its WebAssembly glue: 3 statements a batch cost about twice 1). PGlite keeps the
        // transaction when the batch also reads the table: outside one it syncs its files after every statement.
        done = (this.client.dialect === 'pg' || fromCache) && batch.length <= this.opts.rowsPerStatement
          ? await this.planAndInsert(this.client, batch, fromCache)
          : await this.client.transaction((tx) => this.planAndInsert(tx, batch, fromCache));
      } catch (err) {
        for (const p of batch) this.lastWritten.delete(p.stream);
        const state = sqlState(err);
        if (state !== undefined && RETRYABLE_SQLSTATES.has(state) && attempt < this.opts.maxAttempts) {
          if (attempt > 1) await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
          continue;
        }
        const e = wrap(`append of ${batch.length} record(s) failed`, err);
        for (const p of batch) p.reject(e);
        return;
      }
      for (const [stream, pos] of done.last) this.remember(stream, pos);
      batch.forEach((p, i) => {
        const o = done.outcomes[i]!;
        if ('ok' in o) p.resolve(o.ok);
        else p.reject(o.err);
      });
      if (this.opts.singleWriter && done.txid !== undefined && done.rows.length) {
        const txid = BigInt(done.txid);
        for (const t of this.tails) t.offer(txid, done.rows);
      } else {
        for (const t of this.tails) t.wake();
      }
      return;
    }
  }

  /** Every stream's last position is remembered and every fencing expectation matches it. */
  private canPlanFromCache(batch: PendingAppend[]): boolean {
    if (this.opts.positionCache === 0) return false;
    const next = new Map<string, number>();
    for (const p of batch) {
      const cur = next.get(p.stream) ?? this.lastWritten.get(p.stream);
      if (cur === undefined) return false;
      if (p.expected !== undefined && p.expected !== cur) return false; // a conflict, or a stale cache: ask the table
      next.set(p.stream, cur + 1);
    }
    return true;
  }

  private remember(stream: string, pos: number): void {
    if (this.opts.positionCache === 0) return;
    this.lastWritten.delete(stream); // re-inserted last: the Map's order is least recently written first
    this.lastWritten.set(stream, pos);
    if (this.lastWritten.size > this.opts.positionCache) this.lastWritten.delete(this.lastWritten.keys().next().value!);
  }

  /**
   * Plans the batch in arrival order (dedup, then fencing, then the next
   * position) and inserts its new rows. `fromCache`: the streams' last
   * positions come from memory and a stored duplicate id is left to the
   * unique index (the violation makes the caller retry with `fromCache` off);
   * otherwise one query reads them.
   */
  private async planAndInsert(tx: SqlQueryable, batch: PendingAppend[], fromCache: boolean): Promise<Planned> {
    const last = new Map<string, number>();
    const key = (stream: string, id: string) => `${stream}\u0000${id}`;
    const known = new Map<string, number>();
    if (fromCache) {
      for (const p of batch) last.set(p.stream, this.lastWritten.get(p.stream)!);
    } else {
      // One round trip for the state of every (stream, dedup id) in the batch: the stream's last position (a backward
      // index probe, not an aggregate) and the position of an already stored dedup id.
      const state = await tx.query<{ i: number; last: number | null; dup: number | null }>(
        `SELECT s.i,
                (SELECT l.pos FROM chorus_log l WHERE l.stream = s.stream ORDER BY l.pos DESC LIMIT 1) AS last,
                (SELECT l.pos FROM chorus_log l WHERE l.stream = s.stream AND l.dedup_id = s.dedup_id) AS dup
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(stream, dedup_id, i)`,
        [batch.map((p) => p.stream), batch.map((p) => p.dedupId ?? null)],
      );
      for (const r of state) {
        const p = batch[Number(r.i) - 1]!;
        last.set(p.stream, Number(r.last ?? 0));
        if (r.dup !== null && p.dedupId !== undefined) known.set(key(p.stream, p.dedupId), Number(r.dup));
      }
    }
    const now = this.opts.clock.now();
    const rows: LogEntry[] = [];
    const outcomes: Outcome[] = [];
    for (const p of batch) {
      // dedup before fencing, as the port (and JetStream) do: a retried append is a duplicate, not a conflict
      if (p.dedupId !== undefined) {
        const hit = known.get(key(p.stream, p.dedupId));
        if (hit !== undefined) {
          outcomes.push({ ok: { pos: hit, duplicate: true } });
          continue;
        }
      }
      const cur = last.get(p.stream) ?? 0;
      if (p.expected !== undefined && p.expected !== cur) {
        outcomes.push({ err: new LogConflictError(p.stream, p.expected, cur) });
        continue;
      }
      const pos = cur + 1;
      last.set(p.stream, pos);
      if (p.dedupId !== undefined) known.set(key(p.stream, p.dedupId), pos);
      rows.push({ stream: p.stream, pos, data: p.data, ts: now, ...(p.dedupId !== undefined ? { dedupId: p.dedupId } : {}) });
      outcomes.push({ ok: { pos, duplicate: false } });
    }
    // INSERT ... SELECT FROM unnest(arrays): one statement, no per-row parameters to parse (a 100-row VALUES list
    // cost twice as much on PGlite). On PGlite the arrays travel in binary (pglite-prepared.mjs): 30 records of
    // 350 B 370 us of wall, against 811 as hex text decoded in SQL. It answers with the transaction's id, which
    // single-writer tails use as their cursor.
    let txid: string | undefined;
    for (let i = 0; i < rows.length; i += this.opts.rowsPerStatement) {
      const chunk = rows.slice(i, i + this.opts.rowsPerStatement);
      const [r] = await tx.query<{ x: string }>(
        `WITH ins AS (
           INSERT INTO chorus_log (stream, pos, dedup_id, data, ts)
           SELECT s, p, d, b, $5 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[]) AS x(s, p, d, b))
         SELECT pg_current_xact_id()::text AS x`,
        [chunk.map((r) => r.stream), chunk.map((r) => r.pos), chunk.map((r) => r.dedupId ?? null), chunk.map((r) => r.data), now],
      );
      txid = r?.x;
    }
    return { outcomes, rows, last, txid };
  }

  async read(stream: string, afterPos: number, limit = 1000): Promise<LogEntry[]> {
    checkStream(stream);
    checkPos('afterPos', afterPos);
    checkPos('limit', limit);
    if (limit === 0) return [];
    try {
      await this.ready();
      return await this.reads.submit({ stream, afterPos, limit });
    } catch (err) {
      throw wrap(`read ${stream}`, err);
    }
  }

  /** Several reads in one statement: each stream's records after its position, in order, up to its limit. */
  private async readMany(batch: ReadonlyArray<{ stream: string; afterPos: number; limit: number }>): Promise<LogEntry[][]> {
    if (batch.length === 1) {
      // alone: the plain statement (the unnest + LATERAL form costs about 300 us more to plan and run on PGlite)
      const { stream, afterPos, limit } = batch[0]!;
      const rows = await this.client.query<LogRow>(
        'SELECT stream, pos, dedup_id, data, ts FROM chorus_log WHERE stream = $1 AND pos > $2 ORDER BY pos LIMIT $3', [stream, afterPos, limit]);
      return [rows.map(toEntry)];
    }
    const rows = await this.client.query<LogRow & { i: number }>(
      `SELECT r.i, l.stream, l.pos, l.dedup_id, l.data, l.ts
         FROM unnest($1::text[], $2::bigint[], $3::int[]) WITH ORDINALITY AS r(stream, after_pos, lim, i)
         CROSS JOIN LATERAL (SELECT c.stream, c.pos, c.dedup_id, c.data, c.ts FROM chorus_log c
                              WHERE c.stream = r.stream AND c.pos > r.after_pos ORDER BY c.pos LIMIT r.lim) l
        ORDER BY r.i, l.pos`,
      [batch.map((b) => b.stream), batch.map((b) => b.afterPos), batch.map((b) => b.limit)],
    );
    const out = batch.map((): LogEntry[] => []);
    for (const r of rows) out[Number(r.i) - 1]!.push(toEntry(r));
    return out;
  }

  async lastPos(stream: string): Promise<number> {
    checkStream(stream);
    try {
      await this.ready();
      return await this.lasts.submit(stream);
    } catch (err) {
      throw wrap(`lastPos ${stream}`, err);
    }
  }

  private async lastPosMany(streams: readonly string[]): Promise<number[]> {
    if (streams.length === 1) {
      const [row] = await this.client.query<{ pos: number }>('SELECT pos FROM chorus_log WHERE stream = $1 ORDER BY pos DESC LIMIT 1', [streams[0]]);
      return [row ? Number(row.pos) : 0];
    }
    const rows = await this.client.query<{ i: number; pos: number | null }>(
      `SELECT r.i, (SELECT c.pos FROM chorus_log c WHERE c.stream = r.stream ORDER BY c.pos DESC LIMIT 1) AS pos
         FROM unnest($1::text[]) WITH ORDINALITY AS r(stream, i)`,
      [streams],
    );
    const out = streams.map(() => 0);
    for (const r of rows) out[Number(r.i) - 1] = r.pos === null ? 0 : Number(r.pos);
    return out;
  }

  async tail(streamPrefix: string, afterPos: number, handler: (e: LogEntry) => Promise<void> | void): Promise<Disposable> {
    if (typeof streamPrefix !== 'string') throw new TypeError('streamPrefix must be a string');
    checkPos('afterPos', afterPos);
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    if (this.closed) throw new BackendError('postgres', 'the event log is closed');
    try {
      await this.ready();
    } catch (err) {
      throw wrap('tail', err);
    }
    const t = new PgTail(this.client, this.opts, streamPrefix, afterPos, handler, () => this.tails.delete(t));
    this.tails.add(t);
    t.start();
    return { dispose: () => t.stop() };
  }

  /** Stops tails, writes what is queued, and closes the client when `closeClient` is set. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const loops = [...this.tails].map((t) => t.stop());
    while (this.flushing || this.scheduled || this.pending.length) {
      if (this.flushing) await this.flushing;
      else await new Promise((r) => setImmediate(r));
    }
    await Promise.all(loops);
    if (this.opts.closeClient) await this.client.close();
  }
}

/**
 * One tail: a poll loop over (txid, gseq) that awaits the handler record by
 * record. With a single writer, once a poll finds it caught up it goes live:
 * it takes each committed batch from memory (`offer`, kept from the moment
 * that poll was sent) and stops polling, until it falls `feedLimit` records
 * behind and polls its way back.
 */
class PgTail {
  private cursor: { txid: string; gseq: number } = { txid: '0', gseq: 0 };
  /** Taking committed batches from memory (single writer only). */
  private live = false;
  private feed: Array<{ txid: bigint; entries: LogEntry[] }> = [];
  private feedCount = 0;
  /** Offers were dropped since the last poll was sent: only a poll can tell what they held. */
  private overflowed = false;
  private stopped = false;
  private handling = false;
  private sleeper: (() => void) | undefined;
  private woken = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: SqlClient,
    private readonly opts: Readonly<Resolved>,
    private readonly prefix: string,
    private readonly afterPos: number,
    private readonly handler: (e: LogEntry) => Promise<void> | void,
    private readonly onStop: () => void,
  ) {}

  start(): void {
    this.loop = this.run().finally(this.onStop);
  }

  /**
   * No handler call starts after this. Resolves when the loop has ended, or at
   * once when called from inside the handler (waiting there would deadlock).
   */
  stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    return this.handling ? Promise.resolve() : (this.loop ?? Promise.resolve());
  }

  wake(): void {
    this.woken = true;
    this.sleeper?.();
  }

  /**
   * A batch this instance committed in transaction `txid` (single writer).
   * Queued while live; while polling, kept too (from the moment a poll is
   * sent), so that when the poll finds the tail caught up, the batches its
   * snapshot did not see (txid at or above its horizon) are delivered from
   * memory rather than lost or polled for again.
   */
  offer(txid: bigint, rows: readonly LogEntry[]): void {
    if (!this.overflowed) {
      const entries = rows.filter((r) => r.stream.startsWith(this.prefix) && r.pos > this.afterPos);
      this.feed.push({ txid, entries });
      this.feedCount += entries.length;
      if (this.feedCount > this.opts.feedLimit) {
        // too far behind to hold in memory: drop the queue and poll from the cursor (whole transactions were delivered)
        this.live = false;
        this.overflowed = true;
        this.feed = [];
        this.feedCount = 0;
      }
    }
    this.wake();
  }

  /** Delivers one record, retrying a failing handler after a pause; false once stopped. */
  private async deliver(e: LogEntry): Promise<boolean> {
    let failures = 0;
    for (;;) {
      if (this.stopped) return false;
      let failed = false;
      this.handling = true;
      try {
        await this.handler(e);
      } catch (err) {
        failed = true;
        this.opts.onTailError?.(err);
      } finally {
        this.handling = false;
      }
      if (!failed) return true;
      // at-least-once: the same record again after a pause (projections are idempotent)
      await this.sleep(Math.min(5000, this.opts.tailPollMs * 2 ** Math.min(++failures, 6)));
    }
  }

  /**
   * Live: delivers the queued batches in commit order (all at or past the
   * cursor: going live dropped those the poll had seen). Takes the queue whole;
   * batches offered meanwhile wait for the next round, and an overflow
   * meanwhile (live turned off) ends the round after the batch in hand.
   */
  private async drainFeed(): Promise<void> {
    const batches = this.feed;
    this.feed = [];
    for (const b of batches) {
      if (!this.live || this.stopped) return;
      for (const e of b.entries) if (!(await this.deliver(e))) return;
      if (this.live) this.feedCount -= b.entries.length; // an overflow meanwhile reset the count
      this.cursor = { txid: b.txid.toString(), gseq: Number.MAX_SAFE_INTEGER };
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken || this.stopped) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.sleeper = undefined;
        self.woken = false;
        resolve();
      }
      this.sleeper = done;
    });
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      if (this.live) {
        this.woken = false;
        await this.drainFeed();
        if (this.live && !this.feed.length) await this.sleep(2 ** 30); // until the next offer (or stop)
        continue;
      }
      this.woken = false;
      // offers from now on are kept: those this poll's snapshot does not see are delivered from memory if it goes live
      this.feed = [];
      this.feedCount = 0;
      this.overflowed = false;
      let rows: (LogRow & { txid: string; gseq: number; horizon: string })[];
      try {
        // One statement, one snapshot: the page of matching rows below the snapshot's xmin, and that xmin
        // (`horizon`; every transaction below it has ended, so nothing new can appear below it). The LEFT JOIN
        // returns one row of nulls when nothing matches, so the horizon always comes back.
        rows = await this.client.query<LogRow & { txid: string; gseq: number; horizon: string }>(
          `WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x)
           SELECT h.x::text AS horizon, l.* FROM h LEFT JOIN LATERAL (
             SELECT txid::text AS txid, gseq, stream, pos, dedup_id, data, ts
               FROM chorus_log
              WHERE (txid, gseq) > ($1::xid8, $2::bigint)
                AND txid < h.x
                -- written so that no index can serve them: otherwise the planner may AND in a scan of the
                -- primary key over every row of the prefix (all the log), O(log size) per poll
                AND starts_with(stream || '', $3) AND pos + 0 > $4
              ORDER BY chorus_log.txid, gseq
              LIMIT $5) l ON true`,
          [this.cursor.txid, this.cursor.gseq, this.prefix, this.afterPos, this.opts.tailBatch],
        );
        failures = 0;
      } catch (err) {
        if (this.stopped) return;
        this.opts.onTailError?.(err);
        await this.sleep(Math.min(5000, this.opts.tailPollMs * 2 ** Math.min(++failures, 6)));
        continue;
      }
      const horizon = rows[0]?.horizon;
      if (rows.length === 1 && rows[0]!.txid === null) rows = [];
      for (const r of rows) {
        if (!(await this.deliver(toEntry(r)))) return;
        this.cursor = { txid: r.txid, gseq: Number(r.gseq) };
      }
      // A short page holds every matching row below the horizon: skip the non-matching rows below it for good
      // (without this, a tail whose prefix matches rarely rescans every newer row on each poll).
      if (rows.length < this.opts.tailBatch && horizon !== undefined && horizon !== null) this.cursor = { txid: horizon, gseq: -1 };
      if (rows.length < this.opts.tailBatch && this.opts.singleWriter && !this.overflowed && horizon !== undefined && horizon !== null) {
        // Caught up with a single writer: every transaction below the horizon was delivered; those at or above it
        // committed after the snapshot and were offered since the poll was sent (kept in `feed`), and every later one
        // will be (one running now cannot exist: this instance's appends are its only writes).
        const h = BigInt(horizon);
        this.feed = this.feed.filter((b) => b.txid >= h);
        this.feedCount = this.feed.reduce((n, b) => n + b.entries.length, 0);
        this.live = true;
        continue;
      }
      if (rows.length < this.opts.tailBatch) {
        // caught up: wakes during the minimum interval are remembered (`woken`) and answered by one poll after it
        const min = Math.min(this.opts.tailMinIntervalMs, this.opts.tailPollMs);
        if (min > 0 && !this.stopped) await new Promise<void>((r) => setTimeout(r, min));
        await this.sleep(this.opts.tailPollMs - min);
      }
      else await yieldToLoop(); // catching up: let timers and I/O run between pages
    }
  }
}

/**
 * SnapshotStore port on PostgreSQL (`chorus_snapshots`): one row per stream,
 * replaced only by a snapshot at a higher position (an atomic upsert, so
 * concurrent saves keep the highest).
 */
export class PostgresSnapshotStore implements SnapshotStore {
  private readyP: Promise<unknown> | undefined;
  constructor(private readonly client: SqlClient, private readonly options: { migrate?: boolean; closeClient?: boolean } = {}) {}

  private ready(): Promise<unknown> {
    this.readyP ??= (this.options.migrate ?? true) ? migrate(this.client) : Promise.resolve();
    return this.readyP;
  }

  async save(stream: string, snap: Snapshot): Promise<void> {
    checkStream(stream);
    checkPos('snapshot pos', snap?.pos);
    if (!(snap.data instanceof Uint8Array)) throw new TypeError('snapshot data must be a Uint8Array');
    try {
      await this.ready();
      await this.client.query(
        `INSERT INTO chorus_snapshots (stream, pos, data) VALUES ($1, $2, $3)
         ON CONFLICT (stream) DO UPDATE SET pos = EXCLUDED.pos, data = EXCLUDED.data
         WHERE chorus_snapshots.pos < EXCLUDED.pos`,
        [stream, snap.pos, snap.data],
      );
    } catch (err) {
      throw wrap(`save snapshot ${stream}`, err);
    }
  }

  async load(stream: string): Promise<Snapshot | null> {
    checkStream(stream);
    try {
      await this.ready();
      const [row] = await this.client.query<{ pos: number; data: Uint8Array }>('SELECT pos, data FROM chorus_snapshots WHERE stream = $1', [stream]);
      return row ? { pos: Number(row.pos), data: row.data } : null;
    } catch (err) {
      throw wrap(`load snapshot ${stream}`, err);
    }
  }

  async close(): Promise<void> {
    if (this.options.closeClient) await this.client.close();
  }
}
