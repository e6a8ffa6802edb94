// startQuerySide, as the composition root calls it: the embedded profile
// (PGlite, L1 cache) and the cluster profile (PostgreSQL, Redis L2, two
// nodes sharing a KV: one projector by lease, invalidation across nodes),
// plus the environment parser.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEventLog, MemoryLogServer } from '../../adapters/memory/memory-event-log.ts';
import { MemoryKv, MemoryKvServer } from '../../adapters/memory/memory-kv.ts';
import { MemoryMetrics } from '../../adapters/memory/memory-metrics.ts';
import { PostgresEventLog, pgliteClient } from '../../adapters/postgres/query.ts';
import { querySideEnv, startQuerySide } from '../../cluster/query/start-query-side.ts';
import { codec } from '../../runtime/codec.ts';
import type { EventLog } from '../../runtime/log/event-log.ts';
import { generateLog } from '../conformance/store.ts';
import { startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { waitFor } from '../helpers/ports.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

async function appendAll(log: EventLog, entries: ReturnType<typeof generateLog>['entries']) {
  for (const e of entries) await log.append(e.stream, { data: e.data });
}
const post = (seq: number, text: string) => codec.encode([{ type: 'posted', msg: { seq, user: 'u1', ts: Date.now(), text, cmid: `x${seq}` } }]);

test('embedded: PGlite store, L1 cache, projection with invalidation', async () => {
  const logDb = await pgliteClient();
  const log = new PostgresEventLog(logDb);
  const metrics = new MemoryMetrics();
  const qs = await startQuerySide({ profile: 'embedded', log, sql: await pgliteClient(), metrics });
  try {
    const data = generateLog('we1', 71, 150);
    await appendAll(log, data.entries);
    const stream = 'channel.we1.c1';
    const last = await log.lastPos(stream);
    await waitFor(() => qs.projection!.position(stream) >= last, { what: 'projected' });
    const q = { limit: 10, order: 'newest' } as const;
    const first = await qs.queryStore.history('we1', 'c1', q, { minPos: last });
    assert.ok(first && first.messages.length > 0);
    assert.deepStrictEqual(await qs.queryStore.history('we1', 'c1', q, { minPos: last }), first);
    assert.equal(metrics.value('chorus_cache_requests_total', { type: 'recent_messages', result: 'hit_l1' }), 1);
    // a new post: the projection invalidates the cached page; a read at the new position sees it
    const seq = first.latestSeq + 1;
    const r = await log.append(stream, { data: post(seq, 'fresh one') });
    await waitFor(() => qs.projection!.position(stream) >= r.pos, { what: 'projected again' });
    const page = await qs.queryStore.history('we1', 'c1', q, { minPos: r.pos });
    assert.equal(page!.messages[0]!.text, 'fresh one');
    assert.ok(metrics.value('chorus_cache_invalidations_total', { source: 'local' }) > 0);
  } finally {
    await qs.close();
    await log.close();
    await logDb.close();
  }
});

describe('cluster: PostgreSQL, Redis, two nodes', () => {
  let pgs: PostgresServer;
  let redis: RedisServer;
  before(async () => {
    [pgs, redis] = await Promise.all([startPostgres(), startRedis()]);
  });
  after(async () => {
    await redis?.stop();
    await pgs?.stop();
  });

  test('one projector by lease; the other node serves reads and hears invalidations through Redis; the lease moves on close', async () => {
    const logServer = new MemoryLogServer();
    const kvServer = new MemoryKvServer();
    const env = querySideEnv({ CHORUS_PG_URL: pgs.url, CHORUS_REDIS_URL: redis.url });
    const node = (id: string) => startQuerySide({ profile: 'cluster', nodeId: id, log: new MemoryEventLog(logServer), kv: new MemoryKv(kvServer), ...env });
    const a = await node('a');
    const b = await node('b');
    try {
      assert.equal([a, b].filter((n) => n.projection).length, 1, 'exactly one projector');
      const projector = a.projection ? a : b;
      const log = new MemoryEventLog(logServer);
      const data = generateLog('wc1', 72, 120);
      await appendAll(log, data.entries);
      const stream = 'channel.wc1.c1';
      const last = await log.lastPos(stream);
      await waitFor(() => projector.projection!.position(stream) >= last, { what: 'projected' });
      const q = { limit: 5, order: 'newest' } as const;
      const before = await b.queryStore.history('wc1', 'c1', q, { minPos: 0 });
      assert.equal(before!.latestSeq, data.channels.get('c1')!.messages.length);
      // a write: both nodes' caches drop the page (b through Redis pub/sub), even for reads that ask nothing fresh
      const r = await log.append(stream, { data: post(before!.latestSeq + 1, 'news') });
      await waitFor(() => projector.projection!.position(stream) >= r.pos, { what: 'projected again' });
      await waitFor(async () => (await b.queryStore.history('wc1', 'c1', q, { minPos: 0 }))!.messages[0]!.text === 'news', { timeoutMs: 3000, what: 'b invalidated' });
      await waitFor(async () => (await a.queryStore.history('wc1', 'c1', q, { minPos: 0 }))!.messages[0]!.text === 'news', { timeoutMs: 3000, what: 'a invalidated' });
      // the projector leaves: the other node takes over
      await projector.close();
      const other = projector === a ? b : a;
      await waitFor(() => other.projection !== undefined, { timeoutMs: 10_000, what: 'lease taken over' });
      const r2 = await log.append(stream, { data: post(before!.latestSeq + 2, 'after failover') });
      await waitFor(() => other.projection!.position(stream) >= r2.pos, { what: 'projected by the new holder' });
      assert.equal((await other.queryStore.history('wc1', 'c1', q, { minPos: r2.pos }))!.messages[0]!.text, 'after failover');
    } finally {
      await a.close();
      await b.close();
    }
  });
});

test('querySideEnv: shards, replicas, Redis, flags; every problem listed', () => {
  assert.deepEqual(querySideEnv({ CHORUS_PG_URL: 'postgres://p/db', CHORUS_PG_REPLICA_URLS: 'postgres://r1/db, postgres://r2/db', CHORUS_REDIS_URL: 'redis://h:6379', CHORUS_QUERY_PROJECTIONS: 'lease', CHORUS_CACHE_ADAPTIVE_TTL: '1' }), {
    shards: [{ id: 'main', primaryUrl: 'postgres://p/db', replicaUrls: ['postgres://r1/db', 'postgres://r2/db'] }],
    redisUrl: 'redis://h:6379', runProjections: 'lease', cache: { adaptiveTtl: true },
  });
  assert.deepEqual(querySideEnv({ CHORUS_PG_SHARDS: 's0=postgres://a/x|postgres://a2/x;s1=postgres://b/x?sslmode=disable' }).shards, [
    { id: 's0', primaryUrl: 'postgres://a/x', replicaUrls: ['postgres://a2/x'] },
    { id: 's1', primaryUrl: 'postgres://b/x?sslmode=disable', replicaUrls: [] },
  ]);
  assert.deepEqual(querySideEnv({}), { cache: {} });
  assert.throws(() => querySideEnv({ CHORUS_PG_SHARDS: 'bad id=http://x', CHORUS_REDIS_URL: 'http://r', CHORUS_QUERY_PROJECTIONS: 'maybe', CHORUS_CACHE_L1_MAX: '-1' }), (e: Error) =>
    ['CHORUS_PG_SHARDS', 'CHORUS_REDIS_URL', 'CHORUS_QUERY_PROJECTIONS', 'CHORUS_CACHE_L1_MAX'].every((k) => e.message.includes(k)));
});
