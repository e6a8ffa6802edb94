import type { Readable } from 'node:stream';
import {
  FileNotFoundError, noopMetrics, silentLogger,
  type FileObjectInfo, type FileStore, type Logger, type Metrics, type PutOptions, type SignedUrlOptions, type StorageClass,
} from '../../runtime/index.ts';

/** Settings of the replication; durations in ms. */
export interface ReplicationOptions {
  metrics?: Metrics;
  logger?: Logger;
  /** First retry delay after a failed copy; doubles up to `retryMaxMs`. Default 500. */
  retryBaseMs?: number;
  /** Default 30000. */
  retryMaxMs?: number;
  /** Copies in flight. Default 2. */
  concurrency?: number;
}

type Intent = { key: string; op: 'copy' | 'delete' | 'class'; storageClass?: StorageClass; contentType?: string };
type Job = Intent & { attempts: number; dueAt: number; running?: boolean; /** An intent that arrived while this job ran: it replaces the job when the run ends. */ next?: Intent };

/**
 * The seed's multi-provider strategy as a FileStore over two others:
 *
 * - writes: the primary `put` is awaited (the upload's answer waits for it);
 *   the secondary copy is queued and made in the background by reading the
 *   object back from the primary (the request body was streamed once and is
 *   gone), with retries and exponential backoff. Deletes and class changes
 *   are replayed on the secondary the same way.
 * - the backlog is visible: `backlog()`, `pending()`, and the gauge
 *   `file_replication_backlog`; copies and failures count in
 *   `file_replication_total{result}`.
 * - reads (`get`, `head`, `signedUrl`, `list`) go to the primary and fall back
 *   to the secondary when the primary fails or lacks the object
 *   (`file_read_fallbacks_total`).
 *
 * The backlog is in memory: a crash loses it; `catchUp()` (run at start)
 * lists both sides and queues what the secondary lacks.
 */
export class ReplicatedFileStore implements FileStore {
  readonly name = 'replicated';
  private readonly jobs = new Map<string, Job>();
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly o: Required<Omit<ReplicationOptions, 'metrics' | 'logger'>>;
  private timer: NodeJS.Timeout | undefined;
  private running = 0;
  private closed = false;

  constructor(readonly primary: FileStore, readonly secondary: FileStore, opts: ReplicationOptions = {}) {
    this.metrics = opts.metrics ?? noopMetrics;
    this.logger = opts.logger ?? silentLogger;
    this.o = { retryBaseMs: opts.retryBaseMs ?? 500, retryMaxMs: opts.retryMaxMs ?? 30_000, concurrency: opts.concurrency ?? 2 };
  }

  /** Copies not yet made on the secondary. */
  backlog(): number {
    return this.jobs.size;
  }

  /** The queued keys with their attempts so far (for the inspector). */
  pending(): Array<{ key: string; op: string; attempts: number }> {
    return [...this.jobs.values()].map((j) => ({ key: j.key, op: j.op, attempts: j.attempts }));
  }

  /** Retries every queued job now instead of at its backoff time. */
  retryNow(): void {
    for (const j of this.jobs.values()) j.dueAt = 0;
    this.pump();
  }

