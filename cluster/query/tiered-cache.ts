/**
 * TieredCache: the seed's multi-level cache for the query side.
 *
 * - L1: an in-process LRU (lru-cache), per-entry TTL; L2: a shared
 *   CacheStore (Redis) when one is given.
 * - Per-type strategies (the seed's table, in seconds): user_profile 3600,
 *   channel_members 1800, recent_messages 300, file_metadata 7200; plus the
 *   types this code adds with the same reasoning: message_pages 300 (older
 *   history pages and threads), workspace_members 1800, read_cursors 300.
 * - A lookup tries L1, then L2 (and copies an L2 hit into L1), then loads
 *   from the store and fills both. Concurrent misses of one key share one
 *   load (single flight).
 * - Every value carries the log position it reflects (`atPos`). A caller
 *   that needs at least position `minPos` (read-your-writes) treats an older
 *   entry as a miss.
 * - Invalidation: `invalidate(stream -> pos)` (called after each projection
 *   write) bumps the tag's generation in L1, so entries filed under it stop
 *   matching, deletes the tag's keys in L2, and publishes the invalidation so
 *   every other node does the same to its L1. A load that raced with an
 *   invalidation and read older data is not cached (the tag remembers the
 *   invalidated position).
 * - Adaptive TTL (the seed's optimizeCacheUsage, off unless `adaptiveTtl`):
 *   every `adaptiveEveryMs`, a type with at least 100 lookups in the window
 *   and a hit rate below 0.7 gets its TTL x 1.5, above 0.95 x 0.8, kept within
 *   1/4 .. 4 x its base TTL.
 * - L2 down (Redis unreachable): lookups skip L2 and go to L1 and the store;
 *   `chorus_cache_l2_up` is 0 and a warning is logged once. When L2 is back,
 *   L1 is cleared (invalidations published meanwhile were missed) and an info
 *   line is logged.
 *
 * Metrics: `chorus_cache_requests_total{type,result}` (hit_l1, hit_l2, miss,
 * shared), `cache_hit_rate{type}` (hits / lookups since start, the seed's
 * gauge name), `chorus_cache_ttl_seconds{type}`, `chorus_cache_l2_up`,
 * `chorus_cache_l2_errors_total{op}`, `chorus_cache_invalidations_total{source}`.
 */
import { LRUCache } from 'lru-cache';
import { codec as defaultCodec, type Codec } from '../../runtime/codec.ts';
import { noopMetrics, silentLogger, type Logger, type Metrics } from '../../runtime/metrics.ts';
import type { Disposable } from '../../runtime/transport/transport.ts';
import type { CacheStore } from './cache-store.ts';

/** A cached value and the log position it reflects. */
export interface Versioned<T> {
  readonly value: T;
  readonly atPos: number;
}

/** The seed's per-type TTLs (ms), plus the query side's own types. */
export const CACHE_TYPES: Readonly<Record<string, number>> = Object.freeze({
  user_profile: 3600_000,
  channel_members: 1800_000,
  recent_messages: 300_000,
  file_metadata: 7200_000,
  message_pages: 300_000,
  workspace_members: 1800_000,
  read_cursors: 300_000,
});

/** Options of TieredCache; every field has a default. */
export interface TieredCacheOptions {
  /** The shared level; none: L1 only (embedded profile). */
  readonly l2?: CacheStore | undefined;
  /** Most L1 entries. Default 10000 (the seed's). */
  readonly l1Max?: number;
  /** TTL per type in ms; merged over CACHE_TYPES. */
  readonly types?: Readonly<Record<string, number>>;
  /** The seed's adaptive TTL rule. Default false. */
  readonly adaptiveTtl?: boolean;
  /** Window of the adaptive rule. Default 60000 ms. */
  readonly adaptiveEveryMs?: number;
  /** Bound on L2 commands: a slower answer counts as a failure and L1/the store answer. Default 100 ms. */
  readonly l2TimeoutMs?: number;
  /** Identifies this node in published invalidations (its own are not applied twice). Default random. */
  readonly nodeId?: string;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  readonly codec?: Codec;
}

interface Entry {
  readonly value: unknown;
  readonly atPos: number;
  readonly tags: readonly string[];
  readonly gens: readonly number[];
}

