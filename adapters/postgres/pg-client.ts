import pg from 'pg';
import type { SqlClient, SqlQueryable } from './sql-client.ts';

const INT8_OID = 20;
const BYTEA_OID = 17;

/**
 * Per-query type parsers, so rows look like PGlite's (int8 as number, bytea as
 * plain Uint8Array) without touching pg's process-wide parser table, which
 * other code in the process may rely on.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID) return (v: string) => Number(v);
    if (oid === BYTEA_OID) {
      const parseBytea = pg.types.getTypeParser(BYTEA_OID, 'text') as (v: string) => Buffer;
      return (v: string) => {
        const b = parseBytea(v);
        return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      };
    }
    return pg.types.getTypeParser(oid, format ?? 'text');
  },
} as pg.CustomTypesConfig;

/** pg sends Buffers as bytea; a plain Uint8Array would be sent as a string, so wrap it (no copy). */
function toPgParams(params?: readonly unknown[]): unknown[] | undefined {
  return params?.map((p) => (p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p));
}

async function run<R>(q: pg.Pool | pg.PoolClient, text: string, params?: readonly unknown[]): Promise<R[]> {
  const res = await q.query({ text, values: toPgParams(params), types });
  return res.rows as R[];
}

/**
 * A SqlClient over a pg Pool (a real PostgreSQL server). The pool is the
 * caller's: `close()` ends it only when `ownsPool` is true (the default).
 * Transactions take one pooled connection for BEGIN ... COMMIT.
 */
export function pgPoolClient(pool: pg.Pool, opts: { ownsPool?: boolean } = {}): SqlClient {
  const ownsPool = opts.ownsPool ?? true;
  return {
    dialect: 'pg',
    query: <R extends Record<string, unknown>>(text: string, params?: readonly unknown[]) => run<R>(pool, text, params),
    async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      const conn = await pool.connect();
      let broken = false;
      try {
        await conn.query('BEGIN');
        const out = await fn({ query: <R extends Record<string, unknown>>(text: string, params?: readonly unknown[]) => run<R>(conn, text, params) });
        await conn.query('COMMIT');
        return out;
      } catch (err) {
        try {
          await conn.query('ROLLBACK');
        } catch {
          broken = true; // the connection is unusable: do not hand it back to the pool
        }
        throw err;
      } finally {
        conn.release(broken ? true : undefined);
      }
    },
    async close() {
      if (ownsPool && !pool.ended) await pool.end();
    },
  };
}