  /** Queues a copy of every primary object the secondary lacks (or holds at another size); resolves to how many. */
  async catchUp(prefix = ''): Promise<number> {
    const [a, b] = await Promise.all([this.primary.list(prefix), this.secondary.list(prefix)]);
    const have = new Map(b.map((o) => [o.key, o.size]));
    let n = 0;
    for (const o of a) if (have.get(o.key) !== o.size) (this.enqueue({ key: o.key, op: 'copy', storageClass: o.storageClass }), n++);
    return n;
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<FileObjectInfo> {
    const info = await this.primary.put(key, body, opts);
    this.enqueue({ key, op: 'copy', contentType: opts.contentType, ...(opts.storageClass ? { storageClass: opts.storageClass } : {}) });
    return info;
  }

  async get(key: string): Promise<{ body: Readable; info: FileObjectInfo }> {
    return this.read('get', key, (s) => s.get(key));
  }

  async head(key: string): Promise<FileObjectInfo | null> {
    try {
      const h = await this.primary.head(key);
      if (h) return h;
    } catch (err) {
      this.fellBack('head', key, err);
      return this.secondary.head(key);
    }
    const s = await this.secondary.head(key).catch(() => null);
    if (s) this.fellBack('head', key, new FileNotFoundError(key));
    return s;
  }

  async list(prefix?: string): Promise<FileObjectInfo[]> {
    try {
      return await this.primary.list(prefix);
    } catch (err) {
      this.fellBack('list', prefix ?? '', err);
      return this.secondary.list(prefix);
    }
  }

  async delete(key: string): Promise<void> {
    await this.primary.delete(key);
    this.enqueue({ key, op: 'delete' });
  }

  async setStorageClass(key: string, storageClass: StorageClass): Promise<void> {
    await this.primary.setStorageClass(key, storageClass);
    this.enqueue({ key, op: 'class', storageClass });
  }

  /** A URL on the primary when it is up and holds the object (a presigned URL alone proves neither), else on the secondary. */
  async signedUrl(key: string, opts: SignedUrlOptions): Promise<string> {
    return this.read('signedUrl', key, async (s) => {
      if (s === this.primary && !(await s.head(key))) throw new FileNotFoundError(key);
      return s.signedUrl(key, opts);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.all([this.primary.close(), this.secondary.close()]);
  }

  // ---- internals -------------------------------------------------------------

  private async read<T>(what: string, key: string, fn: (s: FileStore) => Promise<T>): Promise<T> {
    try {
      return await fn(this.primary);
    } catch (err) {
      this.fellBack(what, key, err);
      try {
        return await fn(this.secondary);
      } catch (err2) {
        // both failed: a missing object is FILE_NOT_FOUND; otherwise the primary's failure says most
        throw err instanceof FileNotFoundError && !(err2 instanceof FileNotFoundError) ? err2 : err;
      }
    }
  }

  private fellBack(what: string, key: string, err: unknown): void {
    this.metrics.counter('file_read_fallbacks_total', 'Reads served by the secondary file store because the primary failed or lacked the object', ['op']).inc({ op: what });
    if (!(err instanceof FileNotFoundError)) this.logger.warn({ err: (err as Error).message, key, op: what }, 'primary file store failed; reading the secondary');
  }

  private gauge(): void {
    this.metrics.gauge('file_replication_backlog', 'Objects whose copy to the secondary file store is not made yet').set(this.jobs.size);
  }

  private enqueue(intent: Intent): void {
    // one job per key, the last intent wins (a delete after a copy cancels the copy); a running job is followed by the new intent
    const prev = this.jobs.get(intent.key);
    if (prev?.running) prev.next = intent;
    else this.jobs.set(intent.key, { ...intent, attempts: 0, dueAt: 0 });
    this.gauge();
    this.pump();
  }

  private pump(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    let nextDue = Infinity;
    for (const j of this.jobs.values()) {
      if (j.running) continue;
      if (j.dueAt > now) {
        nextDue = Math.min(nextDue, j.dueAt);
        continue;
      }
      if (this.running >= this.o.concurrency) break;
      void this.run(j);
    }
    if (nextDue < Infinity) {
      this.timer = setTimeout(() => this.pump(), Math.max(1, nextDue - now));
      this.timer.unref();
    }
  }

  private async run(j: Job): Promise<void> {
    j.running = true;
    this.running++;
    const count = this.metrics.counter('file_replication_total', 'Replication jobs to the secondary file store by result', ['op', 'result']);
    try {
      if (j.op === 'copy') {
        const { body, info } = await this.primary.get(j.key);
        await this.secondary.put(j.key, body, { contentType: j.contentType ?? info.contentType ?? 'application/octet-stream', size: info.size, storageClass: j.storageClass ?? info.storageClass });
      } else if (j.op === 'delete') {
        await this.secondary.delete(j.key);
      } else {
        await this.secondary.setStorageClass(j.key, j.storageClass!);
      }
      count.inc({ op: j.op, result: 'ok' });
      this.jobs.delete(j.key);
    } catch (err) {
      count.inc({ op: j.op, result: 'error' });
      if (j.op === 'copy' && err instanceof FileNotFoundError && !(await this.primary.head(j.key).catch(() => true))) {
        this.jobs.delete(j.key); // deleted on the primary meanwhile: nothing to copy
      } else {
        j.attempts++;
        j.dueAt = Date.now() + Math.min(this.o.retryMaxMs, this.o.retryBaseMs * 2 ** Math.min(20, j.attempts - 1));
        this.logger.warn({ err: (err as Error).message, key: j.key, op: j.op, attempts: j.attempts }, 'replication to the secondary file store failed; will retry');
      }
    } finally {
      j.running = false;
      if (j.next) this.jobs.set(j.key, { ...j.next, attempts: 0, dueAt: 0 });
      this.running--;
      this.gauge();
      this.pump();
    }
  }
}
