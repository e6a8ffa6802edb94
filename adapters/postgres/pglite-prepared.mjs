// PGlite with named prepared statements, shared by the in-thread client
// (pglite-client.ts) and the worker (pglite-worker.mjs). Plain JavaScript so
// the worker can import it (see pglite-worker.mjs).
//
// Why: PGlite's `query` parses and plans every statement again and crosses
// into WebAssembly six times for it (Parse, Describe, Bind, Describe, Execute,
// Sync, each its own call). The log's one-row append measured 440 us of wall
// that way; the same INSERT prepared once, then Bind + Execute + Sync in one
// `execProtocol` call, 135 us. Chorus sends the same few statements over and
// over (appends, reads, the projections' upserts), so each distinct text with
// parameters is prepared once, under a name, and kept (up to `maxStatements`,
// least recently used closed first).
//
// It bypasses PGlite's own locks (execProtocol is not serialised with
// `query` or `transaction`), so it must be the only user of its PGlite: it
// keeps its own transaction lock, and nothing else may call the database.
import { Buffer } from 'node:buffer';
import { mkdir } from 'node:fs/promises';
import { PGlite, protocol, types } from '@electric-sql/pglite';
import { PGLITE_TYPE_OPTIONS } from './pglite-options.mjs';

const { serialize } = protocol;

/**
 * Opens Chorus's PGlite database in `dir` (created if missing; in memory when
 * undefined) with PGLITE_TYPE_OPTIONS, as a PreparedPGlite: what the in-thread
 * client and the worker both run.
 * @param {string | undefined} dir
 */
export async function openPreparedPGlite(dir) {
  if (dir !== undefined) await mkdir(dir, { recursive: true });
  return new PreparedPGlite(await PGlite.create({ ...(dir === undefined ? {} : { dataDir: dir }), ...PGLITE_TYPE_OPTIONS }));
}

export class PreparedPGlite {
  /** @type {import('@electric-sql/pglite').PGlite} */
  #db;
  /** text -> { name, paramTypes, fields } (Map order: least recently used first). */
  #stmts = new Map();
  #next = 0;
  #max;
  /** Statements to close, sent ahead of the next request. */
  #toClose = [];
  /** Held by a transaction for its whole length, and by each statement outside one. */
  #lock = Promise.resolve();

  /**
   * @param {import('@electric-sql/pglite').PGlite} db a database nothing else uses
   * @param {{ maxStatements?: number }} [opts] prepared statements kept (default 256)
   */
  constructor(db, opts = {}) {
    this.#db = db;
    this.#max = opts.maxStatements ?? 256;
  }

  /** Whether the database is closed. */
  get closed() {
    return this.#db.closed;
  }

  /** Statements prepared and kept now. */
  get preparedCount() {
    return this.#stmts.size;
  }

  /**
   * Runs one statement outside any transaction (after a running one ends);
   * its rows. A prepared statement a schema change invalidated is prepared
   * again and run once more.
   */
  query(text, params) {
    return this.#exclusive(() => this.#run(text, params).catch((err) => {
      if (err?.code === '0A000' && params?.length) return this.#run(text, params);
      throw err;
    }));
  }

  /**
   * Runs `fn` between BEGIN and COMMIT, with no other statement in between;
   * ROLLBACK and rethrow when it throws. A COMMIT that PostgreSQL turns into a
   * ROLLBACK (a statement failed and the callback went on) rejects.
   */
  transaction(fn) {
    return this.#exclusive(async () => {
      await this.#simple('BEGIN');
      let result;
      try {
        result = await fn({ query: (text, params) => this.#run(text, params) });
      } catch (err) {
        await this.#simple('ROLLBACK').catch(() => {});
        throw err;
      }
      const tag = await this.#simple('COMMIT');
      if (tag === 'ROLLBACK') throw Object.assign(new Error('transaction aborted: a statement in it failed, COMMIT rolled back'), { code: '25P02' });
      return result;
    });
  }

  /** Closes the database (waits for a running transaction). */
  close() {
    return this.#exclusive(async () => {
      if (!this.#db.closed) await this.#db.close();
    });
  }

  #exclusive(fn) {
    const run = this.#lock.then(fn);
    this.#lock = run.then(() => {}, () => {});
    return run;
  }

  /** A statement without parameters, as a simple query; its command tag. */
  async #simple(text) {
    const { messages } = await this.#db.execProtocol(this.#withCloses(serialize.query(text)));
    let tag = '';
    for (const m of messages) if (m.name === 'commandComplete') tag = m.text;
    return tag;
  }

  async #run(text, params) {
    if (!params || params.length === 0) return this.#unnamed(text);
    let st = this.#stmts.get(text);
    if (st) {
      // most recently used last
      this.#stmts.delete(text);
      this.#stmts.set(text, st);
    } else st = await this.#prepare(text);
    const values = new Array(params.length);
    for (let i = 0; i < params.length; i++) {
      const v = params[i];
      if (v === null || v === undefined) values[i] = null;
      else {
        const oid = st.paramTypes[i];
        const bin = binaryParam(oid, v);
        if (bin !== undefined) values[i] = bin;
        else {
          const ser = this.#db.serializers[oid];
          values[i] = ser ? ser(v) : String(v);
        }
      }
    }
    const msg = Buffer.concat([serialize.bind({ statement: st.name, values }), serialize.execute({}), serialize.sync()]);
    let res;
    try {
      res = await this.#db.execProtocol(this.#withCloses(msg));
    } catch (err) {
      // e.g. "cached plan must not change result type" after a schema change: prepared again next time
      if (err?.code === '0A000' || err?.code === '26000') this.#forget(text);
      throw err;
    }
    return rowsOf(res.messages, st.fields, this.#db.parsers);
  }

  /** A statement without parameters: parsed, described and run in one call, not kept. */
  async #unnamed(text) {
    const msg = Buffer.concat([serialize.parse({ text }), serialize.bind({}), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()]);
    const { messages } = await this.#db.execProtocol(this.#withCloses(msg));
    let fields = [];
    for (const m of messages) if (m.name === 'rowDescription') fields = m.fields;
    return rowsOf(messages, fields, this.#db.parsers);
  }

  async #prepare(text) {
    const name = `chorus_${++this.#next}`;
    const msg = Buffer.concat([serialize.parse({ name, text }), serialize.describe({ type: 'S', name }), serialize.sync()]);
    const { messages } = await this.#db.execProtocol(this.#withCloses(msg));
    let paramTypes = [];
    let fields = [];
    for (const m of messages) {
      if (m.name === 'parameterDescription') paramTypes = m.dataTypeIDs;
      else if (m.name === 'rowDescription') fields = m.fields;
    }
    const st = { name, paramTypes, fields };
    this.#stmts.set(text, st);
    if (this.#stmts.size > this.#max) {
      const [oldest] = this.#stmts.keys();
      this.#forget(oldest);
    }
    return st;
  }

  #forget(text) {
    const st = this.#stmts.get(text);
    if (!st) return;
    this.#stmts.delete(text);
    this.#toClose.push(st.name);
  }

  /** `msg` with Close messages for statements dropped since the last request in front. */
  #withCloses(msg) {
    if (this.#toClose.length === 0) return msg;
    const closes = this.#toClose.map((name) => serialize.close({ type: 'S', name }));
    this.#toClose = [];
    return Buffer.concat([...closes, msg]);
  }
}

