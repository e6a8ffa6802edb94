/**
 * Online workspace moves between query-store shards, and the seed's
 * rebalance rule.
 *
 * `moveWorkspace` (docs/query-side.md "Moving a workspace") carries every
 * projection that lives in the shard databases (`ShardProjection`: its name
 * in `chorus_projection_positions`, its tables, its idempotent apply): the
 * query tables, and the PostgreSQL search index (`chat_search`, the 'search'
 * projection; cluster/search's `PG_SEARCH_SHARD_PROJECTION`). For each of them:
 *  1. copy: every row of the workspace, all projections from one REPEATABLE
 *     READ snapshot of the source, positions last (so the target's positions
 *     never claim rows it lacks); the target's old rows of the workspace are
 *     deleted first;
 *  2. catch up: the target reads the log of each of the workspace's streams
 *     from its own positions (the projection's idempotent apply);
 *  3. hold: the directory marks the workspace `from>to`; every node's
 *     projection writers (ShardWriteGate: the query sink, the search index)
 *     hold new writes of the workspace (reads stay on the source); writes
 *     already in flight finish (this process: the writers' barriers; other
 *     processes: `settleMs`);
 *  4. catch up again to the end of the log, over the streams both databases
 *     know, then switch: the directory points the workspace at the target and
 *     held writes go there. The target is then at or past every position the
 *     projections had written, so they continue without a gap;
 *  5. verify: from one snapshot of the target (positions T and per-table
 *     checksums), the source is caught up to exactly T and checksummed the
 *     same way; every table must match (count and md5);
 *  6. the source's rows of the workspace are deleted.
 * A workspace with positions of a projection the move was not given (on the
 * source, before the copy or at the switch) is refused: its rows would be
 * left behind. Readers stay correct throughout: the store answers a read
 * only when its projected position reaches what the caller has
 * acknowledged, so a target still catching up makes the actor answer from
 * memory, never stale data.
 *
 * `suggestRebalance`: a shard above 1.5 x the average size (the seed's rule)
 * gets suggestions to move its largest workspaces that fit to the smallest
 * shards.
 */
import { BackendError } from '../../runtime/errors.ts';
import type { EventLog, LogEntry } from '../../runtime/log/event-log.ts';
import { silentLogger, type Logger } from '../../runtime/metrics.ts';
import { QUERY_PROJECTION } from './query-projection.ts';
import { applyWithRetry } from './query-sink.ts';
import { POSITIONS_TABLE, QUERY_TABLES, checksumRows, deleteRows, insertRows, scanWorkspace, type QueryTable } from './query-tables.ts';
import type { ShardRouter } from './shard-router.ts';
import type { SqlClient, SqlQueryable } from './sql-client.ts';

/** A projection whose rows live in the shard databases, as the move tool carries it. */
export interface ShardProjection {
  /** Its name in `chorus_projection_positions`. */
  readonly name: string;
  /** Its tables (each with a `ws` column); its position rows are carried with them. */
  readonly tables: readonly QueryTable[];
  /** Applies log records to one database, idempotently, positions in the same transaction (retried on lost races). */
  apply(client: SqlClient, entries: readonly LogEntry[]): Promise<{ applied: number }>;
  /** This process's writer of the projection, when it runs here: its writes in flight are awaited at the switch. */
  barrier?(): Promise<void>;
}

/** The query projection (query-projection.ts) as the move tool carries it. */
export function queryShardProjection(projection = QUERY_PROJECTION): ShardProjection {
  return { name: projection, tables: QUERY_TABLES, apply: (client, entries) => applyWithRetry(client, entries, projection) };
}

/** See queryShardProjection. */
export const QUERY_SHARD_PROJECTION: ShardProjection = queryShardProjection();

/** Options of moveWorkspace. */
export interface MoveWorkspaceOptions {
  readonly router: ShardRouter;
  readonly log: EventLog;
  readonly ws: string;
  /** Target shard id. */
  readonly to: string;
  /**
   * Every projection with rows in the shard databases (each name once).
   * Default: the query projection alone; with PostgreSQL search add
   * cluster/search's PG_SEARCH_SHARD_PROJECTION (or pass the QuerySide's and
   * SearchSide's `shardProjection`, which carry this node's barriers).
   */
  readonly projections?: readonly ShardProjection[];
  /** More projection writers of this process (e.g. the PostgresProjectionSink): their in-flight writes are awaited at the switch. */
  readonly sink?: { barrier(): Promise<void> } | ReadonlyArray<{ barrier(): Promise<void> }> | undefined;
  /** Wait after the switch for projection writes of other processes that were routed before it. Default 0 (projections run here or nowhere else). */
  readonly settleMs?: number;
  /** Rows per copy page and log records per catch-up read. Default 1000. */
  readonly pageSize?: number;
  readonly logger?: Logger;
}

