/**
 * Bulk indexing with back-pressure and retries.
 *
 * - Operations are cut into requests of at most `bulkMaxOps` operations and
 *   `bulkMaxBytes` bytes; at most `bulkConcurrency` requests are in flight
 *   (a caller waits for a slot, which stalls the projection instead of piling
 *   requests onto a busy cluster).
 * - A request rejected as a whole (429, 502, 503, 504, or a connection error)
 *   is retried; so are the items of a successful request that came back with
 *   429 (`es_rejected_execution_exception`, a full write queue). Back-off:
 *   `bulkBackoffMs` doubling to 5 s, with jitter, `bulkRetries` times; then
 *   the write fails (the projection retries the unit later).
 * - An item refused for good (a 4xx other than 429; a delete of a missing
 *   document, 404, is success) is logged and counted, not retried: repeating
 *   it cannot succeed and must not stop the index.
 */
import { errors, type Client } from '@elastic/elasticsearch';
import { BackendError } from '../../runtime/errors.ts';
import type { ResolvedEsOptions } from './options.ts';

/** One bulk operation: an index of a whole document, or a delete. */
export type BulkOp =
  | { readonly op: 'index'; readonly index: string; readonly id: string; readonly doc: Record<string, unknown> }
  | { readonly op: 'delete'; readonly index: string; readonly id: string };

const RETRYABLE = new Set([429, 502, 503, 504]);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Sends bulk operations; see the file comment. */
export class BulkWriter {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly m;

  constructor(private readonly client: Client, private readonly o: ResolvedEsOptions) {
    const mt = o.metrics;
    this.m = {
      requests: mt.counter('chorus_search_bulk_requests_total', 'Elasticsearch bulk requests, by outcome', ['outcome']),
      retries: mt.counter('chorus_search_bulk_retries_total', 'Bulk requests or items retried after a rejection', ['reason']),
      rejected: mt.counter('chorus_search_bulk_rejected_total', 'Bulk items refused for good (not retried)'),
      seconds: mt.histogram('chorus_search_bulk_seconds', 'Time of one bulk request', [], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]),
    };
  }

  /** Writes every operation; resolves when all are acknowledged (or refused for good). */
  async write(ops: readonly BulkOp[]): Promise<void> {
    await Promise.all(this.chunks(ops).map((c) => this.withSlot(() => this.send(c))));
  }

  private chunks(ops: readonly BulkOp[]): BulkOp[][] {
    const out: BulkOp[][] = [];
    let cur: BulkOp[] = [];
    let bytes = 0;
    for (const op of ops) {
      const size = 100 + (op.op === 'index' ? JSON.stringify(op.doc).length : 0);
      if (cur.length && (cur.length >= this.o.bulkMaxOps || bytes + size > this.o.bulkMaxBytes)) {
        out.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(op);
      bytes += size;
    }
    if (cur.length) out.push(cur);
    return out;
  }

  private async withSlot<T>(fn: () => Promise<T>): Promise<T> {
    while (this.inFlight >= this.o.bulkConcurrency) await new Promise<void>((r) => this.waiting.push(r));
    this.inFlight++;
    try {
      return await fn();
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  private backoff(attempt: number): number {
    const base = Math.min(5000, this.o.bulkBackoffMs * 2 ** attempt);
    return base / 2 + Math.random() * (base / 2);
  }

  private async send(ops: BulkOp[]): Promise<void> {
    let pending = ops;
    for (let attempt = 0; ; attempt++) {
      const operations: unknown[] = [];
      for (const op of pending) {
        if (op.op === 'index') operations.push({ index: { _index: op.index, _id: op.id } }, op.doc);
        else operations.push({ delete: { _index: op.index, _id: op.id } });
      }
      const started = performance.now();
      let retry: BulkOp[];
      let reason: string;
      try {
        const res = await this.client.bulk({ operations });
        this.m.seconds.observe((performance.now() - started) / 1000);
        retry = [];
        if (res.errors) {
          res.items.forEach((item, i) => {
            const r = Object.values(item)[0]!;
            const status = r.status;
            if (status < 300 || (status === 404 && pending[i]!.op === 'delete')) return;
            if (RETRYABLE.has(status)) retry.push(pending[i]!);
            else {
              this.m.rejected.inc();
              this.o.logger.warn({ index: r._index, id: r._id, status, err: r.error?.reason }, 'elasticsearch refused a document; not retried');
            }
          });
        }
        if (!retry.length) {
          this.m.requests.inc({ outcome: 'ok' });
          return;
        }
        reason = 'item_rejected';
      } catch (err) {
        const status = err instanceof errors.ResponseError ? err.meta.statusCode : undefined;
        const transient = status === undefined ? err instanceof errors.ConnectionError || err instanceof errors.TimeoutError || err instanceof errors.NoLivingConnectionsError : RETRYABLE.has(status);
        if (!transient || attempt >= this.o.bulkRetries) {
          this.m.requests.inc({ outcome: 'failed' });
          throw new BackendError('elasticsearch', `bulk request failed: ${(err as Error).message}`, { cause: err });
        }
        retry = pending;
        reason = status ? `http_${status}` : 'connection';
      }
      if (attempt >= this.o.bulkRetries) {
        this.m.requests.inc({ outcome: 'failed' });
        throw new BackendError('elasticsearch', `bulk: ${retry.length} operations still rejected after ${attempt + 1} attempts`);
      }
      this.m.retries.inc({ reason });
      pending = retry;
      await sleep(this.backoff(attempt));
    }
  }
}