// ---- parameters in binary format --------------------------------------------
//
// PGlite's text serializers escape every array element with regular
// expressions and the protocol writer measures and copies each string with a
// JavaScript loop: a log append of a few dozen records spent as long building
// its Bind message as PostgreSQL spent running it. Bytes, text and integers
// (and one-dimensional arrays of them, the `unnest($1::text[], ...)` batches)
// go in PostgreSQL's binary format instead, built with Buffer's native
// copies; anything else keeps the text serializers.

const BYTEA = 17;
const INT8 = 20;
const INT4 = 23;
const TEXT = 25;
const VARCHAR = 1043;
/** Array type -> its element type, for the arrays sent in binary. */
const ARRAY_OF = new Map([[1001, BYTEA], [1016, INT8], [1007, INT4], [1009, TEXT], [1015, VARCHAR]]);

/** `v` as a binary parameter of type `oid`, or undefined when it is not one of the simple cases. */
function binaryParam(oid, v) {
  if (oid === BYTEA) return v instanceof Uint8Array ? v : undefined;
  if (oid === TEXT || oid === VARCHAR) return typeof v === 'string' ? Buffer.from(v, 'utf8') : undefined;
  const elem = ARRAY_OF.get(oid);
  return elem !== undefined && Array.isArray(v) ? binaryArray(elem, v) : undefined;
}

/**
 * A one-dimensional array in binary format (array_send): header, then each
 * element's length and bytes (-1: NULL), written straight into one buffer.
 * Undefined when an element is not of the JavaScript type the element type
 * takes (the text serializer then decides).
 */
function binaryArray(elem, items) {
  const n = items.length;
  const width = elem === INT8 ? 8 : elem === INT4 ? 4 : 0;
  let size = n === 0 ? 12 : 20 + 4 * n;
  let nulls = 0;
  for (let i = 0; i < n; i++) {
    const x = items[i];
    if (x === null || x === undefined) nulls = 1;
    else if (elem === BYTEA) {
      if (!(x instanceof Uint8Array)) return undefined;
      size += x.byteLength;
    } else if (width === 0) {
      if (typeof x !== 'string') return undefined;
      size += Buffer.byteLength(x, 'utf8');
    } else {
      if (!Number.isSafeInteger(x) || (width === 4 && (x < -2147483648 || x > 2147483647))) return undefined;
      size += width;
    }
  }
  const out = Buffer.allocUnsafe(size);
  out.writeInt32BE(n === 0 ? 0 : 1, 0);
  out.writeInt32BE(nulls, 4);
  out.writeUInt32BE(elem, 8);
  if (n === 0) return out;
  out.writeInt32BE(n, 12);
  out.writeInt32BE(1, 16);
  let at = 20;
  for (let i = 0; i < n; i++) {
    const x = items[i];
    if (x === null || x === undefined) {
      at = out.writeInt32BE(-1, at);
    } else if (elem === BYTEA) {
      at = out.writeInt32BE(x.byteLength, at);
      out.set(x, at);
      at += x.byteLength;
    } else if (width === 0) {
      const len = out.write(x, at + 4, 'utf8');
      out.writeInt32BE(len, at);
      at += 4 + len;
    } else {
      at = out.writeInt32BE(width, at);
      at = width === 8 ? out.writeBigInt64BE(BigInt(x), at) : out.writeInt32BE(x, at);
    }
  }
  return out;
}

/** Rows as objects keyed by column name, values parsed as PGlite's `query` parses them. */
function rowsOf(messages, fields, parsers) {
  const rows = [];
  for (const m of messages) {
    if (m.name !== 'dataRow') continue;
    const row = {};
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      const v = m.fields[i];
      row[f.name] = v === null ? null : types.parseType(v, f.dataTypeID, parsers);
    }
    rows.push(row);
  }
  return rows;
}
