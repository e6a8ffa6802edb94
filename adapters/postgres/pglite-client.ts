import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import type { SqlClient, SqlQueryable } from './sql-client.ts';
import { PGLITE_TYPE_OPTIONS } from './pglite-options.mjs';
import { PreparedPGlite } from './pglite-prepared.mjs';

/**
 * A SqlClient over PGlite (PostgreSQL compiled to WebAssembly, in process).
 * Durable in `dir` (created if missing, e.g. `./data/pglite`); in memory when
 * `dir` is undefined. PGlite is one connection: it already runs statements and
 * transactions one at a time, so callers batch to get throughput (see NOTES:
 * one row per INSERT ~5k rows/s, 100 rows per INSERT 50-80k rows/s). Each
 * statement text with parameters is prepared once (pglite-prepared.mjs).
 */
export async function pgliteClient(dir?: string): Promise<SqlClient> {
  if (dir !== undefined) await mkdir(dir, { recursive: true });
  const db = new PreparedPGlite(await PGlite.create({ ...(dir === undefined ? {} : { dataDir: dir }), ...PGLITE_TYPE_OPTIONS }));
  return {
    dialect: 'pglite',
    query: <R extends Record<string, unknown>>(text: string, params?: readonly unknown[]) => db.query<R>(text, params),
    transaction: <T>(fn: (tx: SqlQueryable) => Promise<T>) => db.transaction((tx) => fn(tx)),
    close: () => db.close(),
  };
}
