/**
 * The SnapshotStore port: the latest snapshot of a durable actor, so recovery
 * is snapshot + replay of the records after it, not the whole log.
 */

/** One snapshot: the state bytes and the log position it includes. */
export interface Snapshot {
  readonly pos: number;
  readonly data: Uint8Array;
}

/** Latest-snapshot store keyed by stream name. */
export interface SnapshotStore {
  /** Stores `snap` unless a snapshot at a higher position is already stored. */
  save(stream: string, snap: Snapshot): Promise<void>;
  /** The latest snapshot, or null. */
  load(stream: string): Promise<Snapshot | null>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** Token for the tsyringe container. */
export const SNAPSHOT_STORE = Symbol.for('chorus.SnapshotStore');
