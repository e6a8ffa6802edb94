import type { Disposable } from '../transport/transport.ts';

/**
 * The KV port: small, strongly consistent entries with revisions, used for
 * membership heartbeats, the leader lease and the placement table.
 * Embedded: adapters/memory. Cluster: JetStream KV.
 */

/** One entry. */
export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** Revision of this write; strictly increasing per bucket. */
  readonly revision: number;
}

/** A change seen by a watcher. Entries expiring by TTL may produce no event (NATS 2.9): track liveness from writes. */
export interface KvEvent {
  readonly op: 'put' | 'del';
  readonly key: string;
  readonly value: Uint8Array | undefined;
  readonly revision: number;
}

/** One bucket. Keys are dot-separated tokens of [A-Za-z0-9_-=]. */
export interface KvBucket {
  readonly name: string;
  get(key: string): Promise<KvEntry | null>;
  /** Unconditional write; returns the new revision. */
  put(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the key does not exist (or was deleted); else KvConflictError. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the entry's revision is `expectedRevision`; else KvConflictError. */
  update(key: string, value: Uint8Array, expectedRevision: number): Promise<number>;
  delete(key: string): Promise<void>;
  keys(): Promise<string[]>;
  /** Calls `handler` with the current value of every matching key, then with every change. `filter` may end with `>`. */
  watch(filter: string, handler: (e: KvEvent) => void): Promise<Disposable>;
}

/** Opens buckets. */
export interface KvStore {
  /** Opens (creating if needed) a bucket; `ttlMs` makes entries expire that long after their last write. */
  bucket(name: string, opts?: { ttlMs?: number; history?: number }): Promise<KvBucket>;
  close(): Promise<void>;
}

/** Token for the tsyringe container. */
export const KV_STORE = Symbol.for('chorus.KvStore');
