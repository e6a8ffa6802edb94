/**
 * PostgresProjectionSink: where the projection runner (cluster/query) writes.
 * A batch of log records is split by workspace shard and applied to each
 * shard's primary in one transaction (`applyEntries`), retried when a
 * concurrent writer wins a race (serialisation failure, deadlock, unique
 * violation). Positions live with the rows, in each shard.
 */
import { BackendError } from '../../runtime/errors.ts';
import type { LogEntry } from '../../runtime/log/event-log.ts';
import type { Codec } from '../../runtime/codec.ts';
import { migrate } from './migrations.ts';
import { applyEntries, PositionBooks, QUERY_PROJECTION, wsOfStream, type ApplyResult, type PositionBook } from './query-projection.ts';
import { ShardWriteGate, type QueryRouting } from './shard-router.ts';
import { RETRYABLE_SQLSTATES, sqlState, type SqlClient } from './sql-client.ts';

/** Options of PostgresProjectionSink; every field has a default. */
export interface ProjectionSinkOptions {
  /** Row of `chorus_projection_positions` this sink owns. Default 'query'. */
  readonly projection?: string;
  /** Transaction attempts on a lost race. Default 10. */
  readonly maxAttempts?: number;
  /** Runs the migrations on every database first. Default true. */
  readonly migrate?: boolean;
  readonly codec?: Codec;
}

/** Writes projected records into the query tables of the right shard. */
export class PostgresProjectionSink {
  private readonly projection: string;
  private readonly maxAttempts: number;
  private readonly gate: ShardWriteGate;
  /** Positions committed per shard database (see PositionBook). */
  private readonly books: PositionBooks;
  private readyP: Promise<unknown> | undefined;

  constructor(private readonly routing: QueryRouting, private readonly opts: ProjectionSinkOptions = {}) {
    this.projection = opts.projection ?? QUERY_PROJECTION;
    this.maxAttempts = opts.maxAttempts ?? 10;
    this.books = new PositionBooks(this.projection);
    this.gate = new ShardWriteGate(routing);
  }

  /** Resolves once every database is migrated. */
  ready(): Promise<unknown> {
    this.readyP ??= (this.opts.migrate ?? true) ? Promise.all(this.routing.dbs().map((d) => migrate(d.sql.primary))) : Promise.resolve();
    return this.readyP;
  }

  /** The stored position of every stream, each from the shard its workspace routes to now. */
  async positions(): Promise<Map<string, number>> {
    await this.ready();
    return projectionPositions(this.routing, this.projection);
  }

  /**
   * Applies a batch (records of one stream in log order); resolves after
   * every shard committed its part. A batch with a workspace that is being
   * switched to another shard waits until the switch is done.
   */
  async apply(entries: readonly LogEntry[]): Promise<ApplyResult> {
    await this.ready();
    return this.gate.run(entries.map((e) => wsOfStream(e.stream)), () => this.write(entries));
  }

  /** Resolves when every write that started before the call has finished (the shard move tool's switch barrier). */
  barrier(): Promise<void> {
    return this.gate.barrier();
  }

  private async write(entries: readonly LogEntry[]): Promise<ApplyResult> {
    const groups = new Map<string, LogEntry[]>();
    for (const e of entries) {
      const id = this.routing.dbFor(wsOfStream(e.stream)).id;
      let g = groups.get(id);
      if (!g) groups.set(id, (g = []));
      g.push(e);
    }
    const total: ApplyResult = { applied: 0, skipped: 0, poison: 0, positions: new Map() };
    await Promise.all([...groups].map(async ([id, group]) => {
      const db = this.routing.dbs().find((d) => d.id === id)!;
      const r = await applyWithRetry(db.sql.primary, group, this.projection, this.maxAttempts, this.opts.codec, this.books.of(id));
      total.applied += r.applied;
      total.skipped += r.skipped;
      total.poison += r.poison;
      for (const [s, p] of r.positions) total.positions.set(s, p);
    }));
    return total;
  }
}

/** The stored positions of `projection`: every stream, each from the shard its workspace routes to now. */
export async function projectionPositions(routing: QueryRouting, projection: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const db of routing.dbs()) {
    const rows = await db.sql.primary.query<{ stream: string; ws: string; pos: number }>(
      'SELECT stream, ws, pos FROM chorus_projection_positions WHERE projection = $1', [projection]);
    for (const r of rows) if (routing.dbFor(r.ws).id === db.id) out.set(r.stream, Number(r.pos));
  }
  return out;
}

/** `applyEntries` in a transaction on `client`, retried on lost races. */
export async function applyWithRetry(
  client: Pick<SqlClient, 'transaction'>,
  entries: readonly LogEntry[],
  projection = QUERY_PROJECTION,
  maxAttempts = 10,
  codec?: Codec,
  book?: PositionBook,
): Promise<ApplyResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      const once = async () => {
        try {
          const r = await client.transaction((tx) => applyEntries(tx, entries, { projection, ...(codec ? { codec } : {}), ...(book ? { book } : {}) }));
          book?.committed(r.positions);
          return r;
        } catch (err) {
          book?.forget(); // before the next transaction on the book starts
          throw err;
        }
      };
      return await (book ? book.exclusive(once) : once());
    } catch (err) {
      const state = sqlState(err);
      if (state && RETRYABLE_SQLSTATES.has(state) && attempt < maxAttempts) {
        await new Promise((r) => setTimeout(r, Math.min(200, 5 * 2 ** attempt) * Math.random()));
        continue;
      }
      throw err instanceof BackendError ? err : new BackendError('postgres', `projection write failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }
}
