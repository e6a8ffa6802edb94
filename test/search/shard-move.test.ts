// The online workspace move (adapters/postgres/shard-move.ts) carries the
// PostgreSQL search index with the query tables: a workspace with indexed
// messages moves between two PostgreSQL servers (and, second variant, two
// PGlite databases) while posts, edits, reactions and deletes continue and
// both projections (query and search) keep running; afterwards search on the
// target answers exactly what a clean rebuild of the log answers (no hit
// lost, none duplicated), the source holds nothing of the workspace, and a
// neighbour workspace on the source is untouched. A move that is not given a
// projection the workspace has rows of is refused.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { parseSearchQuery } from '../../actors/search-query.ts';
import type { SearchHit, SearchOrder } from '../../actors/search.ts';
import { MemoryEventLog } from '../../adapters/memory/memory-event-log.ts';
import { MemoryKv } from '../../adapters/memory/memory-kv.ts';
import {
  KvShardDirectory, MemoryShardDirectory, PostgresProjectionSink, PostgresSearch, QUERY_SHARD_PROJECTION, ShardRouter, migrate, moveWorkspace,
  pgPoolClient, pgliteClient, singleRouting, singleSql, type QueryDb, type SqlClient,
} from '../../adapters/postgres/query.ts';
import { ProjectionRunner } from '../../cluster/query/projection-runner.ts';
import { PG_SEARCH_SHARD_PROJECTION, SEARCH_PROJECTION, SearchProjectionSink } from '../../cluster/search/index.ts';
import type { LogEntry } from '../../runtime/log/event-log.ts';
import { dumpWorkspace, generateLog } from '../conformance/store.ts';
import { startPostgres, type PostgresServer } from '../helpers/postgres.ts';

const CHANNELS = ['c1', 'c2', 'dm-x'];
const QUERIES = ['hello', 'edited', 'second', 'quoted', 'hello quoted', '"second 1"', 'from:u1', 'from:42 hello', 'after:2023-11-15 hello'];

/** Every hit of `query` in `ws`, page after page, in both orders. */
async function allHits(index: PostgresSearch, ws: string, query: string): Promise<Record<SearchOrder, SearchHit[]>> {
  const out = {} as Record<SearchOrder, SearchHit[]>;
  for (const order of ['newest', 'relevance'] as const) {
    const hits: SearchHit[] = [];
    let cursor: string | undefined;
    do {
      const page = await index.search({ ws, channels: CHANNELS, query: parseSearchQuery(query), order, limit: 37, ...(cursor ? { cursor } : {}) });
      hits.push(...page.hits);
      cursor = page.next;
    } while (cursor);
    out[order] = hits;
  }
  return out;
}

