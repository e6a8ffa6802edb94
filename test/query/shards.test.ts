// Workspace sharding over 3 PostgreSQL databases (one throwaway server):
// routing by the hash ring, an online move of a workspace under a steady
// write load with no lost or duplicated rows, and the seed's 1.5x rebalance
// rule producing a suggestion that the move tool then carries out.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { MemoryEventLog } from '../../adapters/memory/memory-event-log.ts';
import { MemoryKv } from '../../adapters/memory/memory-kv.ts';
import {
  KvShardDirectory, MemoryShardDirectory, PostgresProjectionSink, PostgresQueryStore, ShardRouter, migrate, moveWorkspace, pgPoolClient,
  shardSizes, singleRouting, singleSql, suggestRebalance, type QueryDb, type SqlClient,
} from '../../adapters/postgres/query.ts';
import { ProjectionRunner } from '../../cluster/query/projection-runner.ts';
import type { LogEntry } from '../../runtime/log/event-log.ts';
import { assertStoreMatches, dumpWorkspace, generateLog } from '../conformance/store.ts';
import { startPostgres, type PostgresServer } from '../helpers/postgres.ts';

let server: PostgresServer;
const pools: pg.Pool[] = [];
let dbs: QueryDb[];
let rebuild: SqlClient;

function client(db: string): SqlClient {
  const p = new pg.Pool({ connectionString: server.url.replace(/\/postgres$/, `/${db}`), max: 4 });
  p.on('error', () => {});
  pools.push(p);
  return pgPoolClient(p, { ownsPool: false });
}

before(async () => {
  server = await startPostgres();
  const admin = client('postgres');
  for (const d of ['s0', 's1', 's2', 'rebuild']) await admin.query(`CREATE DATABASE ${d}`);
  dbs = ['s0', 's1', 's2'].map((id) => ({ id, sql: singleSql(client(id)) }));
  for (const d of dbs) await migrate(d.sql.primary);
  rebuild = client('rebuild');
  await migrate(rebuild);
});
after(async () => {
  await Promise.all(pools.map((p) => p.end().catch(() => {})));
  await server?.stop();
});

async function appendAll(log: MemoryEventLog, entries: readonly LogEntry[], between?: (i: number) => Promise<void>) {
  let i = 0;
  for (const e of entries) {
    assert.equal((await log.append(e.stream, { data: e.data })).pos, e.pos);
    if (between && ++i % 20 === 0) await between(i);
  }
}

async function caughtUp(runner: ProjectionRunner, entries: readonly LogEntry[]) {
  const last = new Map<string, number>();
  for (const e of entries) last.set(e.stream, e.pos);
  for (const [s, p] of last) await runner.waitFor(s, p, 20_000);
}

