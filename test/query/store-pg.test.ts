// The query store on a real PostgreSQL 15 primary with streaming replicas
// (initdb, pg_basebackup -R, pg_ctl on loopback ports): the conformance suite
// reading through the replicas, then the replica router: round robin,
// read-your-writes by WAL position, the lag bound, a replica down and back.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { MemoryMetrics } from '../../adapters/memory/memory-metrics.ts';
import {
  PostgresProjectionSink, PostgresQueryStore, ReplicatedSql, SqlSession, migrate, pgPoolClient, singleRouting, type SqlClient,
} from '../../adapters/postgres/query.ts';
import { assertStoreMatches, describeQueryStore, generateLog, project } from '../conformance/store.ts';
import { startPostgresWithReplicas, type PostgresReplicaSet } from '../helpers/postgres.ts';
import { waitFor } from '../helpers/ports.ts';

let set: PostgresReplicaSet;
const pools: pg.Pool[] = [];
function client(url: string): SqlClient {
  const p = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 2000 });
  p.on('error', () => {});
  pools.push(p);
  return pgPoolClient(p, { ownsPool: false });
}

before(async () => {
  set = await startPostgresWithReplicas(2);
  await migrate(client(set.primary.url));
});
after(async () => {
  await Promise.all(pools.map((p) => p.end().catch(() => {})));
  await set?.stop();
});

describeQueryStore('PostgreSQL primary + replica', async () => {
  const rs = await new ReplicatedSql(client(set.primary.url), [client(set.replicas[0]!.url)], { closeClients: false }).start();
  return { routing: singleRouting(rs), close: () => rs.close() };
});

