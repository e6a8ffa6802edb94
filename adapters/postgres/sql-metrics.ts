/**
 * The seed's `database_query_duration_seconds`: a SqlClient wrapper that times
 * every statement through the Metrics port. Labels stay bounded: `db` (the
 * database's name: `log`, a shard id), `role` (`primary` or `replica`) and
 * `operation`, the statement's first keyword folded into a fixed set.
 */
import type { Metrics } from '../../runtime/metrics.ts';
import type { SqlClient, SqlQueryable } from './sql-client.ts';

/** Name of the histogram (the seed's). */
export const DB_QUERY_DURATION = 'database_query_duration_seconds';

/** Buckets in seconds: sub-millisecond PGlite reads up to a 10 s statement timeout. */
export const DB_QUERY_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

/** Every value the `operation` label takes. `transaction` is a whole BEGIN..COMMIT, its statements also count one by one. */
export const DB_OPERATIONS = Object.freeze(['select', 'insert', 'update', 'delete', 'ddl', 'transaction', 'other'] as const);

/** One value of the `operation` label. */
export type DbOperation = (typeof DB_OPERATIONS)[number];

const DDL = new Set(['create', 'alter', 'drop', 'truncate']);

/** The `operation` label of a statement: its first keyword (after comments and `(`), folded into DB_OPERATIONS. A `WITH` counts as `select`. */
export function sqlOperation(text: string): DbOperation {
  const m = /^(?:\s|--[^\n]*\n|\/\*[\s\S]*?\*\/|\()*([A-Za-z]+)/.exec(text);
  const kw = m?.[1]?.toLowerCase();
  if (kw === 'select' || kw === 'insert' || kw === 'update' || kw === 'delete') return kw;
  if (kw === 'with' || kw === 'values' || kw === 'table') return 'select';
  if (kw && DDL.has(kw)) return 'ddl';
  return 'other';
}

/** Options of `timedSql`. */
export interface TimedSqlOptions {
  readonly metrics: Metrics;
  /** The database's name in the `db` label (e.g. `log`, `main`, a shard id): a handful per node, never per tenant. */
  readonly db: string;
  /** `primary` (writes, and reads without replicas) or `replica`. Default `primary`. */
  readonly role?: 'primary' | 'replica';
}

/**
 * Wraps `client` so each statement (inside transactions too) and each whole
 * transaction is observed in `database_query_duration_seconds{db, role,
 * operation}`, failures included. Everything else passes through; closing
 * the wrapper closes the client. Wrap a client once, where it is made.
 */
export function timedSql(client: SqlClient, opts: TimedSqlOptions): SqlClient {
  const h = opts.metrics.histogram(DB_QUERY_DURATION, 'Duration of SQL statements and transactions by database, role (primary/replica) and operation (seconds)', ['db', 'role', 'operation'], DB_QUERY_BUCKETS);
  const base = { db: opts.db, role: opts.role ?? 'primary' };
  const labels = new Map(DB_OPERATIONS.map((op) => [op, { ...base, operation: op }] as const));
  const timed = async <T>(op: DbOperation, run: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await run();
    } finally {
      h.observe((performance.now() - t0) / 1000, labels.get(op));
    }
  };
  // a batch of statements sent together is observed once: as their operation when they share one, else `other`
  const wrap = (q: SqlQueryable): SqlQueryable => ({
    query: (text, params) => timed(sqlOperation(text), () => q.query(text, params)),
    ...(q.queryMany ? {
      queryMany: (stmts) => {
        const ops = new Set(stmts.map((st) => sqlOperation(st.text)));
        return timed(ops.size === 1 ? [...ops][0]! : 'other', () => q.queryMany!(stmts));
      },
    } : {}),
  });
  return {
    dialect: client.dialect,
    ...wrap(client),
    transaction: (fn) => timed('transaction', () => client.transaction((tx) => fn(wrap(tx)))),
    close: () => client.close(),
  };
}
