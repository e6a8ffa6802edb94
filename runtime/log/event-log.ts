import type { Disposable } from '../transport/transport.ts';

/**
 * The EventLog port: the durable, ordered log that is the source of truth.
 * A stream is a logical log (one per durable actor, e.g. `channel.w1.c9`);
 * positions within a stream only grow. Embedded: PGlite table. Cluster:
 * JetStream (a stream per workspace, a subject per logical stream).
 *
 * One append is one record and is atomic. An actor that emits several events
 * in one turn packs them into one record, so a turn is persisted whole or not.
 */

/** One stored record. */
export interface LogEntry {
  /** The logical stream it belongs to. */
  readonly stream: string;
  /** Position: strictly increasing within the stream (not necessarily dense: JetStream positions are stream-wide). */
  readonly pos: number;
  /** The record's bytes. */
  readonly data: Uint8Array;
  /** The writer's dedup id, when it gave one. */
  readonly dedupId?: string;
  /** Append time in ms since the epoch. */
  readonly ts: number;
}

/** What to append. */
export interface AppendRecord {
  readonly data: Uint8Array;
  /**
   * Idempotency key (a client message id). A record with a dedup id already
   * stored in this stream is not stored again; the first position is returned
   * with `duplicate: true`. Implementations keep dedup ids for at least their
   * documented window (memory and PGlite: forever; JetStream: the stream's
   * duplicate window).
   */
  readonly dedupId?: string;
}

/** Options of one append. */
export interface AppendOptions {
  /**
   * Fencing: the position of the last record the writer has seen in this
   * stream (0 for "empty"). If another record was appended since, the append
   * fails with LogConflictError: a stale activation cannot write.
   */
  readonly expectedLastPos?: number;
}

/** The outcome of one append. */
export interface AppendResult {
  readonly pos: number;
  readonly duplicate: boolean;
}

/** The durable log. */
export interface EventLog {
  /** Appends one record durably; resolves only once it is stored (the ack a client may rely on). */
  append(stream: string, record: AppendRecord, opts?: AppendOptions): Promise<AppendResult>;
  /** Records with pos > `afterPos`, oldest first, at most `limit` (default 1000). */
  read(stream: string, afterPos: number, limit?: number): Promise<LogEntry[]>;
  /** Position of the last record of the stream, 0 when empty. */
  lastPos(stream: string): Promise<number>;
  /**
   * Delivers every record with pos > `afterPos` whose stream starts with
   * `streamPrefix`, then new ones as they are appended, in order per stream.
   * Used by projections; the handler's promise is awaited before the next record.
   */
  tail(streamPrefix: string, afterPos: number, handler: (e: LogEntry) => Promise<void> | void): Promise<Disposable>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** Token for the tsyringe container. */
export const EVENT_LOG = Symbol.for('chorus.EventLog');