/** The search rows (with the generated tsvector) and 'search' positions of `ws` in `db`, `ws` masked. */
async function dumpSearch(db: SqlClient, ws: string) {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT ch, seq, user_id, ts, text, parent, edited_at, has_file, reactions, tsv::text AS tsv FROM chat_search WHERE ws = $1 ORDER BY ch COLLATE "C", seq`, [ws]);
  const pos = await db.query<{ stream: string; pos: string }>(
    `SELECT stream, pos FROM chorus_projection_positions WHERE ws = $1 AND projection = $2 ORDER BY stream COLLATE "C"`, [ws, SEARCH_PROJECTION]);
  return { rows, positions: pos.map((p) => [p.stream, Number(p.pos)]) };
}

/** Applies `entries` to `db` with both projections, as a clean rebuild. */
async function rebuildInto(db: SqlClient, entries: readonly LogEntry[]) {
  const sink = new PostgresProjectionSink(singleRouting(db), { migrate: false });
  for (let i = 0; i < entries.length; i += 500) {
    await sink.apply(entries.slice(i, i + 500));
    await PG_SEARCH_SHARD_PROJECTION.apply(db, entries.slice(i, i + 500));
  }
}

async function appendAll(log: MemoryEventLog, entries: readonly LogEntry[], between?: (i: number) => Promise<void>) {
  let i = 0;
  for (const e of entries) {
    assert.equal((await log.append(e.stream, { data: e.data })).pos, e.pos);
    if (between) await between(++i);
  }
}

async function caughtUp(runner: ProjectionRunner, entries: readonly LogEntry[], only?: string) {
  const last = new Map<string, number>();
  for (const e of entries) if (!only || e.stream.startsWith(only)) last.set(e.stream, e.pos);
  for (const [s, p] of last) await runner.waitFor(s, p, 30_000);
}

/**
 * Two shards, both projections running, a workspace `ws` (and a neighbour on
 * the same shard) written steadily; the move starts once the search index
 * holds part of `ws` and runs while the writes go on.
 */
async function moveUnderLoad(dbs: QueryDb[], rebuild: SqlClient, records: number) {
  const kv = new MemoryKv();
  const directory = await KvShardDirectory.open(await kv.bucket('chorus-query-shards'));
  const router = new ShardRouter(dbs, directory);
  const log = new MemoryEventLog();
  const querySink = new PostgresProjectionSink(router);
  const index = new PostgresSearch(router);
  const queryRunner = await new ProjectionRunner(log, querySink, { densePositions: true, maxDelayMs: 1, maxBatch: 30 }).start();
  const searchRunner = await new ProjectionRunner(log, new SearchProjectionSink(index), {
    name: SEARCH_PROJECTION, prefixes: ['channel.'], densePositions: true, maxDelayMs: 1, maxBatch: 30,
  }).start();
  const ws = 'wsearch';
  const from = router.shardOf(ws);
  const to = dbs.map((d) => d.id).find((id) => id !== from)!;
  let nb = 'wnext0';
  for (let i = 1; router.shardOf(nb) !== from; i++) nb = `wnext${i}`; // shares the source with ws: search units mix both
  const data = generateLog(ws, 70, records);
  const neighbour = generateLog(nb, 71, Math.round(records / 3));
  const startAt = Math.round(data.entries.length / 3);
  let report: Awaited<ReturnType<typeof moveWorkspace>> | undefined;
  let moving: Promise<void> | undefined;
  await Promise.all([
    appendAll(log, data.entries, async (i) => {
      if (i === startAt) {
        // let both projections write a good part first, so the copy has rows (and search documents) to copy
        const half = data.entries.slice(0, Math.round(startAt / 2)).filter((e) => e.stream === `channel.${ws}.c1`).at(-1)!;
        await searchRunner.waitFor(half.stream, half.pos, 30_000);
        await queryRunner.waitFor(half.stream, half.pos, 30_000);
        moving = moveWorkspace({
          router, log, ws, to, pageSize: 50,
          projections: [{ ...QUERY_SHARD_PROJECTION, barrier: () => querySink.barrier() }, { ...PG_SEARCH_SHARD_PROJECTION, barrier: () => index.barrier() }],
        }).then((r) => void (report = r));
      }
      await new Promise((r) => setImmediate(r));
    }),
    appendAll(log, neighbour.entries, () => new Promise((r) => setImmediate(r))),
  ]);
  await moving;
  for (const l of [data, neighbour]) {
    await caughtUp(queryRunner, l.entries);
    await caughtUp(searchRunner, l.entries, 'channel.');
  }
  await queryRunner.stop();
  await searchRunner.stop();
  await directory.close();

  assert.ok(report, 'the move finished');
  assert.equal(report!.from, from);
  assert.equal(router.shardOf(ws), to);
  assert.ok(report!.copied.chat_search! > 0 && report!.copied['chorus_projection_positions:search']! > 0, JSON.stringify(report!.copied));
  assert.ok(report!.verified.chat_search!.rows > 0, JSON.stringify(report!.verified));

  await rebuildInto(rebuild, [...data.entries, ...neighbour.entries]);
  const clean = new PostgresSearch(singleRouting(rebuild), { migrate: false });
  const target = router.db(to).sql.primary;
  const source = router.db(from).sql.primary;

  // the target's index is exactly a clean rebuild's: rows (with the generated tsvector) and positions
  assert.deepStrictEqual(await dumpSearch(target, ws), await dumpSearch(rebuild, ws));
  // and so is every search: no hit lost, none duplicated, on every page of both orders
  let hits = 0;
  for (const q of QUERIES) {
    const got = await allHits(index, ws, q);
    assert.deepStrictEqual(got, await allHits(clean, ws, q), `search ${JSON.stringify(q)}`);
    const keys = got.newest.map((h) => `${h.ch}:${h.seq}`);
    assert.equal(new Set(keys).size, keys.length, `no duplicated hit for ${JSON.stringify(q)}`);
    hits += keys.length;
  }
  assert.ok(hits > 100, `${hits} hits compared`);
  // the query tables moved with it
  assert.deepStrictEqual(await dumpWorkspace(router, ws), await dumpWorkspace(singleRouting(rebuild), ws));

  // the source no longer holds or serves the workspace
  const [left] = await source.query<{ n: number }>(
    'SELECT (SELECT count(*) FROM chat_search WHERE ws = $1) + (SELECT count(*) FROM chat_messages WHERE ws = $1) + (SELECT count(*) FROM chorus_projection_positions WHERE ws = $1) AS n', [ws]);
  assert.equal(Number(left!.n), 0);
  assert.deepEqual((await allHits(new PostgresSearch(singleRouting(source), { migrate: false }), ws, 'hello')).newest, []);

  // the neighbour stayed on the source, complete
  assert.equal(router.shardOf(nb), from);
  assert.deepStrictEqual(await dumpSearch(source, nb), await dumpSearch(rebuild, nb));
  for (const q of QUERIES.slice(0, 3)) assert.deepStrictEqual(await allHits(index, nb, q), await allHits(clean, nb, q));
  console.log(`# move ${ws} ${from} -> ${to}: copied ${report!.copied.chat_search} search rows, ${report!.copied.chat_messages} messages; `
    + `caught up ${JSON.stringify(report!.caughtUpBy)}; ${hits} hits compared; ${report!.ms} ms`);
}

