import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_TYPE_OPTIONS } from '../../../adapters/postgres/pglite-options.mjs';
import { PreparedPGlite } from '../../../adapters/postgres/pglite-prepared.mjs';

const open = async (maxStatements?: number) =>
  new PreparedPGlite(await PGlite.create({ ...PGLITE_TYPE_OPTIONS }), maxStatements === undefined ? {} : { maxStatements });

const prepared = async (db: PreparedPGlite) =>
  (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_prepared_statements'))[0]!.n;

test('PreparedPGlite: rows and types are those of PGlite\'s own query, with and without parameters', async () => {
  const db = await open();
  const ref = await PGlite.create({ ...PGLITE_TYPE_OPTIONS });
  try {
    const cases: Array<[string, unknown[] | undefined]> = [
      ['SELECT $1::bigint AS a, $2::int AS b, $3::bool AS c, $4::jsonb AS d, $5::text[] AS e, $6::bytea AS f, $7::text AS g, $8::float8 AS h',
        [2 ** 40 + 1, 5, true, JSON.stringify({ x: [1, 'y'] }), ['a', 'b,c', 'd"e'], new Uint8Array([1, 2, 255]), null, 1.5]],
      ['SELECT 1 AS one, NULL::text AS nothing, ARRAY[1, 2]::bigint[] AS arr', undefined],
      ['SELECT x FROM generate_series(1, $1::int) x', [3]],
      ['SELECT x FROM generate_series(1, $1::int) x WHERE false', [3]],
      // the parameters sent in binary (bytea, text, arrays of them and of integers), with NULLs, empties and non-ASCII text
      ['SELECT $1::text[] AS t, $2::bigint[] AS b, $3::int[] AS i, $4::bytea[] AS y, $5::text AS s, $6::bytea AS one, $7::varchar[] AS v',
        [['', 'é ∑ 🎉', null, 'a"b\\c{}'], [0, -1, 2 ** 53 - 1, null], [2 ** 31 - 1, -(2 ** 31)], [new Uint8Array([0, 255]), null, new Uint8Array(0)],
          'plain ünïcode', new Uint8Array(300).fill(9), ['x', 'y']]],
      ['SELECT cardinality($1::text[]) AS a, cardinality($2::bytea[]) AS b, $3::bigint[] AS c', [[], [], []]],
      ['SELECT s, p FROM unnest($1::text[], $2::bigint[]) AS x(s, p) ORDER BY p', [['s1', 's2', 's3'], [3, 1, 2]]],
      // not the simple cases: the text serializers (a string for a bigint[], a non-integer for an int[])
      ['SELECT $1::bigint[] AS a, $2::float8[] AS f', [['12', '13'], [1.5, 2]]],
    ];
    for (const [text, params] of cases) {
      for (let i = 0; i < 3; i++) assert.deepEqual(await db.query(text, params), (await ref.query(text, params)).rows, text);
    }
  } finally {
    await db.close();
    await ref.close();
  }
});

test('PreparedPGlite: a statement text is prepared once; the least recently used beyond maxStatements is closed', async () => {
  const db = await open(3);
  try {
    for (let i = 0; i < 5; i++) await db.query('SELECT $1::int AS v', [i]);
    assert.equal(db.preparedCount, 1);
    assert.equal(await prepared(db), 1, 'statements without parameters are not kept');
    for (let k = 0; k < 6; k++) assert.deepEqual(await db.query(`SELECT $1::int + ${k} AS v`, [1]), [{ v: 1 + k }]);
    assert.equal(db.preparedCount, 3);
    // the closes of the evicted ones went out with the next request
    assert.equal(await prepared(db), 3);
  } finally {
    await db.close();
  }
});

test('PreparedPGlite: errors keep their SQLSTATE; transactions commit, roll back, and hold other statements back', async () => {
  const db = await open();
  try {
    await db.query('CREATE TABLE t (k text PRIMARY KEY, v int)');
    await assert.rejects(db.query('INSERT INTO t VALUES ($1, 1), ($1, 2)', ['a']), { code: '23505' });
    await assert.rejects(db.query('SELEC $1', [1]), { code: '42601' });
    await db.transaction(async (tx) => { await tx.query('INSERT INTO t VALUES ($1, $2)', ['b', 2]); });
    await assert.rejects(db.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES ($1, $2)', ['c', 3]);
      throw new Error('changed my mind');
    }), /changed my mind/);
    // a failed statement the callback swallowed: PostgreSQL rolls the COMMIT back, and the caller hears of it
    await assert.rejects(db.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES ($1, $2)', ['d', 4]);
      await tx.query('INSERT INTO t VALUES ($1, $2)', ['b', 2]).catch(() => {});
    }), { code: '25P02' });
    assert.deepEqual(await db.query('SELECT k FROM t WHERE v > $1 ORDER BY k', [0]), [{ k: 'b' }]);

    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const tx = db.transaction(async (q) => {
      order.push('tx begins');
      await q.query('INSERT INTO t VALUES ($1, $2)', ['e', 5]);
      await gate;
      order.push('tx ends');
    });
    const outside = db.query<{ n: number }>('SELECT count(*)::int AS n FROM t WHERE v > $1', [0]).then((r) => { order.push('outside'); return r[0]!.n; });
    await new Promise((r) => setTimeout(r, 20));
    release();
    await tx;
    assert.equal(await outside, 2, 'ran after the commit, and saw it');
    assert.deepEqual(order, ['tx begins', 'tx ends', 'outside']);
  } finally {
    await db.close();
  }
});

test('PreparedPGlite: a statement whose result type a schema change altered is prepared again', async () => {
  const db = await open();
  try {
    await db.query('CREATE TABLE t (k text PRIMARY KEY)');
    await db.query('INSERT INTO t VALUES ($1)', ['a']);
    assert.deepEqual(await db.query('SELECT * FROM t WHERE k = $1', ['a']), [{ k: 'a' }]);
    await db.query('ALTER TABLE t ADD COLUMN v int');
    assert.deepEqual(await db.query('SELECT * FROM t WHERE k = $1', ['a']), [{ k: 'a', v: null }]);
  } finally {
    await db.close();
  }
});