describe('query store sharded over 3 PostgreSQL databases', () => {
  test('workspaces are spread by the hash ring; each lives in exactly one database; reads route there', async () => {
    const router = new ShardRouter(dbs, new MemoryShardDirectory());
    const log = new MemoryEventLog();
    const runner = await new ProjectionRunner(log, new PostgresProjectionSink(router), { densePositions: true, maxDelayMs: 1 }).start();
    const logs = Array.from({ length: 9 }, (_, i) => generateLog(`wr${i}`, 40 + i, 40));
    for (const l of logs) await appendAll(log, l.entries);
    for (const l of logs) await caughtUp(runner, l.entries);
    await runner.stop();
    const used = new Set(logs.map((l) => router.shardOf(l.ws)));
    assert.ok(used.size >= 2, `9 workspaces over ${used.size} shards`);
    const store = new PostgresQueryStore(router);
    for (const l of logs) {
      for (const d of dbs) {
        const [r] = await d.sql.primary.query<{ n: number }>('SELECT count(*)::int AS n FROM chat_messages WHERE ws = $1', [l.ws]);
        if (d.id === router.shardOf(l.ws)) assert.ok(r!.n > 0);
        else assert.equal(r!.n, 0, `${l.ws} not in ${d.id}`);
      }
      await assertStoreMatches(store, l);
    }
  });

  test('a workspace moves to another shard online: copy, catch up, switch, verify; no row lost or duplicated', async () => {
    const kv = new MemoryKv();
    const directory = await KvShardDirectory.open(await kv.bucket('chorus-query-shards'));
    const router = new ShardRouter(dbs, directory);
    // a second node's router sees the switch through the same KV bucket
    const otherNode = new ShardRouter(dbs, await KvShardDirectory.open(await kv.bucket('chorus-query-shards')));
    const log = new MemoryEventLog();
    const sink = new PostgresProjectionSink(router);
    const runner = await new ProjectionRunner(log, sink, { densePositions: true, maxDelayMs: 1, maxBatch: 30 }).start();
    const ws = 'wmove';
    const data = generateLog(ws, 50, 900);
    const neighbour = generateLog('wstay', 51, 200);
    const from = router.shardOf(ws);
    const to = dbs.map((d) => d.id).find((id) => id !== from)!;
    let report: Awaited<ReturnType<typeof moveWorkspace>> | undefined;
    let moving: Promise<void> | undefined;
    // steady writes; the move starts a third of the way in and runs while writes continue
    await Promise.all([
      appendAll(log, data.entries, async (i) => {
        if (i === 300) {
          // let the projection write a good part first, so the copy has rows to copy
          await runner.waitFor(`channel.${ws}.c1`, 40);
          moving = moveWorkspace({ router, log, ws, to, sink, pageSize: 50 }).then((r) => void (report = r));
        }
        await new Promise((r) => setImmediate(r));
      }),
      appendAll(log, neighbour.entries, () => new Promise((r) => setImmediate(r))),
    ]);
    await moving;
    await caughtUp(runner, data.entries);
    await caughtUp(runner, neighbour.entries);
    await runner.stop();
    assert.ok(report, 'the move finished');
    assert.equal(report!.from, from);
    assert.equal(router.shardOf(ws), to);
    assert.equal(otherNode.shardOf(ws), to, 'the other node follows the directory');
    assert.ok(report!.copied.chat_messages! > 0 && report!.caughtUp > 0, JSON.stringify(report));
    // nothing of the workspace is left on the source
    const [left] = await router.db(from).sql.primary.query<{ n: number }>(`SELECT (SELECT count(*) FROM chat_messages WHERE ws = $1) + (SELECT count(*) FROM chorus_projection_positions WHERE ws = $1) AS n`, [ws]);
    assert.equal(Number(left!.n), 0);
    // the target equals a clean rebuild of the whole log
    const clean = await new ProjectionRunner(log, new PostgresProjectionSink(singleRouting(rebuild)), { densePositions: true, maxBatch: 500 }).start();
    await caughtUp(clean, data.entries);
    await clean.stop();
    assert.deepStrictEqual(await dumpWorkspace(router, ws), await dumpWorkspace(singleRouting(rebuild), ws));
    await assertStoreMatches(new PostgresQueryStore(router), data);
    await assertStoreMatches(new PostgresQueryStore(router), neighbour);
    await directory.close();
    console.log(`# move ${ws} ${from} -> ${to}: copied ${report!.copied.chat_messages} messages, caught up ${report!.caughtUp} records, ${report!.ms} ms`);
  });

  test('the 1.5x rule: a shard above 1.5x the average gets a suggestion, and carrying it out brings it under', async () => {
    const router = new ShardRouter(dbs, new MemoryShardDirectory());
    const log = new MemoryEventLog();
    const sink = new PostgresProjectionSink(router);
    const runner = await new ProjectionRunner(log, sink, { densePositions: true, maxDelayMs: 1 }).start();
    // pile workspaces onto one shard: pick names the ring gives to s0
    const names: string[] = [];
    for (let i = 0; names.length < 4; i++) if (router.shardOf(`wbig${i}`) === 's0') names.push(`wbig${i}`);
    const logs = names.map((ws, i) => generateLog(ws, 60 + i, 300));
    for (const l of logs) await appendAll(log, l.entries);
    for (const l of logs) await caughtUp(runner, l.entries);
    const sizes = await shardSizes(router);
    const s0 = sizes.find((s) => s.shard === 's0')!;
    const avg = sizes.reduce((a, s) => a + s.rows, 0) / sizes.length;
    assert.ok(s0.rows > 1.5 * avg, `s0 has ${s0.rows} rows, average ${avg}`);
    const suggestions = suggestRebalance(sizes);
    assert.ok(suggestions.length >= 1 && suggestions.every((s) => s.from === 's0' && s.to !== null), JSON.stringify(suggestions));
    for (const s of suggestions) await moveWorkspace({ router, log, ws: s.ws, to: s.to!, sink });
    await runner.stop();
    const after = await shardSizes(router);
    const avg2 = after.reduce((a, s) => a + s.rows, 0) / after.length;
    assert.ok(after.every((s) => s.rows <= 1.5 * avg2), JSON.stringify(after.map((s) => [s.shard, s.rows])));
    assert.deepEqual(suggestRebalance(after), []);
    for (const l of logs) await assertStoreMatches(new PostgresQueryStore(router), l);
  });
});

test('suggestRebalance: balanced shards get nothing; one huge workspace gets a dedicated-shard note', () => {
  assert.deepEqual(suggestRebalance([
    { shard: 'a', rows: 100, workspaces: [{ ws: 'x', rows: 100 }] },
    { shard: 'b', rows: 120, workspaces: [{ ws: 'y', rows: 120 }] },
  ]), []);
  const s = suggestRebalance([
    { shard: 'a', rows: 1000, workspaces: [{ ws: 'huge', rows: 1000 }] },
    { shard: 'b', rows: 10, workspaces: [{ ws: 'y', rows: 10 }] },
    { shard: 'c', rows: 10, workspaces: [{ ws: 'z', rows: 10 }] },
  ]);
  assert.equal(s.length, 1);
  assert.equal(s[0]!.ws, 'huge');
  assert.equal(s[0]!.to, null);
});
