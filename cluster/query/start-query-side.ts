/**
 * `startQuerySide(options)`: builds the query side for the composition root
 * (docs/query-side.md "Wiring"):
 *
 * - embedded: one PGlite database (its own directory `${dataDir}/query`, or
 *   the `sql` client given), L1 cache only;
 * - cluster: PostgreSQL shards (each a primary with optional read replicas),
 *   workspaces spread by the hash ring plus a shard directory (KV bucket
 *   `chorus-query-shards` when `kv` is given), L1 + Redis L2 when `redisUrl`
 *   is set.
 *
 * It migrates every database, starts the projection runner (unless
 * `runProjections: false`) with cache invalidation on every write, and
 * returns the `queryStore` to hand to `chatActorTypes({ notifier, queryStore })`.
 */
import { closeSteps } from '../close-steps.ts';
import pg from 'pg';
import { join } from 'node:path';
import type { QueryStore } from '../../actors/query-store.ts';
import {
  KvShardDirectory, MemoryShardDirectory, PostgresProjectionSink, PostgresQueryStore, QUERY_SHARD_PROJECTION, ReplicatedSql, ShardRouter, migrate,
  pgPoolClient, singleRouting, startPgliteMaintenance, timedSql, workerPgliteClient, type QueryRouting, type ShardDirectory, type ShardProjection, type SqlClient,
} from '../../adapters/postgres/query.ts';
import { RedisCacheStore } from '../../adapters/redis/index.ts';
import type { KvStore } from '../../runtime/kv/kv.ts';
import type { EventLog } from '../../runtime/log/event-log.ts';
import { noopMetrics, silentLogger, type Logger, type Metrics } from '../../runtime/metrics.ts';
import { CachedQueryStore } from './cached-query-store.ts';
import { placeProjection } from './projection-lease.ts';
import { ProjectionRunner } from './projection-runner.ts';
import { TieredCache } from './tiered-cache.ts';

/** One PostgreSQL shard: a primary and its read replicas. */
export interface ShardSpec {
  readonly id: string;
  readonly primaryUrl: string;
  readonly replicaUrls?: readonly string[];
}

/** Options of startQuerySide. */
export interface QuerySideOptions {
  readonly profile: 'embedded' | 'cluster';
  /** The node's event log (the projections tail it). */
  readonly log: EventLog;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /** Names this node in cache invalidations. */
  readonly nodeId?: string;
  /** embedded: the database to use; default PGlite in `${dataDir}/query`, run in a worker thread (workerPgliteClient). */
  readonly sql?: SqlClient;
  /** embedded: where the default PGlite lives. Default './data'. */
  readonly dataDir?: string;
  /** cluster: the shards (one for an unsharded setup). */
  readonly shards?: readonly ShardSpec[];
  /** cluster: KV for the shard directory (overrides of moved workspaces); default: in-process (one node only). */
  readonly kv?: KvStore;
  /** cluster: Redis for the L2 cache; none: L1 only. */
  readonly redisUrl?: string;
  /**
   * Where the projections run: true (here), false (not here), 'lease' (on the
   * one node holding the KV lease, see ProjectionLease; needs `kv`). Default:
   * 'lease' in the cluster profile when `kv` is given, else true. Several
   * projectors are safe (idempotent writes) but waste work.
   */
  readonly runProjections?: boolean | 'lease';
  /** Cache settings; false: no cache at all. */
  readonly cache?: false | { readonly l1Max?: number; readonly adaptiveTtl?: boolean; readonly types?: Readonly<Record<string, number>> };
  /** Replica lag bound (ms). Default 1000. */
  readonly maxReplicaLagMs?: number;
  /** How long a read waits for the projection (read-your-writes) before the actor serves from memory. Default 25 ms. */
  readonly freshWaitMs?: number;
  /**
   * The log's positions are dense per stream (PGlite/PostgreSQL/memory logs; not JetStream): lets the
   * projection repair a tail that delivers out of order. Default: true in the embedded profile.
   */
  readonly densePositions?: boolean;
  /**
   * Longest a log record waits for others to share its projection write
   * (ProjectionRunnerOptions.maxDelayMs). Each write is a transaction of
   * several statements whatever its size, so a longer wait costs less CPU per
   * record at any load; reads that must see a write wait for it by log
   * position (`freshWaitMs`), then the actor answers from memory. Default 50
   * in the embedded profile (PGlite statements run on the node's own
   * thread), 10 in the cluster profile.
   */
  readonly projectionDelayMs?: number;
  /** Connections per pg pool. Default 10. */
  readonly poolMax?: number;
}