type Sums = Record<string, { rows: number; md5: string }>;

/** What a move did. */
export interface MoveReport {
  readonly ws: string;
  readonly from: string;
  readonly to: string;
  /** Rows copied per table; position rows as `chorus_projection_positions:<projection>`. */
  readonly copied: Record<string, number>;
  /** Log records applied to the target after the copy (every projection). */
  readonly caughtUp: number;
  /** The same per projection. */
  readonly caughtUpBy: Record<string, number>;
  /** Per table (named as in `copied`) row count and md5, equal on both sides at the verified positions. */
  readonly verified: Sums;
  readonly ms: number;
}

async function positionsOf(q: SqlQueryable, ws: string, projection: string): Promise<Map<string, number>> {
  const rows = await q.query<{ stream: string; pos: number }>('SELECT stream, pos FROM chorus_projection_positions WHERE projection = $1 AND ws = $2', [projection, ws]);
  return new Map(rows.map((r) => [r.stream, Number(r.pos)]));
}

/**
 * Applies the log of `streams` to `client` with `projection`'s apply, from
 * the client's stored positions, up to `until` (per stream) when given.
 * Returns records applied.
 */
export async function catchUpFromLog(
  log: EventLog, client: SqlClient, streams: Iterable<string>,
  opts: { projection: ShardProjection; until?: ReadonlyMap<string, number>; pageSize?: number; ws: string },
): Promise<number> {
  const pageSize = opts.pageSize ?? 1000;
  const at = await positionsOf(client, opts.ws, opts.projection.name);
  let applied = 0;
  for (const stream of streams) {
    let after = at.get(stream) ?? 0;
    const limit = opts.until?.get(stream) ?? Infinity;
    while (after < limit) {
      const page = (await log.read(stream, after, pageSize)).filter((e) => e.pos <= limit);
      if (!page.length) break;
      applied += (await opts.projection.apply(client, page)).applied;
      after = page[page.length - 1]!.pos;
      if (page.length < pageSize) break;
    }
  }
  return applied;
}

const positionsKey = (p: ShardProjection) => `${POSITIONS_TABLE.name}:${p.name}`;

/** Every table of the projections with its filter and report key; the position rows of each projection after all the rows. */
function tablesOf(projections: readonly ShardProjection[]): Array<{ key: string; table: QueryTable; eq?: Record<string, string> }> {
  return [
    ...projections.flatMap((p) => p.tables.map((table) => ({ key: table.name, table }))),
    ...projections.map((p) => ({ key: positionsKey(p), table: POSITIONS_TABLE, eq: { projection: p.name } })),
  ];
}

/** Deletes the rows of `ws` of the projections (positions included). */
async function deleteProjections(client: SqlClient, ws: string, projections: readonly ShardProjection[]): Promise<void> {
  await client.transaction(async (tx) => {
    for (const t of tablesOf(projections)) await deleteRows(tx, t.table, ws, t.eq);
  });
}

/** Row count and md5 of every table of the projections (positions per projection). */
async function checksums(q: SqlQueryable, ws: string, projections: readonly ShardProjection[]): Promise<Sums> {
  const out: Sums = {};
  for (const t of tablesOf(projections)) out[t.key] = await checksumRows(q, t.table, ws, t.eq);
  return out;
}

/** Copies workspace `ws` from `source` to `target`: every projection from one snapshot of the source, positions last. */
async function copyWorkspace(source: SqlClient, target: SqlClient, ws: string, projections: readonly ShardProjection[], pageSize: number): Promise<Record<string, number>> {
  await deleteProjections(target, ws, projections);
  const copied: Record<string, number> = {};
  await source.transaction(async (src) => {
    await src.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    for (const t of tablesOf(projections)) {
      copied[t.key] = await scanWorkspace(src, t.table, ws, pageSize, (rows) => target.transaction((tx) => insertRows(tx, t.table, rows)), t.eq);
    }
  });
  return copied;
}