describe('workspace move carries the search index: two PostgreSQL servers', () => {
  const servers: PostgresServer[] = [];
  const pools: pg.Pool[] = [];
  const client = (server: PostgresServer, db: string): SqlClient => {
    const p = new pg.Pool({ connectionString: server.url.replace(/\/postgres$/, `/${db}`), max: 4 });
    p.on('error', () => {});
    pools.push(p);
    return pgPoolClient(p, { ownsPool: false });
  };
  let dbs: QueryDb[];
  let rebuild: SqlClient;

  before(async () => {
    servers.push(...await Promise.all([startPostgres(), startPostgres()]));
    await client(servers[0]!, 'postgres').query('CREATE DATABASE rebuild');
    dbs = servers.map((s, i) => ({ id: `s${i}`, sql: singleSql(client(s, 'postgres')) }));
    rebuild = client(servers[0]!, 'rebuild');
    for (const c of [...dbs.map((d) => d.sql.primary), rebuild]) await migrate(c);
  });
  after(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
    await Promise.all(servers.map((s) => s.stop()));
  });

  test('moved while posts continue: search on the target equals a clean rebuild; the source serves nothing of it', async () => {
    await moveUnderLoad(dbs, rebuild, 900);
  });

  test('a move not given a projection the workspace has rows of is refused, and changes nothing', async () => {
    const router = new ShardRouter(dbs, new MemoryShardDirectory());
    let ws = 'wrefuse0';
    for (let i = 1; router.shardOf(ws) !== 's0'; i++) ws = `wrefuse${i}`;
    const source = router.db('s0').sql.primary;
    const entries = generateLog(ws, 72, 60).entries;
    await QUERY_SHARD_PROJECTION.apply(source, entries);
    await PG_SEARCH_SHARD_PROJECTION.apply(source, entries);
    const count = async (db: SqlClient) => Number((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM chat_search WHERE ws = $1', [ws]))[0]!.n);
    const before = await count(source);
    assert.ok(before > 0);
    await assert.rejects(moveWorkspace({ router, log: new MemoryEventLog(), ws, to: 's1' }), /projection\(s\) "search"/);
    assert.equal(router.shardOf(ws), 's0');
    assert.equal(await count(source), before);
    assert.equal(await count(router.db('s1').sql.primary), 0);
  });
});

describe('workspace move carries the search index: two PGlite databases', () => {
  const clients: SqlClient[] = [];
  after(async () => {
    for (const c of clients) await c.close();
  });

  test('moved while posts continue: search on the target equals a clean rebuild; the source serves nothing of it', async () => {
    clients.push(await pgliteClient(), await pgliteClient(), await pgliteClient());
    for (const c of clients) await migrate(c);
    await moveUnderLoad([{ id: 'p0', sql: singleSql(clients[0]!) }, { id: 'p1', sql: singleSql(clients[1]!) }], clients[2]!, 300);
  });
});