interface TagState {
  gen: number;
  /** Highest position invalidated: a value older than this is stale. */
  floor: number;
}

interface TypeStats {
  hits: number;
  total: number;
  windowHits: number;
  windowTotal: number;
  ttlMs: number;
  readonly baseTtlMs: number;
}

/** Invalidation on the wire: origin node and [tag, pos] pairs. */
interface Invalidation {
  o: string;
  t: Array<[string, number]>;
}

/** L1 + L2 with single flight, tag invalidation across nodes and per-type hit rates. */
export class TieredCache {
  private readonly l1: LRUCache<string, Entry>;
  private readonly tagStates: LRUCache<string, TagState>;
  private genCounter = 0;
  private readonly inflight = new Map<string, Promise<Versioned<unknown> | null>>();
  private readonly stats = new Map<string, TypeStats>();
  private readonly l2: CacheStore | undefined;
  private readonly o;
  private readonly codec: Codec;
  private readonly nodeId: string;
  private sub: Disposable | undefined;
  private adaptTimer: NodeJS.Timeout | undefined;
  private l2Up: boolean;
  private readonly m;

  constructor(options: TieredCacheOptions = {}) {
    this.o = {
      l1Max: options.l1Max ?? 10_000,
      types: { ...CACHE_TYPES, ...options.types },
      adaptiveTtl: options.adaptiveTtl ?? false,
      adaptiveEveryMs: options.adaptiveEveryMs ?? 60_000,
      l2TimeoutMs: options.l2TimeoutMs ?? 100,
      metrics: options.metrics ?? noopMetrics,
      logger: options.logger ?? silentLogger,
    };
    const problems: string[] = [];
    for (const k of ['l1Max', 'adaptiveEveryMs', 'l2TimeoutMs'] as const) if (!Number.isSafeInteger(this.o[k]) || this.o[k] < 1) problems.push(`${k} must be a positive integer`);
    for (const [t, ttl] of Object.entries(this.o.types)) if (!Number.isSafeInteger(ttl) || ttl < 1) problems.push(`types.${t} must be a positive integer (ms)`);
    if (problems.length) throw new RangeError(`TieredCache options: ${problems.join('; ')}`);
    this.l2 = options.l2;
    this.codec = options.codec ?? defaultCodec;
    this.nodeId = options.nodeId ?? Math.random().toString(36).slice(2, 10);
    this.l1 = new LRUCache<string, Entry>({ max: this.o.l1Max, ttl: 3600_000, ttlAutopurge: false });
    this.tagStates = new LRUCache<string, TagState>({ max: Math.max(100_000, this.o.l1Max * 4) });
    for (const [t, ttl] of Object.entries(this.o.types)) this.stats.set(t, { hits: 0, total: 0, windowHits: 0, windowTotal: 0, ttlMs: ttl, baseTtlMs: ttl });
    const mt = this.o.metrics;
    this.m = {
      requests: mt.counter('chorus_cache_requests_total', 'Cache lookups by type and result (hit_l1, hit_l2, miss, shared)', ['type', 'result']),
      hitRate: mt.gauge('cache_hit_rate', 'Cache hit rate per type (L1 or L2 hits / lookups, since start)', ['type']),
      ttl: mt.gauge('chorus_cache_ttl_seconds', 'Current TTL per cache type (changes with the adaptive rule)', ['type']),
      l2Up: mt.gauge('chorus_cache_l2_up', '1 while the shared cache level (Redis) is usable'),
      l2Errors: mt.counter('chorus_cache_l2_errors_total', 'Failed or timed-out L2 commands', ['op']),
      invalidations: mt.counter('chorus_cache_invalidations_total', 'Tag invalidations applied to L1, by source', ['source']),
    };
    for (const [t, s] of this.stats) this.m.ttl.set(s.ttlMs / 1000, { type: t });
    this.l2Up = this.l2?.up ?? false;
    this.m.l2Up.set(this.l2Up ? 1 : 0);
    this.l2?.onHealth((up) => this.l2Health(up));
  }

