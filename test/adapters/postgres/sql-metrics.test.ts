// database_query_duration_seconds: the statement classifier, the SqlClient
// wrapper on PGlite, and the replica router's roles on a real PostgreSQL 15
// primary with a streaming replica (its lag probes stay out of the histogram).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { MemoryMetrics } from '../../../adapters/memory/memory-metrics.ts';
import { DB_QUERY_DURATION, pgliteClient, pgPoolClient, ReplicatedSql, sqlOperation, timedSql } from '../../../adapters/postgres/query.ts';
import { startPostgresWithReplicas } from '../../helpers/postgres.ts';
import { waitFor } from '../../helpers/ports.ts';

test('sqlOperation folds a statement into a fixed set of labels', () => {
  const cases: Array<[string, string]> = [
    ['SELECT 1', 'select'], ['  select * from t', 'select'], ['-- why\nSELECT 1', 'select'], ['/* c */ (SELECT 1) UNION (SELECT 2)', 'select'],
    ['WITH x AS (SELECT 1) SELECT * FROM x', 'select'], ['INSERT INTO t VALUES (1)', 'insert'], ['UPDATE t SET a = 1', 'update'],
    ['DELETE FROM t', 'delete'], ['CREATE TABLE t (a int)', 'ddl'], ['ALTER TABLE t ADD b int', 'ddl'], ['SET search_path = x', 'other'],
    ['', 'other'], ['123', 'other'], [`SELECT ${'x'.repeat(10_000)}`, 'select'],
  ];
  for (const [sql, op] of cases) assert.equal(sqlOperation(sql), op, sql.slice(0, 40));
});

test('timedSql observes every statement (in transactions too), each transaction, and failures', async () => {
  const metrics = new MemoryMetrics();
  const client = timedSql(await pgliteClient(), { metrics, db: 'main' });
  const seen = (operation: string) => metrics.observed(DB_QUERY_DURATION, { db: 'main', role: 'primary', operation }).length;
  await client.query('CREATE TABLE t (a int PRIMARY KEY)');
  await client.query('INSERT INTO t VALUES (1)');
  assert.deepEqual(await client.query('SELECT a FROM t'), [{ a: 1 }]);
  await client.transaction(async (tx) => {
    await tx.query('INSERT INTO t VALUES (2)');
    await tx.query('SELECT count(*) FROM t');
  });
  await assert.rejects(client.query('INSERT INTO t VALUES (1)'), (err: { code?: string }) => err.code === '23505', 'the driver error passes through as is');
  assert.deepEqual([seen('ddl'), seen('insert'), seen('select'), seen('transaction')], [1, 3, 2, 1]);
  assert.ok(metrics.observed(DB_QUERY_DURATION, { db: 'main', role: 'primary', operation: 'select' }).every((s) => s >= 0 && s < 5), 'seconds');
  assert.equal(client.dialect, 'pglite');
  await client.close();
});

const hasPostgres = existsSync('/usr/lib/postgresql/15/bin/initdb') || Boolean(process.env.PG_BIN);

test('ReplicatedSql labels reads on a replica `replica` and writes `primary`; its lag probes are not observed', async (t) => {
  if (!hasPostgres) return t.skip('PostgreSQL 15 not installed (Debian package postgresql-15); .ci/run installs it');
  await using set = await startPostgresWithReplicas(1);
  const pools: pg.Pool[] = [];
  const client = (url: string) => {
    const p = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 2000 });
    p.on('error', () => {});
    pools.push(p);
    return pgPoolClient(p, { ownsPool: false });
  };
  const metrics = new MemoryMetrics();
  const rs = await new ReplicatedSql(client(set.primary.url), [client(set.replicas[0]!.url)], { name: 's1', maxLagMs: 60_000, probeMs: 20, metrics }).start();
  try {
    const n = (role: string, operation: string) => metrics.observed(DB_QUERY_DURATION, { db: 's1', role, operation }).length;
    await rs.write((tx) => tx.query('CREATE TABLE IF NOT EXISTS m (a int)'));
    await waitFor(() => rs.status().every((s) => s.up && s.lagMs === 0), { what: 'the replica caught up' });
    // several probe rounds pass here (probeMs 20) without touching the histogram
    await waitFor(async () => (await rs.read((q) => q.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec')))[0]!.rec, { what: 'a read served by the replica' });
    await rs.write((tx) => tx.query('INSERT INTO m VALUES (1)'));
    assert.ok(n('replica', 'select') >= 1, 'the read on the replica');
    assert.equal(n('primary', 'select'), 0, 'no primary select ran: the probes are not observed');
    assert.equal(n('primary', 'insert'), 1);
    assert.equal(n('primary', 'ddl'), 1);
    assert.equal(n('primary', 'transaction'), 2);
    assert.equal(n('replica', 'insert'), 0);
  } finally {
    await rs.close();
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
  }
});
