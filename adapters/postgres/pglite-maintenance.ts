import { silentLogger, type Logger } from '../../runtime/metrics.ts';
import type { SqlClient } from './sql-client.ts';

/** Options of startPgliteMaintenance; every field has a default. */
export interface PgliteMaintenanceOptions {
  /** Tables updated in place (positions, counters, cursors): VACUUM (ANALYZE) each round. Missing tables are skipped. */
  readonly vacuum?: readonly string[];
  /** Append-mostly tables: ANALYZE every `analyzeEvery` rounds (and in the first). */
  readonly analyze?: readonly string[];
  /** Time between rounds. Default 30000. */
  readonly everyMs?: number;
  /** First round this long after start. Default 5000. */
  readonly firstMs?: number;
  /** ANALYZE the append-mostly tables every this many rounds. Default 10. */
  readonly analyzeEvery?: number;
  readonly logger?: Logger;
}

/** The tables of the embedded query side's database (query tables, positions, search) by how they are written. */
export const EMBEDDED_TABLES = Object.freeze({
  vacuum: ['chorus_projection_positions', 'chat_channels', 'chat_read_cursors', 'chat_channel_members', 'chat_workspace_members', 'chat_workspaces', 'chat_profiles'],
  analyze: ['chat_messages', 'chat_search'],
});

const SLOW_MS = 200;

/**
 * Does on PGlite what autovacuum does on a PostgreSQL server: PGlite runs
 * single-user, without background workers, so nothing ever collects planner
 * statistics or removes dead row versions. Without statistics the planner
 * guessed a few rows for every table and picked plans that scan a whole table
 * per statement (the projection's position update: 17 ms a batch at 12,000
 * streams); without vacuum, every in-place update (a position per batch, a
 * channel row per post) leaves a dead version behind and scans grow with the
 * history of updates, not the table.
 *
 * One statement at a time with a turn of the event loop between them: PGlite
 * runs a statement on the thread that owns it and blocks that thread (a few
 * ms for tables of thousands of rows; ANALYZE samples at most 30,000 rows but
 * took 0.25 s on a large log): the embedded profile runs it on the query
 * side's database, in its worker thread. Returns a stop function; failures
 * are logged and the next round tries again.
 */
export function startPgliteMaintenance(client: SqlClient, options: PgliteMaintenanceOptions = {}): () => Promise<void> {
  const vacuum = options.vacuum ?? EMBEDDED_TABLES.vacuum;
  const analyze = options.analyze ?? EMBEDDED_TABLES.analyze;
  const everyMs = options.everyMs ?? 30_000;
  const analyzeEvery = Math.max(1, options.analyzeEvery ?? 10);
  const logger = options.logger ?? silentLogger;
  for (const t of [...vacuum, ...analyze]) if (!/^[a-z_][a-z0-9_]*$/.test(t)) throw new TypeError(`not a table name: ${t}`);
  let stopped = false;
  let round = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const run = async (): Promise<void> => {
    const statements = [
      ...vacuum.map((t) => [t, `VACUUM (ANALYZE) ${t}`] as const),
      ...(round % analyzeEvery === 0 ? analyze.map((t) => [t, `ANALYZE ${t}`] as const) : []),
    ];
    round++;
    for (const [table, sql] of statements) {
      if (stopped) return;
      try {
        const [exists] = await client.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [table]);
        if (!exists?.r) continue;
        const t0 = performance.now();
        await client.query(sql);
        const ms = performance.now() - t0;
        if (ms > SLOW_MS) logger.warn({ table, ms: Math.round(ms) }, 'slow PGlite maintenance statement');
      } catch (err) {
        if (!stopped) logger.warn({ table, err: (err as Error).message }, 'PGlite maintenance failed');
      }
      await new Promise((r) => setImmediate(r));
    }
  };
  const schedule = (ms: number) => {
    timer = setTimeout(() => {
      running = run().finally(() => {
        running = undefined;
        if (!stopped) schedule(everyMs);
      });
    }, ms).unref();
  };
  schedule(options.firstMs ?? 5000);
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  };
}
