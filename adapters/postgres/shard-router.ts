/**
 * Workspace sharding of the query store (the seed's DatabaseSharding, on the
 * runtime's consistent-hash ring instead of `hash % n`): every workspace
 * lives on exactly one shard (a PostgreSQL database, with or without
 * replicas), chosen by `HashRing.owner(ws)` over the shard ids, unless the
 * shard directory holds an override for it (a workspace moved by
 * `moveWorkspace`). Adding a shard moves only the workspaces that land on
 * its new ring points, and each of those needs a move anyway.
 *
 * The directory is shared by every node: `KvShardDirectory` keeps overrides
 * in a KV bucket (JetStream KV in the cluster profile) and watches it, so a
 * switch made by the move tool reaches every node's router.
 */
import { HashRing } from '../../runtime/placement/hash-ring.ts';
import type { KvBucket } from '../../runtime/kv/kv.ts';
import type { Disposable } from '../../runtime/transport/transport.ts';
import { singleSql, type SqlRouter } from './replica-router.ts';
import type { SqlClient } from './sql-client.ts';

/** One database of the query store. */
export interface QueryDb {
  readonly id: string;
  readonly sql: SqlRouter;
}

/** Where each workspace's query data lives. */
export interface QueryRouting {
  /** Every database. */
  dbs(): readonly QueryDb[];
  /** The database of workspace `ws`. */
  dbFor(ws: string): QueryDb;
  /**
   * While workspace `ws` is being switched to another shard, a promise that
   * resolves when the switch is done (projection writes of `ws` wait for it);
   * undefined otherwise.
   */
  hold?(ws: string): Promise<void> | undefined;
}

/**
 * The switch gate of a writer of the shard databases (the projection sinks,
 * the search index): a write of workspaces that are being switched to
 * another shard (`QueryRouting.hold`) waits until the switch is done, and the
 * writes under way are tracked so the move tool can wait for them
 * (`barrier`). A write must pick its database before its first await.
 */
export class ShardWriteGate {
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(private readonly routing: QueryRouting) {}

  /** Waits while any of `wss` is held, then starts `write` and tracks it until it settles. */
  async run<T>(wss: Iterable<string>, write: () => Promise<T>): Promise<T> {
    const list = [...new Set(wss)];
    for (;;) {
      const holds = list.map((ws) => this.routing.hold?.(ws)).filter((h): h is Promise<void> => h !== undefined);
      if (!holds.length) break;
      await Promise.all(holds);
    }
    // no await between the hold check and registering the write: a barrier taken after a hold sees this write, or this write saw the hold
    const p = write();
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Resolves when every write that started before the call has finished (the shard move tool's switch barrier). */
  async barrier(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }
}

/** One database for everything (embedded, or an unsharded cluster). */
export function singleRouting(sql: SqlRouter | SqlClient, id = 'main'): QueryRouting {
  const db: QueryDb = { id, sql: 'dialect' in sql ? singleSql(sql) : sql };
  return { dbs: () => [db], dbFor: () => db };
}

/**
 * Shard overrides shared by the nodes: workspace -> shard id, or
 * `<from>><to>` while a move is switching (reads still go to `from`,
 * projection writes of the workspace wait).
 */
export interface ShardDirectory {
  /** Current overrides. */
  overrides(): Readonly<Record<string, string>>;
  /** Sets (or with `undefined` removes) the override of `ws`; resolves once this process's view includes it. */
  set(ws: string, shard: string | undefined): Promise<void>;
  /** Called after every change of the overrides. */
  onChange(fn: () => void): void;
  close(): Promise<void>;
}

/** Overrides in process memory (one node, tests). */
export class MemoryShardDirectory implements ShardDirectory {
  private map: Record<string, string> = {};
  private readonly listeners: Array<() => void> = [];
  overrides() {
    return this.map;
  }
  async set(ws: string, shard: string | undefined): Promise<void> {
    const next = { ...this.map };
    if (shard === undefined) delete next[ws];
    else next[ws] = shard;
    this.map = next;
    for (const l of this.listeners) l();
  }
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }
  async close(): Promise<void> {}
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Overrides in a KV bucket (`ws.<workspace>` -> shard id), watched. */
export class KvShardDirectory implements ShardDirectory {
  private map: Record<string, string> = {};
  private readonly listeners: Array<() => void> = [];
  private watch: Disposable | undefined;

  private constructor(private readonly bucket: KvBucket) {}

  /** Opens the directory and waits for the bucket's current content. */
  static async open(bucket: KvBucket): Promise<KvShardDirectory> {
    const d = new KvShardDirectory(bucket);
    for (const k of await bucket.keys()) {
      if (!k.startsWith('ws.')) continue;
      const e = await bucket.get(k);
      if (e) d.map[k.slice(3)] = dec.decode(e.value);
    }
    d.watch = await bucket.watch('ws.>', (e) => {
      const ws = e.key.slice(3);
      const next = { ...d.map };
      if (e.op === 'del' || !e.value) delete next[ws];
      else next[ws] = dec.decode(e.value);
      d.map = next;
      for (const l of d.listeners) l();
    });
    return d;
  }
  overrides() {
    return this.map;
  }
  async set(ws: string, shard: string | undefined): Promise<void> {
    if (shard === undefined) await this.bucket.delete(`ws.${ws}`);
    else await this.bucket.put(`ws.${ws}`, enc.encode(shard));
    // the watch brings it back; until then make this process's view right at once
    const next = { ...this.map };
    if (shard === undefined) delete next[ws];
    else next[ws] = shard;
    this.map = next;
    for (const l of this.listeners) l();
  }
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }
  async close(): Promise<void> {
    await this.watch?.dispose();
  }
}

/** Shards by the consistent-hash ring plus the directory's overrides. */
export class ShardRouter implements QueryRouting {
  private ring!: HashRing;
  private readonly home: HashRing;
  private moving = new Set<string>();
  private readonly holds = new Map<string, { promise: Promise<void>; resolve(): void }>();
  private readonly byId: ReadonlyMap<string, QueryDb>;
  private epoch = 1;

