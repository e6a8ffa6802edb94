/**
 * ProjectionLease: one node of the cluster runs the projections. The holder
 * of the KV key `projector` (bucket `chorus-query-lease`, entries expire
 * `ttlMs` after their last write) runs them and renews the key every
 * ttlMs / 3 with a compare-and-set on its revision; the others try to create
 * the key at the same pace and take over once it has expired.
 *
 * Two projectors for a moment (a holder cut off but alive until its renewal
 * fails) are harmless: the projection's writes are idempotent and serialised
 * per stream by row locks. The lease only saves the work of N-1 nodes.
 */
import { KvConflictError } from '../../runtime/errors.ts';
import type { KvBucket, KvStore } from '../../runtime/kv/kv.ts';
import { silentLogger, type Logger } from '../../runtime/metrics.ts';

const KEY = 'projector';
const enc = new TextEncoder();

/** Options of ProjectionLease. */
export interface ProjectionLeaseOptions {
  readonly kv: KvStore;
  readonly nodeId: string;
  /** The key in the bucket: one lease per projection. Default 'projector' (the query store's). */
  readonly key?: string;
  /** Life of the lease without renewal. Default 6000 ms. */
  readonly ttlMs?: number;
  /** Called when this node becomes the projector. */
  readonly onAcquire: () => Promise<void>;
  /** Called when it stops being the projector (lost the lease, or stop()). */
  readonly onRelease: () => Promise<void>;
  readonly logger?: Logger;
}

/** Runs `onAcquire`/`onRelease` as this node gains and loses the projector lease. */
export class ProjectionLease {
  private bucket: KvBucket | undefined;
  private rev = 0;
  private holding = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticking: Promise<void> | undefined;
  private readonly ttlMs: number;
  private readonly logger: Logger;

  constructor(private readonly o: ProjectionLeaseOptions) {
    this.ttlMs = o.ttlMs ?? 6000;
    if (!Number.isSafeInteger(this.ttlMs) || this.ttlMs < 30) throw new RangeError(`ttlMs must be an integer >= 30, got ${this.ttlMs}`);
    this.logger = o.logger ?? silentLogger;
  }

  /** True while this node holds the lease. */
  get isHolder(): boolean {
    return this.holding;
  }

  async start(): Promise<this> {
    this.bucket = await this.o.kv.bucket('chorus-query-lease', { ttlMs: this.ttlMs });
    await this.tick();
    this.schedule();
    return this;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => this.schedule());
    }, Math.max(10, Math.floor(this.ttlMs / 3))).unref();
  }

  private async tick(): Promise<void> {
    const b = this.bucket!;
    try {
      if (this.holding) {
        this.rev = await b.update(this.o.key ?? KEY, enc.encode(this.o.nodeId), this.rev);
        return;
      }
      this.rev = await b.create(this.o.key ?? KEY, enc.encode(this.o.nodeId));
      this.holding = true;
      this.logger.info({ node: this.o.nodeId }, 'this node now runs the query projections');
      await this.o.onAcquire();
    } catch (err) {
      if (this.holding) {
        this.holding = false;
        this.logger.warn({ node: this.o.nodeId, err: (err as Error).message }, 'lost the projection lease; stopping the projections here');
        await this.o.onRelease().catch(() => undefined);
      } else if (!(err instanceof KvConflictError)) {
        this.logger.debug({ err: (err as Error).message }, 'projection lease: KV unavailable');
      }
    }
  }

  /** Stops competing; releases the lease if held (another node takes over at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    if (this.holding) {
      this.holding = false;
      await this.o.onRelease().catch(() => undefined);
      await this.bucket?.delete(this.o.key ?? KEY).catch(() => undefined);
    }
  }
}

/**
 * Runs a projection where `mode` says (the `runProjections` setting of the
 * query and search sides): `'lease'`, on the one node holding the KV lease
 * `key` (needs `kv`); `true`, here; `false`, not here. Returns the closer
 * that stops it (then gives the lease up).
 */
export async function placeProjection(o: {
  mode: boolean | 'lease'; kv?: KvStore | undefined; key?: string; nodeId: string; logger?: Logger;
  start(): Promise<void>; stop(): Promise<void>; what: string;
}): Promise<() => Promise<void>> {
  if (o.mode === 'lease') {
    if (!o.kv) throw new RangeError(`${o.what}: runProjections 'lease' needs kv`);
    const lease = await new ProjectionLease({ kv: o.kv, ...(o.key ? { key: o.key } : {}), nodeId: o.nodeId, onAcquire: o.start, onRelease: o.stop, ...(o.logger ? { logger: o.logger } : {}) }).start();
    return async () => {
      await o.stop();
      await lease.stop();
    };
  }
  if (o.mode) await o.start();
  return o.stop;
}
