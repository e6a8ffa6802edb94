/**
 * Read replicas (the seed: "writes to the master, reads round-robin over the
 * replicas"): `ReplicatedSql` sends writes to the primary and spreads reads
 * over streaming replicas, with
 *
 * - read-your-writes for a session: `write(fn, session)` records the primary's
 *   WAL insert position after the commit in the session; a read with that
 *   session only goes to a replica whose `pg_last_wal_replay_lsn()` has
 *   reached it, else to the primary. (The insert position, not
 *   `pg_current_wal_lsn()`, the write position: with asynchronous commit the
 *   commit record may still sit in WAL buffers, ahead of the write position.)
 * - a lag bound: a probe samples the primary's WAL position and each replica's
 *   replay position every `probeMs`; a replica whose replay position is older
 *   than what the primary had `maxLagMs` ago is skipped until it catches up.
 * - failover of reads: a replica whose connection fails is skipped for
 *   `downForMs`, then probed again; with no usable replica reads go to the
 *   primary.
 * - `accept`: a caller may reject a replica's answer (e.g. the query store,
 *   whose projection position there is behind what the caller needs); the
 *   next replica, then the primary, is asked.
 *
 * `singleSql(client)` is the same interface over one database (PGlite, or a
 * primary without replicas).
 */
import type { Logger, Metrics } from '../../runtime/metrics.ts';
import { noopMetrics, silentLogger } from '../../runtime/metrics.ts';
import { sqlState, type SqlClient, type SqlQueryable } from './sql-client.ts';
import { timedSql } from './sql-metrics.ts';

/** The WAL position of a session's last write ('' before any). */
export class SqlSession {
  lsn = '';
}

/** Options of one read. */
export interface ReadOptions<T> {
  /** Read-your-writes: only a replica that replayed this session's last write may answer. */
  readonly session?: SqlSession | undefined;
  /** False: this answer is not good enough, ask the next candidate (the primary answers last, whatever it says). */
  readonly accept?: ((r: T) => boolean) | undefined;
  /** Skip the replicas. */
  readonly primaryOnly?: boolean | undefined;
}

/** Reads and writes of one database (a primary with or without replicas). */
export interface SqlRouter {
  /** Where writes go. */
  readonly primary: SqlClient;
  /** Runs `fn` in a transaction on the primary; with `session`, remembers the WAL position of the commit there. */
  write<T>(fn: (tx: SqlQueryable) => Promise<T>, session?: SqlSession): Promise<T>;
  /** Runs a read on a replica when one qualifies, else on the primary. */
  read<T>(fn: (q: SqlQueryable) => Promise<T>, opts?: ReadOptions<T>): Promise<T>;
  close(): Promise<void>;
}

/** A router over one database: every read and write on `client`. */
export function singleSql(client: SqlClient, opts: { closeClient?: boolean } = {}): SqlRouter {
  return {
    primary: client,
    write: (fn) => client.transaction(fn),
    read: (fn) => fn(client),
    close: async () => {
      if (opts.closeClient) await client.close();
    },
  };
}

