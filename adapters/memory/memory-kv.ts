import { systemClock, type Clock } from '../../runtime/clock.ts';
import { KvConflictError } from '../../runtime/errors.ts';
import type { KvBucket, KvEntry, KvEvent, KvStore } from '../../runtime/kv/kv.ts';
import { subjectMatches, type Disposable } from '../../runtime/transport/transport.ts';
import type { MemoryNetwork } from './memory-network.ts';

interface Stored { value: Uint8Array; revision: number; writtenAt: number }
interface BucketData { name: string; ttlMs: number; rev: number; entries: Map<string, Stored>; watchers: Set<(e: KvEvent) => void> }

/**
 * The shared state of an in-memory KV "server". Several MemoryKv clients (one
 * per node) open buckets on it; TTL follows the clock and, as on NATS 2.9,
 * expiry produces no watch event.
 */
export class MemoryKvServer {
  readonly buckets = new Map<string, BucketData>();
  constructor(readonly clock: Clock = systemClock) {}
}

/** KV port in memory. With a network and client id it obeys partitions: a cut-off client's calls fail and its watch events wait for the heal. */
export class MemoryKv implements KvStore {
  constructor(
    private readonly server = new MemoryKvServer(),
    private readonly link?: { network: MemoryNetwork; clientId: string },
  ) {}
  async bucket(name: string, opts: { ttlMs?: number } = {}): Promise<KvBucket> {
    this.guard();
    let b = this.server.buckets.get(name);
    if (!b) {
      b = { name, ttlMs: opts.ttlMs ?? 0, rev: 0, entries: new Map(), watchers: new Set() };
      this.server.buckets.set(name, b);
    }
    return new MemoryKvBucket(b, this.server.clock, () => this.guard(), this.link);
  }
  async close(): Promise<void> {}
  private guard(): void {
    this.link?.network.guardServer(this.link.clientId, 'KV store');
  }
}

class MemoryKvBucket implements KvBucket {
  readonly name: string;
  constructor(
    private readonly b: BucketData,
    private readonly clock: Clock,
    private readonly guard: () => void,
    private readonly link?: { network: MemoryNetwork; clientId: string },
  ) {
    this.name = b.name;
  }
  private live(key: string): Stored | undefined {
    const s = this.b.entries.get(key);
    if (!s) return undefined;
    if (this.b.ttlMs > 0 && this.clock.now() - s.writtenAt >= this.b.ttlMs) {
      this.b.entries.delete(key);
      return undefined;
    }
    return s;
  }
  private write(key: string, value: Uint8Array): number {
    const revision = ++this.b.rev;
    const v = value.slice();
    this.b.entries.set(key, { value: v, revision, writtenAt: this.clock.now() });
    const ev: KvEvent = { op: 'put', key, value: v, revision };
    for (const w of this.b.watchers) w(ev);
    return revision;
  }
  async get(key: string): Promise<KvEntry | null> {
    this.guard();
    const s = this.live(key);
    return s ? { key, value: s.value.slice(), revision: s.revision } : null;
  }
  async put(key: string, value: Uint8Array): Promise<number> {
    this.guard();
    return this.write(key, value);
  }
  async create(key: string, value: Uint8Array): Promise<number> {
    this.guard();
    if (this.live(key)) throw new KvConflictError(key, 'already exists');
    return this.write(key, value);
  }
  async update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    this.guard();
    const s = this.live(key);
    if (!s || s.revision !== expectedRevision) throw new KvConflictError(key, `expected revision ${expectedRevision}, found ${s?.revision ?? 'none'}`);
    return this.write(key, value);
  }
  async delete(key: string): Promise<void> {
    this.guard();
    if (!this.b.entries.delete(key)) return;
    const ev: KvEvent = { op: 'del', key, value: undefined, revision: ++this.b.rev };
    for (const w of this.b.watchers) w(ev);
  }
  async keys(): Promise<string[]> {
    this.guard();
    return [...this.b.entries.keys()].filter((k) => this.live(k));
  }
  async watch(filter: string, handler: (e: KvEvent) => void): Promise<Disposable> {
    this.guard();
    const match = (k: string) => filter === '>' || subjectMatches(filter, k);
    const pending: KvEvent[] = [];
    const link = this.link;
    const flush = () => {
      while (pending.length && (!link || link.network.canReachServer(link.clientId))) {
        try {
          handler(pending.shift()!);
        } catch {
          // a throwing watcher must not stop later events (NATS logs and continues)
        }
      }
    };
    const w = (e: KvEvent) => {
      if (!match(e.key)) return;
      pending.push(e);
      // deliver asynchronously, like a real watcher, and hold events while partitioned
      queueMicrotask(flush);
    };
    for (const [key, s] of this.b.entries) if (match(key) && this.live(key)) pending.push({ op: 'put', key, value: s.value, revision: s.revision });
    queueMicrotask(flush);
    this.b.watchers.add(w);
    const healHook = link?.network.onHeal(() => queueMicrotask(flush));
    return { dispose: () => { this.b.watchers.delete(w); healHook?.dispose(); } };
  }
}
