import { codec, type Clock, type Disposable, type KvBucket, type KvStore, type Logger, silentLogger, type TimerHandle } from '../runtime/index.ts';

/** What a node says about itself in every heartbeat. */
export interface MemberInfo {
  readonly id: string;
  /** Relative capacity (default 1). */
  readonly weight: number;
  /** Region label, for edge routing. */
  readonly region: string;
  /** 'active' owns actors; 'draining' hands everything off, then leaves. */
  readonly state: 'active' | 'draining';
  /** When the node started (ms since epoch). */
  readonly startedAt: number;
  /** Heartbeat counter (increments every beat). */
  readonly beat: number;
  /** Load figures for the supervisor: live actors, messages per second, connections. */
  readonly load: Readonly<Record<string, number>>;
  /** Where the node's HTTP/WebSocket edge listens, if it has one. */
  readonly url?: string;
}

/** Timing of membership. Every value in ms. */
export interface MembershipTiming {
  /** Interval between heartbeats. Default 250. */
  heartbeatMs: number;
  /** A node that has not written a heartbeat for this long stops actor work. Must be well below failureTimeoutMs. Default 1000. */
  fenceAfterMs: number;
  /** The supervisor declares a node dead after this long without a heartbeat. Default 2000. */
  failureTimeoutMs: number;
  /** Leader lease: a leader that has not renewed for this long is replaced. Default 1500. */
  leaseMs: number;
}

/** Defaults: a crash is detected in about 2 s, well under the 3 s target and Orleans's / Akka's 10 s or more. */
export const DEFAULT_TIMING: Readonly<MembershipTiming> = Object.freeze({ heartbeatMs: 250, fenceAfterMs: 1000, failureTimeoutMs: 2000, leaseMs: 1500 });

/** Checks that the timing can keep single activation: a cut-off node must fence itself before others take over. */
export function validateTiming(t: MembershipTiming): string[] {
  const problems: string[] = [];
  for (const [k, v] of Object.entries(t)) if (!(Number.isFinite(v) && v > 0)) problems.push(`${k} must be a positive number of ms (got ${v})`);
  if (t.fenceAfterMs + t.heartbeatMs >= t.failureTimeoutMs) problems.push(`fenceAfterMs + heartbeatMs (${t.fenceAfterMs + t.heartbeatMs}) must be below failureTimeoutMs (${t.failureTimeoutMs})`);
  if (t.heartbeatMs * 2 > t.fenceAfterMs) problems.push(`fenceAfterMs (${t.fenceAfterMs}) must allow at least two heartbeats (${t.heartbeatMs} ms each)`);
  return problems;
}

/** KV bucket names. */
export const MEMBERS_BUCKET = 'chorus_members';
export const PLACEMENT_BUCKET = 'chorus_placement';

/**
 * A node's own membership: it writes a heartbeat every `heartbeatMs` and
 * fences itself (stops actor work) when it could not write one for
 * `fenceAfterMs`, because by then the cluster may be about to give its actors
 * to others. It unfences when heartbeats go through again.
 */
export class Membership {
  private bucket: KvBucket | undefined;
  private timer: TimerHandle | undefined;
  private beat = 0;
  private lastOk: number;
  private fenced = false;
  private stopped = false;
  private state: MemberInfo['state'] = 'active';
  private readonly startedAt: number;

  constructor(private readonly o: {
    nodeId: string;
    kv: KvStore;
    clock: Clock;
    timing: MembershipTiming;
    weight?: number;
    region?: string;
    url?: string;
    load?: () => Record<string, number>;
    onFence: (reason: string) => void;
    onUnfence: () => void | Promise<void>;
    logger?: Logger;
  }) {
    this.lastOk = o.clock.now();
    this.startedAt = o.clock.now();
  }

  /** Writes the first heartbeat (failing if the KV is unreachable) and starts beating. */
  async start(): Promise<void> {
    this.bucket = await this.o.kv.bucket(MEMBERS_BUCKET, { ttlMs: this.o.timing.failureTimeoutMs * 5 });
    await this.heartbeat();
    this.schedule();
  }

  /** Marks the node as draining: the supervisor moves all its actors away. */
  async drain(): Promise<void> {
    this.state = 'draining';
    await this.heartbeat().catch(() => {});
  }

  /** True once the node is draining. */
  get draining(): boolean {
    return this.state === 'draining';
  }

  /** Stops beating and removes the node's entry (graceful leave: the supervisor reacts at once). */
  async leave(): Promise<void> {
    this.stop();
    await this.bucket?.delete(this.o.nodeId).catch(() => {});
  }

  /** Stops beating without removing the entry (a crash, for tests). */
  stop(): void {
    this.stopped = true;
    if (this.timer) this.o.clock.clearTimeout(this.timer);
  }

  private info(): MemberInfo {
    return {
      id: this.o.nodeId, weight: this.o.weight ?? 1, region: this.o.region ?? 'local', state: this.state,
      startedAt: this.startedAt, beat: ++this.beat, load: this.o.load?.() ?? {}, ...(this.o.url ? { url: this.o.url } : {}),
    };
  }

  private async heartbeat(): Promise<void> {
    const started = this.o.clock.now();
    await this.bucket!.put(this.o.nodeId, codec.encode(this.info()));
    // the write started at `started`; only that much liveness is proven
    this.lastOk = Math.max(this.lastOk, started);
    if (this.fenced && !this.stopped) {
      this.fenced = false;
      await this.o.onUnfence();
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimeout(() => {
      if (this.stopped) return;
      this.heartbeat().catch((err) => this.o.logger?.debug({ err: (err as Error).message }, 'heartbeat failed'));
      this.checkFence();
      this.schedule();
    }, this.o.timing.heartbeatMs);
  }

  private checkFence(): void {
    const silent = this.o.clock.now() - this.lastOk;
    if (!this.fenced && silent >= this.o.timing.fenceAfterMs) {
      this.fenced = true;
      (this.o.logger ?? silentLogger).warn({ silentMs: silent }, 'no heartbeat written: fencing');
      this.o.onFence(`no heartbeat written for ${silent} ms`);
    }
  }
}

/** Decodes a member entry; undefined for garbage. */
export function decodeMember(value: Uint8Array | undefined): MemberInfo | undefined {
  if (!value) return undefined;
  try {
    const m = codec.decode(value) as MemberInfo;
    return typeof m?.id === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

export type { Disposable };