/** Options of ReplicatedSql; every field has a default. */
export interface ReplicatedSqlOptions {
  /** Names of the replicas in metrics and logs. Default `replica-0`, `replica-1`, ... */
  readonly replicaNames?: readonly string[];
  /** A replica more than this far behind the primary (in time) is skipped. Default 1000 ms. */
  readonly maxLagMs?: number;
  /** Probe interval (WAL positions, health). Default 200 ms. */
  readonly probeMs?: number;
  /** A replica whose query failed is skipped this long before it is probed again. Default 1000 ms. */
  readonly downForMs?: number;
  /** Label of this database in metrics (e.g. the shard id). Default 'main'. */
  readonly name?: string;
  /** Closes the clients on close(). Default true. */
  readonly closeClients?: boolean;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

/** Parses `X/Y` (hex) into a comparable number (exact below 2^53 bytes of WAL: 8 PB). */
export function lsnValue(lsn: string | null | undefined): number {
  if (!lsn) return 0;
  const i = lsn.indexOf('/');
  return parseInt(lsn.slice(0, i), 16) * 2 ** 32 + parseInt(lsn.slice(i + 1), 16);
}

/** A connection-level failure (the server is down or unreachable), as opposed to an error in the SQL. */
export function isConnectionError(err: unknown): boolean {
  const state = sqlState(err);
  if (state) return state.startsWith('08') || state.startsWith('57') || state === '53300';
  return true; // no SQLSTATE: a socket error, a timeout, a terminated connection
}

interface Replica {
  readonly name: string;
  /** Timed (database_query_duration_seconds, role replica): what reads run on. */
  readonly client: SqlClient;
  /** Untimed: the probe's WAL-position queries, which would only dilute the histogram. */
  readonly raw: SqlClient;
  /** Last replay position seen. */
  replay: number;
  /** ms behind the primary at the last probe. */
  lagMs: number;
  /** Skipped until this time (down). */
  downUntil: number;
  up: boolean;
}

/**
 * A primary and its streaming replicas. Statements of reads and writes are
 * timed in `database_query_duration_seconds{db, role}` (role `primary` or
 * `replica`, db = the `name` option); the lag probes are not.
 */
export class ReplicatedSql implements SqlRouter {
  /** The primary, timed (role `primary`). */
  readonly primary: SqlClient;
  private readonly rawPrimary: SqlClient;
  private readonly replicas: Replica[];
  private readonly o: Required<Omit<ReplicatedSqlOptions, 'replicaNames'>>;
  private next = 0;
  /** (time, primary WAL insert position) samples, oldest first, covering at least maxLagMs. */
  private readonly samples: Array<[number, number]> = [];
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private closed = false;
  private readonly reads;
  private readonly lagGauge;
  private readonly upGauge;

  constructor(primary: SqlClient, replicas: readonly SqlClient[], options: ReplicatedSqlOptions = {}) {
    this.o = {
      maxLagMs: options.maxLagMs ?? 1000,
      probeMs: options.probeMs ?? 200,
      downForMs: options.downForMs ?? 1000,
      name: options.name ?? 'main',
      closeClients: options.closeClients ?? true,
      metrics: options.metrics ?? noopMetrics,
      logger: options.logger ?? silentLogger,
    };
    const problems: string[] = [];
    for (const k of ['maxLagMs', 'probeMs', 'downForMs'] as const) if (!Number.isSafeInteger(this.o[k]) || this.o[k] < 1) problems.push(`${k} must be a positive integer`);
    if (problems.length) throw new RangeError(`ReplicatedSql options: ${problems.join('; ')}`);
    const m = this.o.metrics;
    this.rawPrimary = primary;
    this.primary = timedSql(primary, { metrics: m, db: this.o.name, role: 'primary' });
    this.replicas = replicas.map((raw, i) => ({
      name: options.replicaNames?.[i] ?? `replica-${i}`, client: timedSql(raw, { metrics: m, db: this.o.name, role: 'replica' }), raw,
      replay: 0, lagMs: Infinity, downUntil: 0, up: true,
    }));
    this.reads = m.counter('chorus_pg_reads_total', 'Query-store reads by database, target (primary/replica) and why the primary answered', ['db', 'target', 'reason']);
    this.lagGauge = m.gauge('chorus_pg_replica_lag_seconds', 'Replay lag of a read replica behind its primary (seconds)', ['db', 'replica']);
    this.upGauge = m.gauge('chorus_pg_replica_up', '1 when a read replica answers its probe', ['db', 'replica']);
  }

  /** Starts the probe loop and runs one probe (so the first reads already know the lag). */
  async start(): Promise<this> {
    await this.probe();
    const tick = () => {
      if (this.closed) return;
      this.probing = this.probe().finally(() => {
        this.probing = undefined;
        if (!this.closed) this.timer = setTimeout(tick, this.o.probeMs).unref();
      });
    };
    this.timer = setTimeout(tick, this.o.probeMs).unref();
    return this;
  }

  /** What the router knows of each replica (for tests and the inspector). */
  status(): Array<{ name: string; up: boolean; lagMs: number; replayLsn: number }> {
    return this.replicas.map((r) => ({ name: r.name, up: r.up && r.downUntil <= Date.now(), lagMs: r.lagMs, replayLsn: r.replay }));
  }

  async write<T>(fn: (tx: SqlQueryable) => Promise<T>, session?: SqlSession): Promise<T> {
    const out = await this.primary.transaction(fn);
    if (session) {
      const [row] = await this.primary.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
      session.lsn = row?.lsn ?? session.lsn;
    }
    return out;
  }

