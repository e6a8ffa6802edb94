import { systemClock, type Clock } from '../../runtime/clock.ts';
import { LogConflictError } from '../../runtime/errors.ts';
import type { AppendOptions, AppendRecord, AppendResult, EventLog, LogEntry } from '../../runtime/log/event-log.ts';
import type { Snapshot, SnapshotStore } from '../../runtime/log/snapshot-store.ts';
import type { Disposable } from '../../runtime/transport/transport.ts';
import type { MemoryNetwork } from './memory-network.ts';

interface StreamData { entries: LogEntry[]; dedup: Map<string, number> }
interface Tailer { prefix: string; push: (e: LogEntry) => void }

/** The shared state of an in-memory log "server" that several node clients use. */
export class MemoryLogServer {
  readonly streams = new Map<string, StreamData>();
  readonly snapshots = new Map<string, Snapshot>();
  readonly tailers = new Set<Tailer>();
  constructor(readonly clock: Clock = systemClock) {}
  /** Every record of every stream (tests use it to account for writes). */
  all(): LogEntry[] {
    return [...this.streams.values()].flatMap((s) => s.entries);
  }
}

/**
 * EventLog port in memory: dense positions per stream, dedup ids kept forever,
 * expected-last-position fencing. Powers unit tests and the testing harness;
 * with a network link it fails while its client is partitioned from the broker.
 */
export class MemoryEventLog implements EventLog {
  constructor(
    readonly server = new MemoryLogServer(),
    private readonly link?: { network: MemoryNetwork; clientId: string },
  ) {}
  private guard(): void {
    this.link?.network.guardServer(this.link.clientId, 'event log');
  }
  private stream(name: string): StreamData {
    let s = this.server.streams.get(name);
    if (!s) this.server.streams.set(name, (s = { entries: [], dedup: new Map() }));
    return s;
  }
  async append(stream: string, record: AppendRecord, opts: AppendOptions = {}): Promise<AppendResult> {
    this.guard();
    const s = this.stream(stream);
    if (record.dedupId !== undefined) {
      const pos = s.dedup.get(record.dedupId);
      if (pos !== undefined) return { pos, duplicate: true };
    }
    const last = s.entries.length ? s.entries[s.entries.length - 1]!.pos : 0;
    if (opts.expectedLastPos !== undefined && opts.expectedLastPos !== last) throw new LogConflictError(stream, opts.expectedLastPos, last);
    const entry: LogEntry = { stream, pos: last + 1, data: record.data.slice(), ts: this.server.clock.now(), ...(record.dedupId !== undefined ? { dedupId: record.dedupId } : {}) };
    s.entries.push(entry);
    if (record.dedupId !== undefined) s.dedup.set(record.dedupId, entry.pos);
    for (const t of this.server.tailers) if (stream.startsWith(t.prefix)) t.push(entry);
    return { pos: entry.pos, duplicate: false };
  }
  async read(stream: string, afterPos: number, limit = 1000): Promise<LogEntry[]> {
    this.guard();
    const entries = this.server.streams.get(stream)?.entries ?? [];
    // positions are dense from 1, so the index of pos p is p-1; copies, so a caller cannot change the log
    return entries.slice(Math.max(0, afterPos), Math.max(0, afterPos) + limit).map(copyEntry);
  }
  async lastPos(stream: string): Promise<number> {
    this.guard();
    const e = this.server.streams.get(stream)?.entries;
    return e?.length ? e[e.length - 1]!.pos : 0;
  }
  async tail(streamPrefix: string, afterPos: number, handler: (e: LogEntry) => Promise<void> | void): Promise<Disposable> {
    this.guard();
    const queue: LogEntry[] = [];
    let running = false;
    let stopped = false;
    const pump = async () => {
      if (running) return;
      running = true;
      while (queue.length && !stopped) {
        try {
          await handler(copyEntry(queue[0]!));
          queue.shift();
        } catch {
          // like the real logs: the same record again after a pause, never skipped
          await new Promise<void>((r) => this.server.clock.setTimeout(r, 100));
        }
      }
      running = false;
    };
    for (const [name, s] of this.server.streams) if (name.startsWith(streamPrefix)) queue.push(...s.entries.filter((e) => e.pos > afterPos));
    const t: Tailer = { prefix: streamPrefix, push: (e) => { queue.push(e); void pump(); } };
    this.server.tailers.add(t);
    const d: Disposable = { dispose: () => { stopped = true; this.server.tailers.delete(t); this.tails.delete(d); } };
    this.tails.add(d);
    // deliver only after the caller holds the Disposable, as the real logs do
    queueMicrotask(() => void pump());
    return d;
  }
  private readonly tails = new Set<Disposable>();
  async close(): Promise<void> {
    for (const d of [...this.tails]) await d.dispose();
  }
}

function copyEntry(e: LogEntry): LogEntry {
  return { ...e, data: e.data.slice() };
}

/** SnapshotStore port in memory, sharing the log server's state. */
export class MemorySnapshotStore implements SnapshotStore {
  constructor(
    readonly server = new MemoryLogServer(),
    private readonly link?: { network: MemoryNetwork; clientId: string },
  ) {}
  async save(stream: string, snap: Snapshot): Promise<void> {
    this.link?.network.guardServer(this.link.clientId, 'snapshot store');
    const cur = this.server.snapshots.get(stream);
    if (!cur || cur.pos < snap.pos) this.server.snapshots.set(stream, { pos: snap.pos, data: snap.data.slice() });
  }
  async load(stream: string): Promise<Snapshot | null> {
    this.link?.network.guardServer(this.link.clientId, 'snapshot store');
    const snap = this.server.snapshots.get(stream);
    return snap ? { pos: snap.pos, data: snap.data.slice() } : null;
  }
  async close(): Promise<void> {}
}
