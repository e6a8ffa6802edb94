/**
 * History reads from the query store: pages of 50 messages from one channel
 * of 1,000,000 messages (`--quick`: 100,000), through the same path the
 * channel actor uses after its permission check (CachedQueryStore ->
 * PostgresQueryStore -> PostgreSQL), against a real PostgreSQL 15 primary,
 * alone and with one streaming replica (made by test/helpers/postgres.ts:
 * initdb, pg_basebackup -R, pg_ctl on loopback ports).
 *
 * Usage: `npm run bench -- history [--quick] [--messages=N] [--reads=N]
 * [--concurrency=N] [--no-redis]`.
 *
 * Method: the channel is bulk-loaded into chat_messages (every 10th message a
 * thread reply, so the top-level index is the real one) with its projection
 * position, then ANALYZEd, and the replica is waited for. Each run reads
 * `reads` pages (`before` uniform over the channel, plus the latest page one
 * read in ten) with `concurrency` readers, each read asking for the
 * channel's current position like the actor does (read-your-writes):
 *  - cold: empty cache, every read goes to PostgreSQL;
 *  - warm: the same reads again on the same node (L1 hits);
 *  - warm-l2 (with redis-server): a second node with an empty L1 and the
 *    shared Redis L2 filled by the first.
 * Both the primary-alone and the primary + replica runs are reported; the
 * headline p50Ms/p99Ms/readsPerSec are the cold reads against the primary
 * alone (every page from PostgreSQL), cacheHitRate is the warm run's.
 */
import pg from 'pg';
import { PostgresQueryStore, ReplicatedSql, migrate, pgPoolClient, singleRouting, upsertMessages, lsnValue, type MsgRow, type SqlClient } from '../adapters/postgres/query.ts';
import { RedisCacheStore } from '../adapters/redis/index.ts';
import { CachedQueryStore } from '../cluster/query/cached-query-store.ts';
import { TieredCache } from '../cluster/query/tiered-cache.ts';
import { seededRandom } from '../test/harness/rng.ts';
import { startPostgresWithReplicas } from '../test/helpers/postgres.ts';
import { startRedis, type RedisServer } from '../test/helpers/redis.ts';

const WS = 'wbench';
const CH = 'c1';
const PAGE = 50;

function arg(args: string[], name: string): number | undefined {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  if (!a) return undefined;
  const n = Number(a.slice(name.length + 3));
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`bench/history: --${name} must be a positive integer, got ${a}`);
  return n;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

function pool(url: string, max: number): { client: SqlClient; pool: pg.Pool } {
  const p = new pg.Pool({ connectionString: url, max });
  p.on('error', () => {});
  return { client: pgPoolClient(p, { ownsPool: false }), pool: p };
}

/** Bulk-loads the channel: `n` messages, every 10th a reply to the top-level message before it. */
async function load(db: SqlClient, n: number): Promise<number> {
  const t0 = performance.now();
  const chunk = 10_000;
  let lastTop = 1;
  for (let from = 1; from <= n; from += chunk) {
    const rows: MsgRow[] = [];
    for (let seq = from; seq < Math.min(n + 1, from + chunk); seq++) {
      const reply = seq % 10 === 0;
      if (!reply) lastTop = seq;
      rows.push({
        ws: WS, ch: CH, seq, user: `u${seq % 97}`, ts: 1_700_000_000_000 + seq * 1000, text: `message number ${seq}, with a little text to make it look like chat`,
        parent: reply ? lastTop : null, replyCount: !reply && (seq + 1) % 10 === 0 ? 1 : 0, lastReplyAt: null, editedAt: null, deleted: false,
        reactions: seq % 13 === 0 ? { thumbsup: ['u1', 'u2'] } : null, pinned: false, cmid: `m${seq}`, mentions: null, channelMention: false,
      });
    }
    await db.transaction((tx) => upsertMessages(tx, rows));
  }
  await db.query(`INSERT INTO chat_channels (ws, ch, name, kind, topic, created_by, created_at, member_count, latest_seq) VALUES ($1, $2, 'bench', 'public', '', 'u1', 0, 97, $3)`, [WS, CH, n]);
  await db.query(`INSERT INTO chorus_projection_positions (projection, stream, ws, pos, updated_at) VALUES ('query', $1, $2, $3, 0)`, [`channel.${WS}.${CH}`, WS, n]);
  await db.query('ANALYZE');
  return (performance.now() - t0) / 1000;
}