  async read<T>(fn: (q: SqlQueryable) => Promise<T>, opts: ReadOptions<T> = {}): Promise<T> {
    let reason = this.replicas.length ? 'no_replica' : 'no_replicas';
    if (!opts.primaryOnly && this.replicas.length) {
      const need = lsnValue(opts.session?.lsn);
      const now = Date.now();
      const n = this.replicas.length;
      const start = this.next++ % n;
      for (let i = 0; i < n; i++) {
        const r = this.replicas[(start + i) % n]!;
        if (r.downUntil > now) { reason = 'replica_down'; continue; }
        if (r.lagMs > this.o.maxLagMs) { reason = 'replica_lagging'; continue; }
        if (need && r.replay < need && !(await this.caughtUp(r, need))) { reason = 'read_your_writes'; continue; }
        try {
          const out = await fn(r.client);
          if (opts.accept && !opts.accept(out)) { reason = 'not_accepted'; continue; }
          this.reads.inc({ db: this.o.name, target: 'replica', reason: 'ok' });
          return out;
        } catch (err) {
          if (!isConnectionError(err)) throw err;
          this.markDown(r, err);
          reason = 'replica_down';
        }
      }
    }
    this.reads.inc({ db: this.o.name, target: 'primary', reason: opts.primaryOnly ? 'asked' : reason });
    return fn(this.primary);
  }

  /** Asks the replica for its replay position now (the probe's may be a few ms old). */
  private async caughtUp(r: Replica, need: number): Promise<boolean> {
    try {
      const [row] = await r.raw.query<{ lsn: string | null }>('SELECT pg_last_wal_replay_lsn()::text AS lsn');
      r.replay = Math.max(r.replay, lsnValue(row?.lsn));
      return r.replay >= need;
    } catch (err) {
      if (isConnectionError(err)) this.markDown(r, err);
      return false;
    }
  }

  private markDown(r: Replica, err: unknown): void {
    r.downUntil = Date.now() + this.o.downForMs;
    if (r.up) {
      r.up = false;
      this.upGauge.set(0, { db: this.o.name, replica: r.name });
      this.o.logger.warn({ db: this.o.name, replica: r.name, err: (err as Error)?.message }, 'read replica down; reads go to the other replicas or the primary');
    }
  }

  /** One probe: the primary's WAL position, then each replica's replay position and lag. */
  private async probe(): Promise<void> {
    const now = Date.now();
    try {
      const [row] = await this.rawPrimary.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
      this.samples.push([now, lsnValue(row?.lsn)]);
    } catch {
      // the primary is down: replicas keep their last known lag; writes fail on their own
    }
    // keep samples covering maxLagMs (plus one older, to date the lag)
    while (this.samples.length > 2 && this.samples[1]![0] < now - 2 * this.o.maxLagMs) this.samples.shift();
    await Promise.all(this.replicas.map(async (r) => {
      if (r.downUntil > now && !r.up && r.downUntil - now > this.o.probeMs) return;
      try {
        const [row] = await r.raw.query<{ lsn: string | null }>('SELECT pg_last_wal_replay_lsn()::text AS lsn');
        r.replay = Math.max(r.replay, lsnValue(row?.lsn));
        r.lagMs = this.lagOf(r.replay, now);
        r.downUntil = 0;
        if (!r.up) {
          r.up = true;
          this.o.logger.info({ db: this.o.name, replica: r.name }, 'read replica back');
        }
        this.upGauge.set(1, { db: this.o.name, replica: r.name });
        this.lagGauge.set(Number.isFinite(r.lagMs) ? r.lagMs / 1000 : -1, { db: this.o.name, replica: r.name });
      } catch (err) {
        if (isConnectionError(err)) this.markDown(r, err);
      }
    }));
  }

  /**
   * How long ago the primary first had WAL the replica has not replayed: 0 when
   * the replica has everything the last sample saw, Infinity when that is older
   * than the samples kept.
   */
  private lagOf(replay: number, now: number): number {
    const s = this.samples;
    if (!s.length || replay >= s[s.length - 1]![1]) return 0;
    // oldest sample whose position the replica has not reached
    for (let i = 0; i < s.length; i++) if (s[i]![1] > replay) return i === 0 ? Infinity : now - s[i]![0];
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.probing;
    if (this.o.closeClients) await Promise.all([this.rawPrimary.close(), ...this.replicas.map((r) => r.raw.close())]);
  }
}
