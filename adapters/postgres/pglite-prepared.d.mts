import type { PGlite } from '@electric-sql/pglite';

/** What a transaction callback gets: statements inside the transaction. */
export interface PreparedTx {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

/**
 * PGlite with named prepared statements (see pglite-prepared.mjs): each
 * distinct statement text with parameters is prepared once and then run with
 * one Bind + Execute + Sync call. Must be the only user of its database.
 */
export declare class PreparedPGlite {
  /** `maxStatements`: prepared statements kept, least recently used closed first (default 256). */
  constructor(db: PGlite, opts?: { maxStatements?: number });
  /** Whether the database is closed. */
  readonly closed: boolean;
  /** Statements prepared and kept now. */
  readonly preparedCount: number;
  /** One statement outside any transaction; its rows (as PGlite's `query` parses them). */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** `fn` between BEGIN and COMMIT with nothing else in between; ROLLBACK when it throws. */
  transaction<T>(fn: (tx: PreparedTx) => Promise<T>): Promise<T>;
  /** Closes the database (after a running transaction). */
  close(): Promise<void>;
}

/** Chorus's PGlite database in `dir` (created if missing; in memory when undefined), with PGLITE_TYPE_OPTIONS, as a PreparedPGlite. */
export declare function openPreparedPGlite(dir: string | undefined): Promise<PreparedPGlite>;