interface RunFigures {
  reads: number;
  p50Ms: number;
  p99Ms: number;
  readsPerSec: number;
  hitRate: number;
}

/** `reads` history reads with `concurrency` readers; the query list is fixed by the seed, so cold and warm read the same pages. */
async function readPages(store: CachedQueryStore | PostgresQueryStore, queries: Array<{ before?: number }>, minPos: number, concurrency: number): Promise<Omit<RunFigures, 'hitRate'>> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < queries.length) {
      const q = queries[next++]!;
      const s = performance.now();
      const page = await store.history(WS, CH, { ...q, limit: PAGE, order: 'newest' }, { minPos });
      lat.push(performance.now() - s);
      if (!page || page.messages.length === 0) throw new Error(`bench/history: empty page for ${JSON.stringify(q)}`);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { reads: lat.length, p50Ms: +pct(lat, 0.5).toFixed(3), p99Ms: +pct(lat, 0.99).toFixed(3), readsPerSec: Math.round(lat.length / secs) };
}

/**
 * Runs the benchmark and returns its figures (also printed as a table).
 * `args`: `--quick` (100,000 messages), `--messages=N`, `--reads=N` (default 4000; quick 2000),
 * `--concurrency=N` (default 8), `--no-redis`.
 */
export async function run(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes('--quick');
  const messages = arg(args, 'messages') ?? (quick ? 100_000 : 1_000_000);
  const reads = arg(args, 'reads') ?? (quick ? 2000 : 4000);
  const concurrency = arg(args, 'concurrency') ?? 8;
  const withRedis = !args.includes('--no-redis');
  const rnd = seededRandom(7);
  const queries = Array.from({ length: reads }, () => (rnd() < 0.1 ? {} : { before: 2 + Math.floor(rnd() * (messages - 1)) }));

  const set = await startPostgresWithReplicas(1);
  let redis: RedisServer | undefined;
  const pools: pg.Pool[] = [];
  const closers: Array<() => Promise<void>> = [];
  try {
    const primary = pool(set.primary.url, 8);
    const replica = pool(set.replicas[0]!.url, 8);
    pools.push(primary.pool, replica.pool);
    await migrate(primary.client);
    const loadSecs = await load(primary.client, messages);
    console.log(`loaded ${messages.toLocaleString()} messages in ${loadSecs.toFixed(1)} s`);
    // the replica must have the data before it is measured
    const [{ lsn }] = (await primary.client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')) as [{ lsn: string }];
    for (let i = 0; ; i++) {
      const [r] = await replica.client.query<{ lsn: string }>('SELECT pg_last_wal_replay_lsn()::text AS lsn');
      if (lsnValue(r!.lsn) >= lsnValue(lsn)) break;
      if (i > 600) throw new Error('bench/history: the replica did not catch up in 60 s');
      await new Promise((res) => setTimeout(res, 100));
    }
    if (withRedis) redis = await startRedis().catch((err) => (console.log(`redis-server not available (${(err as Error).message}); no L2 run`), undefined));

    const runs: Record<string, Record<string, RunFigures>> = {};
    for (const topology of ['primary', 'primary+replica'] as const) {
      const router = new ReplicatedSql(primary.client, topology === 'primary' ? [] : [replica.client], { closeClients: false });
      await router.start();
      closers.push(() => router.close());
      const store = new PostgresQueryStore(singleRouting(router), { migrate: false });
      const prefix = `bench-${topology}-${Date.now()}:`;
      const l2a = redis ? await new RedisCacheStore({ url: redis.url, prefix }).connect() : undefined;
      const l2b = redis ? await new RedisCacheStore({ url: redis.url, prefix }).connect() : undefined;
      if (l2a) closers.push(() => l2a.close());
      if (l2b) closers.push(() => l2b.close());
      const nodeA = await new TieredCache({ l2: l2a, l1Max: reads * 2 }).start();
      const nodeB = await new TieredCache({ l2: l2b, l1Max: reads * 2 }).start();
      closers.push(() => nodeA.close(), () => nodeB.close());
      const a = new CachedQueryStore(store, nodeA);
      const b = new CachedQueryStore(store, nodeB);
      // a short warm-up of the connections and the plan cache (not measured, other pages)
      await readPages(store, queries.slice(0, 50).map((q) => ('before' in q ? { before: Math.max(2, q.before! - 7) } : q)), messages, concurrency);
      const hits = () => nodeA.hitRates().recent_messages!.lookups + nodeA.hitRates().message_pages!.lookups;
      const rate = (c: TieredCache) => {
        const r = c.hitRates();
        const l = r.recent_messages!.lookups + r.message_pages!.lookups;
        return l ? (r.recent_messages!.hitRate * r.recent_messages!.lookups + r.message_pages!.hitRate * r.message_pages!.lookups) / l : 0;
      };
      const cold = await readPages(a, queries, messages, concurrency);
      const coldRate = rate(nodeA);
      const before = hits();
      const lookupsCold = before;
      const warm = await readPages(a, queries, messages, concurrency);
      const warmRate = (rate(nodeA) * hits() - coldRate * lookupsCold) / (hits() - lookupsCold);
      runs[topology] = { cold: { ...cold, hitRate: +coldRate.toFixed(3) }, warm: { ...warm, hitRate: +warmRate.toFixed(3) } };
      if (redis) {
        const warmL2 = await readPages(b, queries, messages, concurrency);
        runs[topology]!['warm-l2'] = { ...warmL2, hitRate: +rate(nodeB).toFixed(3) };
      }
      if (topology === 'primary+replica') {
        const st = router.status()[0]!;
        console.log(`replica: up=${st.up} lagMs=${st.lagMs}`);
      }
    }

    console.log(`\nhistory pages of ${PAGE}, channel of ${messages.toLocaleString()} messages, ${reads} reads per run, ${concurrency} concurrent readers`);
    console.log('topology          run       p50 ms   p99 ms   reads/s   hit rate');
    for (const [topology, r] of Object.entries(runs)) {
      for (const [name, f] of Object.entries(r)) {
        console.log(`${topology.padEnd(17)} ${name.padEnd(8)} ${f.p50Ms.toFixed(3).padStart(8)} ${f.p99Ms.toFixed(3).padStart(8)} ${String(f.readsPerSec).padStart(9)}   ${f.hitRate.toFixed(3)}`);
      }
    }
    const head = runs.primary!.cold;
    return {
      bench: 'history',
      messages,
      pageSize: PAGE,
      reads,
      concurrency,
      p50Ms: head.p50Ms,
      p99Ms: head.p99Ms,
      readsPerSec: head.readsPerSec,
      cacheHitRate: runs.primary!.warm.hitRate,
      headline: 'cold reads (every page from PostgreSQL), primary alone; cacheHitRate: warm run',
      runs,
      loadSeconds: +loadSecs.toFixed(1),
      postgres: 'PostgreSQL 15, fsync=off, synchronous_commit=off (test server), loopback',
    };
  } finally {
    for (const c of closers.reverse()) await c().catch(() => {});
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
    await redis?.stop();
    await set.stop();
  }
}

// direct run: `node --import tsx bench/history.ts [--quick]`
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await run(process.argv.slice(2))));
}