/** What startQuerySide returns. */
export interface QuerySide {
  /** Hand this to chatActorTypes({ notifier, queryStore }). */
  readonly queryStore: QueryStore;
  readonly store: PostgresQueryStore;
  readonly routing: QueryRouting;
  /** Cluster profile: the shard router (for the move tool and the rebalance suggestion). */
  readonly shards: ShardRouter | undefined;
  readonly cache: TieredCache | undefined;
  /** The projection runner while this node runs the projections. */
  readonly projection: ProjectionRunner | undefined;
  /** The projection sink (its barrier is in `shardProjection`). */
  readonly sink: PostgresProjectionSink;
  /** The query projection as the shard move tool carries it, with this node's sink barrier (moveWorkspace's `projections`). */
  readonly shardProjection: ShardProjection;
  close(): Promise<void>;
}

function pool(url: string, max: number, queryTimeoutMs: number, logger: Logger, what: string): SqlClient {
  const p = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 2000, idleTimeoutMillis: 30_000, query_timeout: queryTimeoutMs });
  // an idle connection killed by the server emits 'error' on the pool: without a listener the process would die
  p.on('error', (err) => logger.warn({ db: what, err: err.message }, 'postgres pool connection error'));
  return pgPoolClient(p);
}

/** Builds and starts the query side. */
export async function startQuerySide(o: QuerySideOptions): Promise<QuerySide> {
  const metrics = o.metrics ?? noopMetrics;
  const logger = (o.logger ?? silentLogger).child({ component: 'query' });
  const closers = closeSteps(logger, 'query side');
  const close = closers.close;
  try {
    let routing: QueryRouting;
    let shards: ShardRouter | undefined;
    if (o.profile === 'embedded') {
      // its own PGlite in a worker thread: the projections' and reads' database work runs on another core than the node's loop
      const client = o.sql ?? timedSql(await workerPgliteClient(join(o.dataDir ?? './data', 'query')), { metrics, db: 'query' });
      if (!o.sql) {
        closers.push(() => client.close());
        closers.push(startPgliteMaintenance(client, { logger })); // PGlite has no autovacuum
      }
      routing = singleRouting(client);
    } else {
      const specs = o.shards ?? [];
      if (!specs.length) throw new RangeError('startQuerySide: the cluster profile needs at least one shard (CHORUS_PG_URL or CHORUS_PG_SHARDS)');
      const poolMax = o.poolMax ?? 10;
      const dbs = await Promise.all(specs.map(async (s) => {
        const sql = new ReplicatedSql(
          pool(s.primaryUrl, poolMax, 10_000, logger, `${s.id}/primary`),
          (s.replicaUrls ?? []).map((u, i) => pool(u, poolMax, 2000, logger, `${s.id}/replica-${i}`)),
          { name: s.id, maxLagMs: o.maxReplicaLagMs ?? 1000, metrics, logger },
        );
        closers.push(() => sql.close());
        await migrate(sql.primary);
        await sql.start();
        return { id: s.id, sql };
      }));
      let directory: ShardDirectory = new MemoryShardDirectory();
      if (o.kv) directory = await KvShardDirectory.open(await o.kv.bucket('chorus-query-shards'));
      closers.push(() => directory.close());
      routing = shards = new ShardRouter(dbs, directory);
    }

    const store = new PostgresQueryStore(routing, { ...(o.freshWaitMs !== undefined ? { freshWaitMs: o.freshWaitMs } : {}) });
    await store.ready();

    let cache: TieredCache | undefined;
    let queryStore: QueryStore = store;
    let cached: CachedQueryStore | undefined;
    if (o.cache !== false) {
      let l2: RedisCacheStore | undefined;
      if (o.redisUrl) {
        l2 = await new RedisCacheStore({ url: o.redisUrl, logger, metrics }).connect();
        closers.push(() => l2!.close());
      }
      cache = await new TieredCache({ l2, metrics, logger, ...(o.nodeId ? { nodeId: o.nodeId } : {}), ...(o.cache ?? {}) }).start();
      closers.push(() => cache!.close());
      queryStore = cached = new CachedQueryStore(store, cache);
    }

    const sink = new PostgresProjectionSink(routing);
    let projection: ProjectionRunner | undefined;
    const startProjection = async () => {
      if (projection) return;
      const runner = new ProjectionRunner(o.log, sink, {
        metrics, logger, densePositions: o.densePositions ?? o.profile === 'embedded',
        maxDelayMs: o.projectionDelayMs ?? (o.profile === 'embedded' ? 50 : 10),
        ...(cached ? { onCommitted: (moved: ReadonlyMap<string, number>) => void cached!.invalidate(moved) } : {}),
      });
      await runner.start();
      projection = runner;
    };
    const stopProjection = async () => {
      const runner = projection;
      projection = undefined;
      await runner?.stop();
    };
    const mode = o.runProjections ?? (o.profile === 'cluster' && o.kv ? 'lease' : true);
    closers.push(await placeProjection({ mode, kv: o.kv, nodeId: o.nodeId ?? `node-${process.pid}`, logger, start: startProjection, stop: stopProjection, what: 'startQuerySide' }));
    logger.info({ profile: o.profile, shards: routing.dbs().map((d) => d.id), cache: cache ? (o.redisUrl ? 'l1+redis' : 'l1') : 'none', projections: mode }, 'query side started');
    return {
      queryStore, store, routing, shards, cache, sink, close,
      shardProjection: { ...QUERY_SHARD_PROJECTION, barrier: () => sink.barrier() },
      get projection() {
        return projection;
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The query side's settings from CHORUS_* variables (the composition root
 * passes its environment; see docs/query-side.md):
 * CHORUS_PG_URL, CHORUS_PG_REPLICA_URLS (comma-separated), CHORUS_PG_SHARDS
 * (`id=primaryUrl|replicaUrl|...;id2=...`, instead of the two before),
 * CHORUS_REDIS_URL, CHORUS_QUERY_PROJECTIONS (1/0/lease), CHORUS_CACHE_ADAPTIVE_TTL
 * (1/0), CHORUS_CACHE_L1_MAX, CHORUS_PG_MAX_REPLICA_LAG_MS. Throws a RangeError
 * listing every problem.
 */
export function querySideEnv(env: Record<string, string | undefined>): Pick<QuerySideOptions, 'shards' | 'redisUrl' | 'runProjections' | 'cache' | 'maxReplicaLagMs'> {
  const problems: string[] = [];
  const flag = (name: string): boolean | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    if (v === '1' || v === 'true') return true;
    if (v === '0' || v === 'false') return false;
    problems.push(`${name} must be 1 or 0, got ${JSON.stringify(v)}`);
    return undefined;
  };
  const int = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) problems.push(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  const isPgUrl = (u: string) => /^postgres(ql)?:\/\//.test(u);
  let shards: ShardSpec[] | undefined;
  if (env.CHORUS_PG_SHARDS) {
    shards = env.CHORUS_PG_SHARDS.split(';').map((s) => s.trim()).filter(Boolean).map((s) => {
      const eq = s.indexOf('=');
      const id = eq > 0 ? s.slice(0, eq) : '';
      const urls = s.slice(eq + 1).split('|').map((u) => u.trim()).filter(Boolean);
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) problems.push(`CHORUS_PG_SHARDS: shard id ${JSON.stringify(id)} must be 1-32 of [A-Za-z0-9_-]`);
      if (!urls.length || !urls.every(isPgUrl)) problems.push(`CHORUS_PG_SHARDS: shard ${id} needs postgres:// URLs`);
      return { id, primaryUrl: urls[0] ?? '', replicaUrls: urls.slice(1) };
    });
    if (new Set(shards.map((s) => s.id)).size !== shards.length) problems.push('CHORUS_PG_SHARDS: shard ids must be unique');
  } else if (env.CHORUS_PG_URL) {
    const replicaUrls = (env.CHORUS_PG_REPLICA_URLS ?? '').split(',').map((u) => u.trim()).filter(Boolean);
    if (![env.CHORUS_PG_URL, ...replicaUrls].every(isPgUrl)) problems.push('CHORUS_PG_URL / CHORUS_PG_REPLICA_URLS must be postgres:// URLs');
    shards = [{ id: 'main', primaryUrl: env.CHORUS_PG_URL, replicaUrls }];
  }
  const redisUrl = env.CHORUS_REDIS_URL || undefined;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) problems.push('CHORUS_REDIS_URL must be a redis:// URL');
  const runProjections = env.CHORUS_QUERY_PROJECTIONS === 'lease' ? 'lease' as const : flag('CHORUS_QUERY_PROJECTIONS');
  const adaptiveTtl = flag('CHORUS_CACHE_ADAPTIVE_TTL');
  const l1Max = int('CHORUS_CACHE_L1_MAX');
  const maxReplicaLagMs = int('CHORUS_PG_MAX_REPLICA_LAG_MS');
  if (problems.length) throw new RangeError(`query side configuration:\n  - ${problems.join('\n  - ')}`);
  return {
    ...(shards ? { shards } : {}),
    ...(redisUrl ? { redisUrl } : {}),
    ...(runProjections !== undefined ? { runProjections } : {}),
    cache: { ...(adaptiveTtl !== undefined ? { adaptiveTtl } : {}), ...(l1Max !== undefined ? { l1Max } : {}) },
    ...(maxReplicaLagMs !== undefined ? { maxReplicaLagMs } : {}),
  };
}
