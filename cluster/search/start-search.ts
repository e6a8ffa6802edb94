/**
 * `startSearch(options)`: builds message search for the composition root
 * (docs/search.md "Wiring"):
 *
 * - Elasticsearch when `esUrl` (CHORUS_ES_URL) or an `es` client is given;
 * - else PostgreSQL full-text search on the query side's databases (PGlite
 *   in the embedded profile, the pg shards in the cluster profile).
 *
 * It starts the 'search' projection (a ProjectionRunner over
 * `channel.` streams with its own positions) here, on the node holding the
 * KV lease `chorus-query-lease/search` (cluster with KV), or nowhere
 * (`runProjections: false`); with Elasticsearch, the node running the
 * projection also runs the index maintenance every `maintenanceMs`.
 * Returns the `search` to hand to `chatActorTypes({ ..., search })`, wrapped
 * to time every query (`chorus_search_query_seconds{backend,order}`). The
 * indexing lag is the projection's `chorus_projection_lag_seconds{projection="search"}`.
 */
import { closeSteps } from '../close-steps.ts';
import { Client } from '@elastic/elasticsearch';
import type { Search, SearchIndexWriter } from '../../actors/search.ts';
import { ElasticsearchSearch, type ElasticsearchSearchOptions } from '../../adapters/elasticsearch/index.ts';
import { PG_SEARCH_PROJECTION, PG_SEARCH_TABLES, PostgresSearch, singleRouting, type QueryRouting, type ShardProjection } from '../../adapters/postgres/query.ts';
import type { KvStore } from '../../runtime/kv/kv.ts';
import type { EventLog } from '../../runtime/log/event-log.ts';
import { noopMetrics, silentLogger, type Logger, type Metrics } from '../../runtime/metrics.ts';
import { placeProjection } from '../query/projection-lease.ts';
import { ProjectionRunner } from '../query/projection-runner.ts';
import { SEARCH_PROJECTION, SearchProjectionSink } from './search-projection.ts';

/** Options of startSearch. */
export interface SearchSideOptions {
  readonly profile: 'embedded' | 'cluster';
  /** The node's event log (the projection tails `channel.`). */
  readonly log: EventLog;
  /** PostgreSQL search: the query side's routing (its databases and shards). Required without Elasticsearch. */
  readonly routing?: QueryRouting;
  /** Elasticsearch URL (CHORUS_ES_URL); a client is created and closed here. */
  readonly esUrl?: string;
  /** Or a client (tests: the mock connection); the caller closes it. */
  readonly es?: Client;
  /** More Elasticsearch settings (index strategy, bulk). */
  readonly esOptions?: Omit<ElasticsearchSearchOptions, 'client' | 'metrics' | 'logger'>;
  readonly kv?: KvStore;
  readonly nodeId?: string;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /** true (here), false (not here), 'lease' (one node, needs kv). Default: 'lease' in the cluster profile with kv, else true. */
  readonly runProjections?: boolean | 'lease';
  /** See ProjectionRunnerOptions.densePositions. Default: true in the embedded profile. */
  readonly densePositions?: boolean;
  /**
   * Longest a message waits for others to share its index write
   * (ProjectionRunnerOptions.maxDelayMs): search is eventually consistent
   * (Elasticsearch itself makes writes visible on a 1 s refresh), and every
   * write costs a transaction or a bulk request whatever its size. Default
   * 250 in the embedded profile, 100 in the cluster profile.
   */
  readonly projectionDelayMs?: number;
  /** Elasticsearch maintenance period on the projecting node (promote large workspaces, force-merge). Default 1 h; 0: never. */
  readonly maintenanceMs?: number;
}

/** What startSearch returns. */
export interface SearchSide {
  /** Hand this to chatActorTypes({ ..., search }). */
  readonly search: Search;
  readonly backend: 'postgres' | 'elasticsearch';
  /** The index writer (PostgresSearch or ElasticsearchSearch). */
  readonly index: SearchIndexWriter & Search;
  /** The Elasticsearch implementation, for promotion and maintenance tools. */
  readonly es: ElasticsearchSearch | undefined;
  /** The projection runner while this node runs it. */
  readonly projection: ProjectionRunner | undefined;
  /**
   * PostgreSQL backend: the index as the shard move tool carries it, with this
   * node's writer barrier (moveWorkspace's `projections`, next to the query
   * side's `shardProjection`); undefined with Elasticsearch (not in the shards).
   */
  readonly shardProjection: ShardProjection | undefined;
  close(): Promise<void>;
}

/** The streams the search projection tails. */
const SEARCH_PREFIX = 'channel.';

/**
 * The PostgreSQL search index (`chat_search` and the 'search' positions) as
 * the shard move tool carries it: moveWorkspace copies its rows with the
 * query tables and catches it up from the log with this fold.
 */
export const PG_SEARCH_SHARD_PROJECTION: ShardProjection = {
  name: PG_SEARCH_PROJECTION,
  tables: PG_SEARCH_TABLES,
  // the streams the search projection tails (startSearch's runner): channel logs only
  apply: (client, entries) => new SearchProjectionSink(new PostgresSearch(singleRouting(client), { migrate: false }))
    .apply(entries.filter((e) => e.stream.startsWith(SEARCH_PREFIX))),
};