  /** Subscribes to other nodes' invalidations and starts the adaptive rule (when on). */
  async start(): Promise<this> {
    if (this.l2) {
      this.sub = await this.l2.subscribe((bytes) => {
        let msg: Invalidation;
        try {
          msg = this.codec.decode(bytes) as Invalidation;
        } catch {
          return;
        }
        if (!msg || msg.o === this.nodeId || !Array.isArray(msg.t)) return;
        this.applyLocal(msg.t, 'remote');
      });
    }
    if (this.o.adaptiveTtl) {
      const tick = () => {
        this.adapt();
        this.adaptTimer = setTimeout(tick, this.o.adaptiveEveryMs).unref();
      };
      this.adaptTimer = setTimeout(tick, this.o.adaptiveEveryMs).unref();
    }
    return this;
  }

  private l2Health(up: boolean): void {
    if (up === this.l2Up) return;
    this.l2Up = up;
    this.m.l2Up.set(up ? 1 : 0);
    if (up) {
      // invalidations published while we could not hear them are lost: start L1 over
      this.l1.clear();
      this.o.logger.info({}, 'cache L2 (shared level) is back; L1 cleared');
    } else {
      this.o.logger.warn({}, 'cache L2 (shared level) is down; serving from L1 and the store');
    }
  }

  private usable(): CacheStore | undefined {
    return this.l2 && this.l2Up && this.l2.up ? this.l2 : undefined;
  }

