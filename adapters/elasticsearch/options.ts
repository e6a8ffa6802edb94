/**
 * Options of the Elasticsearch search adapter: defaults, validation that
 * lists every problem, a frozen result. Index names are derived here too.
 */
import type { Client } from '@elastic/elasticsearch';
import { noopMetrics, silentLogger, type Logger, type Metrics } from '../../runtime/metrics.ts';

/** Options of ElasticsearchSearch; every field but `client` has a default. */
export interface ElasticsearchSearchOptions {
  /** A connected @elastic/elasticsearch client (the caller owns it). */
  readonly client: Client;
  /** Prefix of every index and alias. Default 'chorus-messages'. */
  readonly prefix?: string;
  /** Number of shared indices small workspaces are spread over (by a hash of the workspace id). Default 4. */
  readonly sharedIndices?: number;
  /** Primary shards of a shared index. Default 5. */
  readonly sharedShards?: number;
  /** Replicas of a shared index. Default 1. */
  readonly sharedReplicas?: number;
  /** Refresh interval of a shared index. Default '1s'. */
  readonly sharedRefresh?: string;
  /** Primary shards of a dedicated index (the seed: 5). */
  readonly dedicatedShards?: number;
  /** Replicas of a dedicated index (the seed: 1). */
  readonly dedicatedReplicas?: number;
  /** Refresh interval of a dedicated index (the seed: '5s'). */
  readonly dedicatedRefresh?: string;
  /** A workspace with at least this many messages in a shared index is moved to its own index by `maintain()`. Default 250,000. */
  readonly dedicatedThreshold?: number;
  /** `maintain()` force-merges indices with more documents than this to one segment (the seed: 1,000,000). */
  readonly forceMergeDocs?: number;
  /** Most operations per bulk request. Default 1000. */
  readonly bulkMaxOps?: number;
  /** Most bytes per bulk request body. Default 5 MiB. */
  readonly bulkMaxBytes?: number;
  /** Bulk requests in flight at once (back-pressure: more wait). Default 2. */
  readonly bulkConcurrency?: number;
  /** Retries of a rejected bulk request or item (429, 502-504, connection errors) before the write fails. Default 6. */
  readonly bulkRetries?: number;
  /** First retry back-off, doubled each time (capped at 5 s), with jitter. Default 100 ms. */
  readonly bulkBackoffMs?: number;
  /** The index holding the projection's positions. Default `${prefix}-positions`. */
  readonly positionsIndex?: string;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

/** Resolved options. */
export type ResolvedEsOptions = Readonly<Required<Omit<ElasticsearchSearchOptions, 'client'>>> & { readonly client: Client };

/** Applies defaults and validates; throws a RangeError listing every problem. */
export function resolveEsOptions(o: ElasticsearchSearchOptions): ResolvedEsOptions {
  const prefix = o.prefix ?? 'chorus-messages';
  const r = {
    client: o.client,
    prefix,
    sharedIndices: o.sharedIndices ?? 4,
    sharedShards: o.sharedShards ?? 5,
    sharedReplicas: o.sharedReplicas ?? 1,
    sharedRefresh: o.sharedRefresh ?? '1s',
    dedicatedShards: o.dedicatedShards ?? 5,
    dedicatedReplicas: o.dedicatedReplicas ?? 1,
    dedicatedRefresh: o.dedicatedRefresh ?? '5s',
    dedicatedThreshold: o.dedicatedThreshold ?? 250_000,
    forceMergeDocs: o.forceMergeDocs ?? 1_000_000,
    bulkMaxOps: o.bulkMaxOps ?? 1000,
    bulkMaxBytes: o.bulkMaxBytes ?? 5 * 1024 * 1024,
    bulkConcurrency: o.bulkConcurrency ?? 2,
    bulkRetries: o.bulkRetries ?? 6,
    bulkBackoffMs: o.bulkBackoffMs ?? 100,
    positionsIndex: o.positionsIndex ?? `${prefix}-positions`,
    metrics: o.metrics ?? noopMetrics,
    logger: o.logger ?? silentLogger,
  };
  const problems: string[] = [];
  if (!r.client) problems.push('client is required');
  if (!/^[a-z0-9][a-z0-9._-]{0,100}$/.test(r.prefix)) problems.push(`prefix must be a lower-case index name start, got ${JSON.stringify(r.prefix)}`);
  for (const k of ['sharedIndices', 'sharedShards', 'dedicatedShards', 'dedicatedThreshold', 'forceMergeDocs', 'bulkMaxOps', 'bulkMaxBytes', 'bulkConcurrency'] as const) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 1) problems.push(`${k} must be a positive integer, got ${String(r[k])}`);
  }
  for (const k of ['sharedReplicas', 'dedicatedReplicas', 'bulkRetries', 'bulkBackoffMs'] as const) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 0) problems.push(`${k} must be an integer >= 0, got ${String(r[k])}`);
  }
  for (const k of ['sharedRefresh', 'dedicatedRefresh'] as const) {
    if (!/^(-1|\d+(ms|s|m))$/.test(r[k])) problems.push(`${k} must be an ES time value like '5s', got ${JSON.stringify(r[k])}`);
  }
  if (problems.length) throw new RangeError(`Elasticsearch search options:\n  - ${problems.join('\n  - ')}`);
  return Object.freeze(r);
}

/** FNV-1a 32-bit of a string (stable across processes). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A workspace id as part of an index name: index names are lower case, so ids with capitals get a hash suffix. */
function safeWs(ws: string): string {
  const lower = ws.toLowerCase();
  return lower === ws ? ws : `${lower}.${fnv1a(ws).toString(16)}`;
}

/** The index and alias names of the workspace strategy. */
export class IndexNames {
  constructor(private readonly o: Pick<ResolvedEsOptions, 'prefix' | 'sharedIndices'>) {}
  /** The shared index a small workspace lives in. */
  shared(ws: string): string {
    return `${this.o.prefix}-shared-${fnv1a(ws) % this.o.sharedIndices}`;
  }
  /** Every shared index. */
  allShared(): string[] {
    return Array.from({ length: this.o.sharedIndices }, (_, i) => `${this.o.prefix}-shared-${i}`);
  }
  /** A large workspace's own index. */
  dedicated(ws: string): string {
    return `${this.o.prefix}-dedicated-${safeWs(ws)}`;
  }
  /** The alias every read and write of `ws` goes through (shared: with a filter and routing; dedicated: plain). */
  alias(ws: string): string {
    return `${this.o.prefix}-ws-${safeWs(ws)}`;
  }
  /** Pattern of every message index. */
  pattern(): string {
    return `${this.o.prefix}-shared-*,${this.o.prefix}-dedicated-*`;
  }
}