  constructor(private readonly shards: readonly (QueryDb & { weight?: number })[], private readonly directory: ShardDirectory = new MemoryShardDirectory()) {
    if (!shards.length) throw new RangeError('ShardRouter needs at least one shard');
    const ids = new Set(shards.map((s) => s.id));
    if (ids.size !== shards.length) throw new RangeError('shard ids must be unique');
    this.byId = new Map(shards.map((s) => [s.id, s]));
    this.ring = this.build();
    this.home = HashRing.fromSnapshot({ epoch: 0, members: this.shards.map((s) => ({ id: s.id, weight: s.weight ?? 1 })), overrides: {} });
    directory.onChange(() => {
      this.ring = this.build();
    });
  }

  private build(): HashRing {
    const overrides: Record<string, string> = {};
    const moving = new Set<string>();
    for (const [ws, v] of Object.entries(this.directory.overrides())) {
      const i = v.indexOf('>');
      overrides[ws] = i >= 0 ? v.slice(0, i) : v;
      if (i >= 0) moving.add(ws);
    }
    this.moving = moving;
    for (const [ws, h] of this.holds) {
      if (moving.has(ws)) continue;
      this.holds.delete(ws);
      h.resolve();
    }
    // overrides naming an unknown shard are ignored by the ring
    return HashRing.fromSnapshot({ epoch: this.epoch++, members: this.shards.map((s) => ({ id: s.id, weight: s.weight ?? 1 })), overrides });
  }

  /** True while `ws` is being switched (see ShardDirectory). */
  isMoving(ws: string): boolean {
    return this.moving.has(ws);
  }

  hold(ws: string): Promise<void> | undefined {
    if (!this.moving.has(ws)) return undefined;
    let h = this.holds.get(ws);
    if (!h) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.holds.set(ws, (h = { promise, resolve }));
    }
    return h.promise;
  }

  dbs(): readonly QueryDb[] {
    return this.shards;
  }
  /** The shard id of `ws`. */
  shardOf(ws: string): string {
    return this.ring.owner(ws)!;
  }
  /** The shard id the ring alone gives `ws` (no override). */
  homeOf(ws: string): string {
    return this.home.owner(ws)!;
  }
  dbFor(ws: string): QueryDb {
    return this.byId.get(this.shardOf(ws))!;
  }
  db(id: string): QueryDb {
    const d = this.byId.get(id);
    if (!d) throw new RangeError(`no shard ${JSON.stringify(id)}`);
    return d;
  }
  /** The directory the overrides come from. */
  get dir(): ShardDirectory {
    return this.directory;
  }
}
