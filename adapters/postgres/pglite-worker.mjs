// The worker side of `workerPgliteClient`: one PGlite database owned by this
// worker thread, answering the main thread's statements and transactions
// (pglite-worker-client.ts has the protocol, WorkerRequest and WorkerReply).
// Not imported by anything: the client starts it with `new Worker(...)`.
// Plain JavaScript: a worker thread does not get the TypeScript loader the
// main thread was started with.
import { parentPort, workerData } from 'node:worker_threads';
import { openPreparedPGlite } from './pglite-prepared.mjs';

const port = parentPort;
const dir = workerData.dir;

/** Serializable form of a failure: message and the SQLSTATE (`code`) the retry logic looks at. */
function failure(err) {
  const e = err;
  return { message: typeof e?.message === 'string' ? e.message : String(err), ...(typeof e?.code === 'string' ? { code: e.code } : {}) };
}

/** Statements of one open transaction, delivered in order to the callback that holds it. */
class TxQueue {
  items = [];
  waiter = undefined;
  push(r) {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(r);
    } else this.items.push(r);
  }
  next() {
    const r = this.items.shift();
    return r ? Promise.resolve(r) : new Promise((res) => (this.waiter = res));
  }
}

async function main() {
  const db = await openPreparedPGlite(dir);
  const open = new Map();
  const reply = (r) => port.postMessage(r);
  /** Runs statements one after another on `q`; the rows of each, in order (a `many` request). */
  const many = async (q, stmts) => {
    const out = [];
    for (const st of stmts) out.push(await q.query(st.text, st.params));
    return out;
  };

  const runTx = (id) => {
    const q = new TxQueue();
    open.set(id, q);
    let endId; // the commit or rollback request: it gets the outcome
    const rolledBack = new Error('rolled back');
    db.transaction(async (tx) => {
      reply({ id, ok: true, rows: [] }); // begun
      for (;;) {
        const r = await q.next();
        if (r.kind === 'commit' || r.kind === 'rollback') {
          endId = r.id;
          if (r.kind === 'rollback') throw rolledBack;
          return;
        }
        if (r.kind !== 'query' && r.kind !== 'many') continue;
        try {
          reply({ id: r.id, ok: true, rows: r.kind === 'many' ? await many(tx, r.stmts) : await tx.query(r.text, r.params) });
        } catch (err) {
          reply({ id: r.id, ok: false, err: failure(err) });
        }
      }
    }).then(
      () => reply({ id: endId, ok: true, rows: [] }),
      (err) => reply(err === rolledBack ? { id: endId, ok: true, rows: [] } : { id: endId ?? id, ok: false, err: failure(err) }),
    ).finally(() => open.delete(id));
  };

  port.on('message', (r) => {
    if (r.tx !== undefined) {
      const q = open.get(r.tx);
      if (q) q.push(r);
      else reply({ id: r.id, ok: false, err: { message: `transaction ${r.tx} is not open` } });
      return;
    }
    switch (r.kind) {
      case 'query':
        db.query(r.text, r.params).then(
          (rows) => reply({ id: r.id, ok: true, rows }),
          (err) => reply({ id: r.id, ok: false, err: failure(err) }),
        );
        return;
      case 'many':
        many(db, r.stmts).then((rows) => reply({ id: r.id, ok: true, rows }), (err) => reply({ id: r.id, ok: false, err: failure(err) }));
        return;
      case 'begin':
        runTx(r.id);
        return;
      case 'close':
        db.close().then(() => reply({ id: r.id, ok: true, rows: [] }), (err) => reply({ id: r.id, ok: false, err: failure(err) }));
        return;
      default:
        reply({ id: r.id, ok: false, err: { message: `unknown request ${String(r.kind)}` } });
    }
  });
  reply({ id: 0, ok: true, rows: [] }); // ready
}

main().catch((err) => port.postMessage({ id: 0, ok: false, err: failure(err) }));