/** Times every search through the Metrics port. */
export function meteredSearch(inner: Search, metrics: Metrics, backend: string): Search {
  const h = metrics.histogram('chorus_search_query_seconds', 'Time of one message search', ['backend', 'order'], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
  const errors = metrics.counter('chorus_search_query_errors_total', 'Message searches that failed', ['backend']);
  return {
    async search(req) {
      const t = performance.now();
      try {
        return await inner.search(req);
      } catch (err) {
        errors.inc({ backend });
        throw err;
      } finally {
        h.observe((performance.now() - t) / 1000, { backend, order: req.order });
      }
    },
  };
}

/** Builds search and starts its projection. */
export async function startSearch(o: SearchSideOptions): Promise<SearchSide> {
  const metrics = o.metrics ?? noopMetrics;
  const logger = (o.logger ?? silentLogger).child({ component: 'search' });
  const closers = closeSteps(logger, 'search');
  const close = closers.close;
  try {
    let index: SearchIndexWriter & Search;
    let es: ElasticsearchSearch | undefined;
    let shardProjection: ShardProjection | undefined;
    if (o.es || o.esUrl) {
      let client = o.es;
      if (!client) {
        const own = new Client({ node: o.esUrl!, maxRetries: 3, requestTimeout: 30_000 });
        closers.push(() => own.close());
        client = own;
      }
      index = es = new ElasticsearchSearch({ ...o.esOptions, client, metrics, logger });
    } else {
      if (!o.routing) throw new RangeError('startSearch: PostgreSQL search needs the query side (routing); set CHORUS_ES_URL or start the query side');
      const pgIndex = new PostgresSearch(o.routing);
      index = pgIndex;
      shardProjection = { ...PG_SEARCH_SHARD_PROJECTION, barrier: () => pgIndex.barrier() };
    }
    await index.ready();
    const backend = es ? 'elasticsearch' as const : 'postgres' as const;
    const sink = new SearchProjectionSink(index);
    let projection: ProjectionRunner | undefined;
    let maintenance: NodeJS.Timeout | undefined;
    const maintenanceMs = o.maintenanceMs ?? 3_600_000;
    const startProjection = async () => {
      if (projection) return;
      const runner = new ProjectionRunner(o.log, sink, {
        name: SEARCH_PROJECTION, prefixes: [SEARCH_PREFIX], metrics, logger, densePositions: o.densePositions ?? o.profile === 'embedded',
        maxDelayMs: o.projectionDelayMs ?? (o.profile === 'embedded' ? 250 : 100),
      });
      await runner.start();
      projection = runner;
      if (es && maintenanceMs > 0) {
        const tick = () => {
          es!.indices.maintain()
            .then((r) => { if (r.promoted.length || r.merged.length) logger.info(r, 'search index maintenance'); })
            .catch((err) => logger.warn({ err: (err as Error).message }, 'search index maintenance failed'))
            .finally(() => { if (projection) maintenance = setTimeout(tick, maintenanceMs).unref(); });
        };
        maintenance = setTimeout(tick, maintenanceMs).unref();
      }
    };
    const stopProjection = async () => {
      if (maintenance) clearTimeout(maintenance);
      const runner = projection;
      projection = undefined;
      await runner?.stop();
    };
    const mode = o.runProjections ?? (o.profile === 'cluster' && o.kv ? 'lease' : true);
    closers.push(await placeProjection({ mode, kv: o.kv, key: 'search', nodeId: o.nodeId ?? `node-${process.pid}`, logger, start: startProjection, stop: stopProjection, what: 'startSearch' }));
    logger.info({ backend, projections: mode }, 'search started');
    return {
      search: meteredSearch(index, metrics, backend), backend, index, es, shardProjection, close,
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
 * Search settings from CHORUS_* variables: CHORUS_ES_URL (Elasticsearch;
 * none: PostgreSQL full-text search), CHORUS_ES_DEDICATED_THRESHOLD (messages
 * that earn a workspace its own index), CHORUS_ES_SHARED_INDICES,
 * CHORUS_SEARCH_PROJECTIONS (1/0/lease). Throws a RangeError listing every problem.
 */
export function searchEnv(env: Record<string, string | undefined>): Pick<SearchSideOptions, 'esUrl' | 'esOptions' | 'runProjections'> {
  const problems: string[] = [];
  const int = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) problems.push(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  const esUrl = env.CHORUS_ES_URL || undefined;
  if (esUrl && !/^https?:\/\//.test(esUrl)) problems.push('CHORUS_ES_URL must be an http(s):// URL');
  const dedicatedThreshold = int('CHORUS_ES_DEDICATED_THRESHOLD');
  const sharedIndices = int('CHORUS_ES_SHARED_INDICES');
  const p = env.CHORUS_SEARCH_PROJECTIONS;
  let runProjections: boolean | 'lease' | undefined;
  if (p === 'lease') runProjections = 'lease';
  else if (p === '1' || p === 'true') runProjections = true;
  else if (p === '0' || p === 'false') runProjections = false;
  else if (p) problems.push(`CHORUS_SEARCH_PROJECTIONS must be 1, 0 or lease, got ${JSON.stringify(p)}`);
  if (problems.length) throw new RangeError(`search configuration:\n  - ${problems.join('\n  - ')}`);
  return {
    ...(esUrl ? { esUrl } : {}),
    esOptions: { ...(dedicatedThreshold ? { dedicatedThreshold } : {}), ...(sharedIndices ? { sharedIndices } : {}) },
    ...(runProjections !== undefined ? { runProjections } : {}),
  };
}
