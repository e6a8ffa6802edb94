import type { SqlClient } from './sql-client.ts';
import { openPreparedPGlite } from './pglite-prepared.mjs';

/**
 * A SqlClient over PGlite (PostgreSQL compiled to WebAssembly, in process).
 * Durable in `dir` (created if missing, e.g. `./data/pglite`); in memory when
 * `dir` is undefined. PGlite is one connection: it already runs statements and
 * transactions one at a time, so callers batch to get throughput (see NOTES:
 * one row per INSERT ~5k rows/s, 100 rows per INSERT 50-80k rows/s). Each
 * statement text with parameters is prepared once (pglite-prepared.mjs).
 */
export async function pgliteClient(dir?: string): Promise<SqlClient> {
  const db = await openPreparedPGlite(dir);
  return {
    dialect: 'pglite',
    query: <R extends Record<string, unknown>>(text: string, params?: readonly unknown[]) => db.query<R>(text, params),
    transaction: (fn) => db.transaction(fn),
    close: () => db.close(),
  };
}