/** Refuses a workspace that has positions of a projection the move does not carry (its rows would be left behind). */
async function refuseUnknown(q: SqlQueryable, ws: string, shard: string, projections: readonly ShardProjection[]): Promise<void> {
  const rows = await q.query<{ projection: string }>(
    'SELECT DISTINCT projection FROM chorus_projection_positions WHERE ws = $1 AND NOT (projection = ANY($2::text[]))', [ws, projections.map((p) => p.name)]);
  if (rows.length) {
    throw new BackendError('postgres', `workspace move ${ws}: shard ${shard} holds rows of projection(s) ${rows.map((r) => JSON.stringify(r.projection)).join(', ')} `
      + 'that this move was not given (MoveWorkspaceOptions.projections); nothing was moved');
  }
}

const same = (a: Sums, b: Sums) => Object.keys(a).every((k) => a[k]!.rows === b[k]?.rows && a[k]!.md5 === b[k]?.md5);

/** Moves workspace `ws` to shard `to`, online (see the file comment). */
export async function moveWorkspace(o: MoveWorkspaceOptions): Promise<MoveReport> {
  const started = Date.now();
  const logger = o.logger ?? silentLogger;
  const projections = o.projections ?? [QUERY_SHARD_PROJECTION];
  if (!projections.length || new Set(projections.map((p) => p.name)).size !== projections.length) {
    throw new RangeError('moveWorkspace: projections must be a non-empty list of distinct projection names');
  }
  const pageSize = o.pageSize ?? 1000;
  const from = o.router.shardOf(o.ws);
  const target = o.router.db(o.to).sql.primary;
  const caughtUpBy: Record<string, number> = Object.fromEntries(projections.map((p) => [p.name, 0]));
  if (from === o.to) return { ws: o.ws, from, to: o.to, copied: {}, caughtUp: 0, caughtUpBy, verified: {}, ms: 0 };
  const source = o.router.db(from).sql.primary;
  const names = projections.map((p) => p.name);
  const sinks = [...(o.sink ? ('barrier' in o.sink ? [o.sink] : o.sink) : []), ...projections.filter((p) => p.barrier)];
  await refuseUnknown(source, o.ws, from, projections);
  logger.info({ ws: o.ws, from, to: o.to, projections: names }, 'workspace move: copying');

  const copied = await copyWorkspace(source, target, o.ws, projections, pageSize);
  for (const p of projections) {
    caughtUpBy[p.name]! += await catchUpFromLog(o.log, target, (await positionsOf(target, o.ws, p.name)).keys(), { ws: o.ws, projection: p, pageSize });
  }

  // switch: hold projection writes of the workspace (reads stay on the source), let writes in flight finish,
  // bring the target to the end of the log, then point everything at the target
  logger.info({ ws: o.ws, from, to: o.to }, 'workspace move: switching');
  await o.router.dir.set(o.ws, `${from}>${o.to}`);
  try {
    await Promise.all(sinks.map((s) => s.barrier!()));
    if (o.settleMs) await new Promise((r) => setTimeout(r, o.settleMs));
    await refuseUnknown(source, o.ws, from, projections);
    for (const p of projections) {
      const streams = new Set([...(await positionsOf(source, o.ws, p.name)).keys(), ...(await positionsOf(target, o.ws, p.name)).keys()]);
      caughtUpBy[p.name]! += await catchUpFromLog(o.log, target, streams, { ws: o.ws, projection: p, pageSize });
    }
    await o.router.dir.set(o.ws, o.router.homeOf(o.ws) === o.to ? undefined : o.to);
  } catch (err) {
    await o.router.dir.set(o.ws, o.router.homeOf(o.ws) === from ? undefined : from);
    throw err;
  }
  if (o.router.shardOf(o.ws) !== o.to) throw new BackendError('postgres', `workspace move ${o.ws}: the directory did not switch to ${o.to}`);

  // verify at one snapshot of the target: bring the source (no longer written) to exactly those positions
  const { at, sums } = await target.transaction(async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    const at = new Map<string, Map<string, number>>();
    for (const p of projections) at.set(p.name, await positionsOf(tx, o.ws, p.name));
    return { at, sums: await checksums(tx, o.ws, projections) };
  });
  for (const p of projections) {
    const until = at.get(p.name)!;
    await catchUpFromLog(o.log, source, until.keys(), { ws: o.ws, projection: p, pageSize, until });
  }
  const sourceSums = await checksums(source, o.ws, projections);
  if (!same(sums, sourceSums)) {
    logger.error({ ws: o.ws, from, to: o.to, target: sums, source: sourceSums }, 'workspace move: verification failed; the source rows are kept');
    throw new BackendError('postgres', `workspace move ${o.ws} ${from} -> ${o.to}: verification failed (see the log); the source rows are kept`);
  }
  await deleteProjections(source, o.ws, projections);
  const caughtUp = Object.values(caughtUpBy).reduce((a, b) => a + b, 0);
  logger.info({ ws: o.ws, from, to: o.to, caughtUp: caughtUpBy, ms: Date.now() - started }, 'workspace move: done');
  return { ws: o.ws, from, to: o.to, copied, caughtUp, caughtUpBy, verified: sums, ms: Date.now() - started };
}

