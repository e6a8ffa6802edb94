/**
 * The second cache level (L2), shared by the nodes: Redis in the cluster
 * profile (adapters/redis RedisCacheStore), `MemoryCacheStore` in tests and
 * wherever nodes share a process. The same conformance suite runs on both
 * (test/conformance/cache.ts).
 *
 * Values are opaque bytes with a TTL. Keys can carry tags (here: the log
 * stream a value was read from); `invalidateTags` deletes every key of a tag
 * on the shared level, and `publish`/`subscribe` carry invalidations to every
 * node's first level.
 */
import type { Disposable } from '../../runtime/transport/transport.ts';

/** The shared cache level. Methods reject when the backend is unreachable; `up` says whether it is usable now. */
export interface CacheStore {
  /** False while the backend is unreachable (callers skip it). */
  readonly up: boolean;
  get(key: string): Promise<Uint8Array | null>;
  /** Stores `value` for `ttlMs` and files `key` under each tag. */
  set(key: string, value: Uint8Array, ttlMs: number, tags: readonly string[]): Promise<void>;
  /** Deletes every key filed under these tags. */
  invalidateTags(tags: readonly string[]): Promise<void>;
  /** Sends an invalidation to every subscriber (all nodes, including this one). */
  publish(message: Uint8Array): Promise<void>;
  /** Receives published invalidations. */
  subscribe(handler: (message: Uint8Array) => void): Promise<Disposable>;
  /** Told when `up` changes. */
  onHealth(handler: (up: boolean) => void): void;
  close(): Promise<void>;
}

/** What several MemoryCacheStores share: the entries and the subscribers ("the Redis server"). */
export class MemoryCacheHub {
  readonly entries = new Map<string, { value: Uint8Array; expires: number }>();
  readonly tags = new Map<string, Set<string>>();
  readonly subscribers = new Set<(m: Uint8Array) => void>();
  /** Simulates an outage: every store on this hub goes down. */
  down = false;
  readonly stores = new Set<MemoryCacheStore>();
  setDown(down: boolean): void {
    this.down = down;
    for (const s of this.stores) s.healthChanged(!down);
  }
}

/** The in-memory twin of RedisCacheStore; stores on one hub behave like nodes sharing one Redis. */
export class MemoryCacheStore implements CacheStore {
  private readonly handlers: Array<(up: boolean) => void> = [];
  private lastUp = true;
  constructor(readonly hub = new MemoryCacheHub(), private readonly now: () => number = Date.now) {
    hub.stores.add(this);
  }
  get up(): boolean {
    return !this.hub.down;
  }
  /** @internal */
  healthChanged(up: boolean): void {
    if (up === this.lastUp) return;
    this.lastUp = up;
    for (const h of this.handlers) h(up);
  }
  private guard(): void {
    if (this.hub.down) throw new Error('memory cache: down');
  }
  async get(key: string): Promise<Uint8Array | null> {
    this.guard();
    const e = this.hub.entries.get(key);
    if (!e) return null;
    if (e.expires <= this.now()) {
      this.hub.entries.delete(key);
      return null;
    }
    return e.value.slice();
  }
  async set(key: string, value: Uint8Array, ttlMs: number, tags: readonly string[]): Promise<void> {
    this.guard();
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be positive, got ${ttlMs}`);
    this.hub.entries.set(key, { value: value.slice(), expires: this.now() + ttlMs });
    for (const t of tags) {
      let s = this.hub.tags.get(t);
      if (!s) this.hub.tags.set(t, (s = new Set()));
      s.add(key);
    }
  }
  async invalidateTags(tags: readonly string[]): Promise<void> {
    this.guard();
    for (const t of tags) {
      for (const k of this.hub.tags.get(t) ?? []) this.hub.entries.delete(k);
      this.hub.tags.delete(t);
    }
  }
  async publish(message: Uint8Array): Promise<void> {
    this.guard();
    for (const s of [...this.hub.subscribers]) queueMicrotask(() => s(message.slice()));
  }
  async subscribe(handler: (message: Uint8Array) => void): Promise<Disposable> {
    const h = (m: Uint8Array) => {
      if (!this.hub.down) handler(m);
    };
    this.hub.subscribers.add(h);
    return { dispose: async () => void this.hub.subscribers.delete(h) };
  }
  onHealth(handler: (up: boolean) => void): void {
    this.handlers.push(handler);
  }
  async close(): Promise<void> {
    this.hub.stores.delete(this);
  }
}
