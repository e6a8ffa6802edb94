/**
 * The one seam between the PostgreSQL adapters and a driver: PGlite (embedded,
 * one in-process connection) or pg (a pool to a real server). Everything in
 * adapters/postgres/ speaks plain SQL through it, so one implementation of each
 * port runs on both.
 *
 * Contract both implementations keep, so callers never branch on the driver:
 * - `int8`/`bigint` columns come back as JS numbers (positions stay below 2^53);
 * - `bytea` comes back as a plain Uint8Array; a Uint8Array parameter is sent as bytea;
 * - anything else keeps the driver's default parsing (text as string, bool, ...).
 */

/** One statement and its parameters, for `queryAll`. */
export interface SqlStatement {
  readonly text: string;
  readonly params?: readonly unknown[];
}

/** Runs SQL. A statement is one command; parameters are `$1..$n`. */
export interface SqlQueryable {
  query<R extends Record<string, unknown> = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /**
   * Runs statements in order and resolves to each one's rows; the first
   * failure rejects (in a transaction, the rest then fail too). Optional: a
   * client that can send them together implements it (the PGlite worker:
   * one message each way instead of one per statement); `queryAll` falls
   * back to one `query` after another.
   */
  queryMany?(statements: readonly SqlStatement[]): Promise<Record<string, unknown>[][]>;
}

/**
 * Statements whose parameters do not depend on each other's results, run in
 * order: together where the client can (`queryMany`), else one by one.
 */
export async function queryAll(q: SqlQueryable, statements: readonly SqlStatement[]): Promise<Record<string, unknown>[][]> {
  if (!statements.length) return [];
  if (q.queryMany) return q.queryMany(statements);
  const out: Record<string, unknown>[][] = [];
  for (const s of statements) out.push(await q.query(s.text, s.params));
  return out;
}

/** A connection (PGlite) or a pool (pg). */
export interface SqlClient extends SqlQueryable {
  /** `pglite` runs every statement on one connection; `pg` may run transactions in parallel. */
  readonly dialect: 'pglite' | 'pg';
  /**
   * Runs `fn` inside BEGIN/COMMIT on one connection; ROLLBACK when it throws
   * (the error is rethrown as is, so callers can look at the SQLSTATE `code`).
   */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /** Closes the connection or pool. */
  close(): Promise<void>;
}

/** The SQLSTATE of a driver error, if it has one (both drivers put it on `code`). */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** SQLSTATEs after which re-running the whole transaction is safe and may succeed. */
export const RETRYABLE_SQLSTATES: ReadonlySet<string> = new Set([
  '23505', // unique_violation: another writer took the position or the dedup id first
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);