/** Size of each shard: rows of the workspaces it serves (messages, members, cursors). */
export interface ShardSize {
  readonly shard: string;
  readonly rows: number;
  readonly workspaces: ReadonlyArray<{ readonly ws: string; readonly rows: number }>;
}

/** Measures every shard (only the workspaces that route to it count). */
export async function shardSizes(router: ShardRouter): Promise<ShardSize[]> {
  const out: ShardSize[] = [];
  for (const db of router.dbs()) {
    const rows = await db.sql.read((q) => q.query<{ ws: string; n: number }>(
      `SELECT ws, sum(n)::bigint AS n FROM (
         SELECT ws, count(*) AS n FROM chat_messages GROUP BY ws
         UNION ALL SELECT ws, count(*) FROM chat_channel_members GROUP BY ws
         UNION ALL SELECT ws, count(*) FROM chat_read_cursors GROUP BY ws
       ) x GROUP BY ws`));
    const workspaces = rows.filter((r) => router.shardOf(r.ws) === db.id).map((r) => ({ ws: r.ws, rows: Number(r.n) })).sort((a, b) => b.rows - a.rows);
    out.push({ shard: db.id, rows: workspaces.reduce((a, w) => a + w.rows, 0), workspaces });
  }
  return out;
}

/** A suggested move (or, with `to: null`, a workspace too big to move anywhere useful). */
export interface RebalanceSuggestion {
  readonly ws: string;
  readonly from: string;
  readonly to: string | null;
  readonly rows: number;
  readonly reason: string;
}

/**
 * The seed's rule: a shard above `factor` (1.5) x the average size is
 * rebalanced. For each such shard, largest workspaces first: move one that
 * leaves the shard at or above the average and keeps the receiving (smallest)
 * shard under the bound; repeat (on the simulated sizes) until the shard is
 * under the bound or nothing fits. A single workspace bigger than what can
 * move is reported with `to: null` (a candidate for a dedicated shard).
 */
export function suggestRebalance(sizes: readonly ShardSize[], factor = 1.5): RebalanceSuggestion[] {
  if (sizes.length < 2) return [];
  const size = new Map(sizes.map((s) => [s.shard, s.rows]));
  const avg = [...size.values()].reduce((a, b) => a + b, 0) / sizes.length;
  const bound = avg * factor;
  const out: RebalanceSuggestion[] = [];
  for (const s of [...sizes].sort((a, b) => b.rows - a.rows)) {
    if (size.get(s.shard)! <= bound) continue;
    const left = [...s.workspaces];
    while (size.get(s.shard)! > bound) {
      const smallest = [...size].filter(([id]) => id !== s.shard).sort((a, b) => a[1] - b[1])[0]!;
      const i = left.findIndex((w) => size.get(s.shard)! - w.rows >= avg * 0.999 - 1e-9 && smallest[1] + w.rows <= bound);
      const pick = i >= 0 ? left[i]! : left.find((w) => smallest[1] + w.rows < size.get(s.shard)! - w.rows);
      if (!pick) {
        if (left[0]) out.push({ ws: left[0].ws, from: s.shard, to: null, rows: left[0].rows, reason: `shard ${s.shard} is ${(size.get(s.shard)! / avg).toFixed(2)}x the average and no workspace move brings it under ${factor}x: give ${left[0].ws} a dedicated shard` });
        break;
      }
      left.splice(left.indexOf(pick), 1);
      out.push({ ws: pick.ws, from: s.shard, to: smallest[0], rows: pick.rows, reason: `shard ${s.shard} has ${size.get(s.shard)} rows, ${(size.get(s.shard)! / avg).toFixed(2)}x the average ${Math.round(avg)} (rule: above ${factor}x)` });
      size.set(s.shard, size.get(s.shard)! - pick.rows);
      size.set(smallest[0], smallest[1] + pick.rows);
    }
  }
  return out;
}