  private async l2Call<T>(op: string, fn: (l2: CacheStore) => Promise<T>): Promise<T | undefined> {
    const l2 = this.usable();
    if (!l2) return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        fn(l2),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`L2 ${op} took over ${this.o.l2TimeoutMs} ms`)), this.o.l2TimeoutMs);
        }),
      ]);
    } catch {
      this.m.l2Errors.inc({ op });
      return undefined;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  private tag(t: string): TagState {
    let s = this.tagStates.get(t);
    if (!s) this.tagStates.set(t, (s = { gen: this.genCounter, floor: 0 }));
    return s;
  }

  private valid(e: { atPos: number; tags: readonly string[]; gens?: readonly number[] }, minPos: number): boolean {
    if (e.atPos < minPos) return false;
    for (let i = 0; i < e.tags.length; i++) {
      const s = this.tag(e.tags[i]!);
      if (e.atPos < s.floor) return false;
      if (e.gens && e.gens[i] !== s.gen) return false;
    }
    return true;
  }

  private stat(type: string): TypeStats {
    let s = this.stats.get(type);
    if (!s) throw new RangeError(`unknown cache type ${JSON.stringify(type)} (known: ${[...this.stats.keys()].join(', ')})`);
    return s;
  }

  private count(type: string, result: 'hit_l1' | 'hit_l2' | 'miss' | 'shared'): void {
    const s = this.stat(type);
    const hit = result === 'hit_l1' || result === 'hit_l2';
    s.total++;
    s.windowTotal++;
    if (hit) {
      s.hits++;
      s.windowHits++;
    }
    this.m.requests.inc({ type, result });
    this.m.hitRate.set(s.hits / s.total, { type });
  }

  /** The TTL of a type now (ms). */
  ttlOf(type: string): number {
    return this.stat(type).ttlMs;
  }

  /** Hit rate and lookups per type since start. */
  hitRates(): Record<string, { hitRate: number; lookups: number; ttlMs: number }> {
    const out: Record<string, { hitRate: number; lookups: number; ttlMs: number }> = {};
    for (const [t, s] of this.stats) out[t] = { hitRate: s.total ? s.hits / s.total : 0, lookups: s.total, ttlMs: s.ttlMs };
    return out;
  }

  /**
   * The value of `key` reflecting at least `minPos`: from L1, L2 or `load`
   * (which answers with the position it read at, or null for "nothing to
   * cache"). `tags` are the streams the value depends on.
   */
  async get<T>(type: string, key: string, minPos: number, tags: readonly string[], load: () => Promise<Versioned<T> | null>): Promise<Versioned<T> | null> {
    const fullKey = `${type}:${key}`;
    const s = this.stat(type);
    const e = this.l1.get(fullKey);
    if (e && this.valid(e, minPos)) {
      this.count(type, 'hit_l1');
      return { value: e.value as T, atPos: e.atPos };
    }
    const running = this.inflight.get(fullKey);
    if (running) {
      const r = (await running) as Versioned<T> | null;
      if (r && r.atPos >= minPos) {
        this.count(type, 'shared');
        return r;
      }
    }
    const p = this.fill(type, fullKey, minPos, tags, s, load);
    this.inflight.set(fullKey, p);
    try {
      return (await p) as Versioned<T> | null;
    } finally {
      if (this.inflight.get(fullKey) === p) this.inflight.delete(fullKey);
    }
  }

  private async fill<T>(type: string, fullKey: string, minPos: number, tags: readonly string[], s: TypeStats, load: () => Promise<Versioned<T> | null>): Promise<Versioned<T> | null> {
    const gens = tags.map((t) => this.tag(t).gen);
    const bytes = await this.l2Call('get', (l2) => l2.get(fullKey));
    if (bytes) {
      try {
        const [value, atPos] = this.codec.decode(bytes) as [T, number];
        if (this.valid({ atPos, tags }, minPos)) {
          this.l1.set(fullKey, { value, atPos, tags, gens }, { ttl: s.ttlMs });
          this.count(type, 'hit_l2');
          return { value, atPos };
        }
      } catch {
        // a value this code cannot read: load it again
      }
    }
    const r = await load();
    this.count(type, 'miss');
    if (!r) return null;
    // an invalidation that arrived while loading may have made this read stale: then do not cache it
    if (!this.valid({ atPos: r.atPos, tags }, 0)) return r;
    this.l1.set(fullKey, { value: r.value, atPos: r.atPos, tags, gens: tags.map((t) => this.tag(t).gen) }, { ttl: s.ttlMs });
    void this.l2Call('set', (l2) => l2.set(fullKey, this.codec.encode([r.value, r.atPos]), s.ttlMs, tags));
    return r;
  }

  /**
   * After a write: every value filed under these tags (streams) is stale, as
   * is anything older than the given position. Applied to this node's L1 at
   * once; deleted in L2 and published to the other nodes in the background.
   */
  invalidate(moved: ReadonlyMap<string, number>): Promise<void> {
    const pairs: Array<[string, number]> = [...moved];
    if (!pairs.length) return Promise.resolve();
    this.applyLocal(pairs, 'local');
    return (async () => {
      await this.l2Call('invalidate', (l2) => l2.invalidateTags(pairs.map(([t]) => t)));
      await this.l2Call('publish', (l2) => l2.publish(this.codec.encode({ o: this.nodeId, t: pairs } satisfies Invalidation)));
    })();
  }

  private applyLocal(pairs: Array<[string, number]>, source: 'local' | 'remote'): void {
    for (const [t, pos] of pairs) {
      const s = this.tag(t);
      s.gen = ++this.genCounter;
      s.floor = Math.max(s.floor, typeof pos === 'number' ? pos : 0);
    }
    this.m.invalidations.inc({ source }, pairs.length);
  }

  /** The seed's rule: TTL x1.5 under a 0.7 hit rate, x0.8 over 0.95 (within 1/4..4 x the base); only with enough lookups. */
  adapt(): void {
    for (const [t, s] of this.stats) {
      if (s.windowTotal >= 100) {
        const rate = s.windowHits / s.windowTotal;
        const before = s.ttlMs;
        if (rate < 0.7) s.ttlMs = Math.min(s.baseTtlMs * 4, Math.round(s.ttlMs * 1.5));
        else if (rate > 0.95) s.ttlMs = Math.max(Math.round(s.baseTtlMs / 4), Math.round(s.ttlMs * 0.8));
        if (s.ttlMs !== before) {
          this.m.ttl.set(s.ttlMs / 1000, { type: t });
          this.o.logger.info({ type: t, hitRate: rate, ttlMs: s.ttlMs, was: before }, 'adaptive TTL changed');
        }
      }
      s.windowHits = 0;
      s.windowTotal = 0;
    }
  }

  /** Drops everything in L1 (tests, benches). */
  clearLocal(): void {
    this.l1.clear();
  }

  async close(): Promise<void> {
    if (this.adaptTimer) clearTimeout(this.adaptTimer);
    await this.sub?.dispose();
  }
}
