import { Worker } from 'node:worker_threads';
import { BackendError } from '../../runtime/errors.ts';
import type { SqlClient, SqlQueryable, SqlStatement } from './sql-client.ts';

type WorkerRows = Record<string, unknown>[] | Record<string, unknown>[][];

/** A message from the main thread to the worker that owns the database. */
export type WorkerRequest =
  | { id: number; kind: 'query'; text: string; params?: unknown[]; tx?: number }
  | { id: number; kind: 'many'; stmts: Array<{ text: string; params?: unknown[] }>; tx?: number }
  | { id: number; kind: 'begin'; tx?: undefined }
  | { id: number; kind: 'commit' | 'rollback'; tx: number }
  | { id: number; kind: 'close'; tx?: undefined };

/** A request before it gets its id. */
type Unsent = WorkerRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/** The worker's answer to request `id` (id 0: the database is ready, or failed to open); a `many` gets one row list per statement. */
export type WorkerReply =
  | { id: number; ok: true; rows: Record<string, unknown>[] | Record<string, unknown>[][] }
  | { id: number; ok: false; err: { message: string; code?: string } };

/** A SqlClient whose PGlite runs in a worker thread. */
export interface WorkerSqlClient extends SqlClient {
  /** The worker thread now serving (replaced if it dies). */
  readonly thread: Worker;
}

/**
 * A SqlClient over PGlite running in a worker thread: the same database and
 * results as `pgliteClient(dir)`, but PostgreSQL's work (planning, executing,
 * writing its files) runs on another core, so it no longer competes with the
 * node's event loop. Each statement costs a message each way (rows are
 * structured-cloned), a `queryMany` one for all its statements; statements
 * are not held back for earlier replies (the worker runs them in order), and a
 * transaction's BEGIN is not waited for, so its round trips are those the
 * caller's own awaits make: on a busy event loop each reply waits its turn,
 * which is what batching them saves. A transaction holds the worker's one
 * connection until its callback ends, as on PGlite itself. An error keeps its SQLSTATE on
 * `code`. If the worker dies, the calls in flight fail with BackendError
 * (callers retry them) and a new worker opens the same database for the
 * next ones.
 */
export async function workerPgliteClient(dir?: string): Promise<WorkerSqlClient> {
  const pending = new Map<number, { resolve(rows: WorkerRows): void; reject(e: unknown): void }>();
  let nextId = 1;
  let closed = false;
  let down: Error | undefined;
  const start = (): Promise<Worker> => new Promise<Worker>((resolve, reject) => {
    const w = new Worker(new URL('./pglite-worker.mjs', import.meta.url), { workerData: { dir } });
    let ready = false;
    w.on('message', (r: WorkerReply) => {
      if (r.id === 0) {
        ready = r.ok;
        if (r.ok) resolve(w);
        else reject(new BackendError('pglite', `the PGlite worker could not open its database: ${r.err.message}`));
        return;
      }
      const p = pending.get(r.id);
      if (!p) return;
      pending.delete(r.id);
      if (r.ok) p.resolve(r.rows);
      else p.reject(Object.assign(new Error(r.err.message), r.err.code !== undefined ? { code: r.err.code } : {}));
    });
    w.on('error', (err) => { down = err; });
    w.on('exit', (code) => {
      const why = down ?? new Error(`the PGlite worker exited (code ${code})`);
      down = undefined;
      for (const p of pending.values()) p.reject(new BackendError('pglite', why.message, { cause: why }));
      pending.clear();
      if (!ready) reject(new BackendError('pglite', why.message, { cause: why }));
      else if (!closed) replace();
    });
  });
  let current = start();
  let worker = await current;
  /** Starts the next worker; calls wait for it (`current`), `thread` shows it once ready. */
  const replace = () => {
    current = start();
    current.then((w) => (worker = w), () => {});
  };

  /** Sends a request; `onId` learns its id (a begin's id names its transaction). */
  const call = async (req: Unsent, onId?: (id: number) => void): Promise<WorkerRows> => {
    const w = await current; // a replacement worker, once it is ready
    const id = nextId++;
    onId?.(id);
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      w.postMessage({ ...req, id } as WorkerRequest);
    });
  };
  const on = (tx: number | undefined): SqlQueryable => ({
    query: <R extends Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]> =>
      call({ kind: 'query', text, ...(params ? { params: [...params] } : {}), ...(tx !== undefined ? { tx } : {}) }) as Promise<R[]>,
    queryMany: (stmts: readonly SqlStatement[]) =>
      call({ kind: 'many', stmts: stmts.map((st) => ({ text: st.text, ...(st.params ? { params: [...st.params] } : {}) })), ...(tx !== undefined ? { tx } : {}) }) as Promise<Record<string, unknown>[][]>,
  });
  const auto = on(undefined);
  return {
    get thread() {
      return worker;
    },
    dialect: 'pglite',
    query: auto.query,
    queryMany: auto.queryMany!,
    async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      // the worker opens the transaction before it reads the statements sent after the BEGIN: no need to wait for its reply
      let named!: (id: number) => void;
      const idOf = new Promise<number>((r) => (named = r));
      const begun = call({ kind: 'begin' }, named);
      begun.catch(() => {}); // looked at below
      const id = await Promise.race([idOf, begun.then(() => idOf)]); // a worker that cannot start fails the begin before it has an id
      let result: T;
      try {
        result = await fn(on(id));
        await begun;
      } catch (err) {
        const beginFailed = await begun.then(() => undefined, (e: unknown) => e ?? new Error('begin failed'));
        if (beginFailed) throw beginFailed; // the statements failed for want of a transaction: the cause is this
        await call({ kind: 'rollback', tx: id }).catch(() => {});
        throw err;
      }
      await call({ kind: 'commit', tx: id });
      return result;
    },
    async close() {
      if (closed) return;
      closed = true;
      await call({ kind: 'close' }).catch(() => {});
      await worker.terminate();
    },
  };
}