describe('ReplicatedSql against real streaming replicas', () => {
  let rs: ReplicatedSql;
  let metrics: MemoryMetrics;
  const port = (q: { query: SqlClient['query'] }) => q.query<{ port: number; rec: boolean }>('SELECT inet_server_port() AS port, pg_is_in_recovery() AS rec').then((r) => r[0]!);

  before(async () => {
    metrics = new MemoryMetrics();
    // a loose lag bound here (a loaded box can delay replay by a few hundred ms); the lag test uses its own tight one
    rs = await new ReplicatedSql(client(set.primary.url), set.replicas.map((r) => client(r.url)), { maxLagMs: 60_000, probeMs: 50, downForMs: 300, closeClients: false, metrics }).start();
    await rs.write((tx) => tx.query('CREATE TABLE IF NOT EXISTS rt (id int PRIMARY KEY, v text)'));
    await waitFor(() => rs.status().every((s) => s.up && s.lagMs === 0), { what: 'replicas caught up' });
  });
  after(async () => {
    await rs?.close();
  });

  test('reads go round robin over the replicas', async () => {
    const seen = new Map<number, number>();
    for (let i = 0; i < 20; i++) {
      const r = await rs.read((q) => port(q));
      assert.equal(r.rec, true, 'answered by a replica');
      seen.set(r.port, (seen.get(r.port) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), set.replicas.map((r) => r.port).sort());
    assert.deepEqual([...seen.values()], [10, 10]);
  });

  test('read-your-writes: a session reads its own write at once, from a replica that replayed it or else the primary', async () => {
    const session = new SqlSession();
    let fromReplica = 0;
    for (let i = 0; i < 100; i++) {
      await rs.write((tx) => tx.query('INSERT INTO rt (id, v) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v', [i % 10, `v${i}`]), session);
      const [row] = await rs.read((q) => q.query<{ v: string; rec: boolean }>('SELECT v, pg_is_in_recovery() AS rec FROM rt WHERE id = $1', [i % 10]), { session });
      assert.equal(row!.v, `v${i}`, `write ${i} visible to its session`);
      if (row!.rec) fromReplica++;
    }
    assert.ok(session.lsn.includes('/'));
    // a later read of the same session, once the replicas replayed, is served by a replica again
    await waitFor(async () => (await rs.read((q) => port(q), { session })).rec, { what: 'replica serving the session' });
    console.log(`# read-your-writes: ${fromReplica}/100 immediate reads served by a replica, the rest by the primary`);
  });

  test('a replica lagging past the bound is skipped until it catches up', async () => {
    const tight = await new ReplicatedSql(client(set.primary.url), set.replicas.map((r) => client(r.url)), { maxLagMs: 500, probeMs: 50, closeClients: false, metrics }).start();
    const lagging = client(set.replicas[0]!.url);
    await lagging.query('SELECT pg_wal_replay_pause()');
    try {
      for (let i = 0; i < 5; i++) await tight.write((tx) => tx.query('INSERT INTO rt (id, v) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v', [100 + i, 'lag']));
      await waitFor(() => tight.status()[0]!.lagMs > 500, { what: 'lag detected' });
      for (let i = 0; i < 10; i++) assert.notEqual((await tight.read((q) => port(q))).port, set.replicas[0]!.port);
      assert.ok(metrics.value('chorus_pg_reads_total', { db: 'main', target: 'replica', reason: 'ok' }) > 0);
      await lagging.query('SELECT pg_wal_replay_resume()');
      await waitFor(() => tight.status()[0]!.lagMs === 0, { timeoutMs: 15_000, what: 'caught up' });
      await waitFor(async () => (await tight.read((q) => port(q))).port === set.replicas[0]!.port, { what: 'taken back' });
    } finally {
      await lagging.query('SELECT pg_wal_replay_resume()');
      await tight.close();
    }
  });

  test('a replica down: reads go elsewhere, then it comes back by itself (G12)', async () => {
    await set.replicas[1]!.kill();
    try {
      for (let i = 0; i < 10; i++) {
        const r = await rs.read((q) => port(q));
        assert.notEqual(r.port, set.replicas[1]!.port);
      }
      assert.equal(rs.status()[1]!.up, false);
      // with every replica down, the primary answers
      await set.replicas[0]!.kill();
      const r = await rs.read((q) => port(q));
      assert.equal(r.port, set.primary.port);
      assert.ok(metrics.value('chorus_pg_reads_total', { db: 'main', target: 'primary', reason: 'replica_down' }) > 0);
    } finally {
      await set.replicas[0]!.restart();
      await set.replicas[1]!.restart();
    }
    await waitFor(() => rs.status().every((s) => s.up && s.lagMs === 0), { timeoutMs: 15_000, what: 'replicas back' });
    const ports = new Set<number>();
    for (let i = 0; i < 4; i++) ports.add((await rs.read((q) => port(q))).port);
    assert.deepEqual([...ports].sort(), set.replicas.map((r) => r.port).sort());
  });

  test('the query store refuses a replica whose projection is behind the caller and asks the primary', async () => {
    // a lag bound the test cannot reach, so the replicas are only refused for their projection position
    const patient = await new ReplicatedSql(client(set.primary.url), set.replicas.map((r) => client(r.url)), { maxLagMs: 600_000, closeClients: false, metrics }).start();
    const store = new PostgresQueryStore(singleRouting(patient), { freshWaitMs: 0 });
    const sink = new PostgresProjectionSink(singleRouting(patient));
    const log = generateLog(`wrep${Date.now().toString(36)}`, 21, 150);
    const paused = set.replicas.map((r) => client(r.url));
    await Promise.all(paused.map((c) => c.query('SELECT pg_wal_replay_pause()')));
    try {
      await project(sink, log.entries, 3);
      const before = metrics.value('chorus_pg_reads_total', { db: 'main', target: 'primary', reason: 'not_accepted' });
      await assertStoreMatches(store, log);
      assert.ok(metrics.value('chorus_pg_reads_total', { db: 'main', target: 'primary', reason: 'not_accepted' }) > before);
    } finally {
      await Promise.all(paused.map((c) => c.query('SELECT pg_wal_replay_resume()')));
      await patient.close();
    }
  });
});
