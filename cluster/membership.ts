import { codec, type Clock, type Disposable, type KvBucket, type KvStore, type Logger, silentLogger, type TimerHandle, type Transport } from '../runtime/index.ts';

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
  /** When this heartbeat was sent, by the sender's clock (used only by the sender, to prove its own liveness). */
  readonly sentAt?: number;
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
/** Heartbeats go to `chorus.hb.<nodeId>`; the supervisor listens on `chorus.hb.*`. */
export const HEARTBEAT_SUBJECT = 'chorus.hb';
/** The registry entry in the KV is refreshed every this many heartbeats. */
const REGISTRY_EVERY = 8;

/**
 * A node's own membership. Liveness travels on the transport, not the KV: the
 * node publishes a heartbeat on `chorus.hb.<id>` every `heartbeatMs` and
 * listens to its own subject. A heartbeat that comes back through the broker
 * proves the node is connected; when none has come back for `fenceAfterMs`
 * the node fences itself (stops actor work), because by then the cluster may
 * be about to give its actors to others. It unfences when heartbeats come
 * back again. The KV holds the member registry (region, url, state), written
 * on start, on change and every few beats.
 *
 * Why not heartbeats in JetStream KV: on nats-server 2.9, writes to an R3
 * bucket stall for 4-7 s while its stream elects a new leader after a server
 * dies. Every node would fence at once. Core NATS pub/sub keeps flowing
 * (clients reconnect to another server within milliseconds).
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

  private echo: Disposable | undefined;
  private seenEcho = false;

  constructor(private readonly o: {
    nodeId: string;
    kv: KvStore;
    transport: Transport;
    clock: Clock;
    timing: MembershipTiming;
    weight?: number;
    region?: string;
    url?: string;
    load?: () => Record<string, number>;
    onFence: (reason: string) => void;
    onUnfence: () => void | Promise<void>;
    /** Whether the actor node is fenced (it may fence itself between heartbeats, see leaseValid). */
    isFenced?: () => boolean;
    logger?: Logger;
  }) {
    this.lastOk = o.clock.now();
    this.startedAt = o.clock.now();
  }

  /** Registers the node (failing if the KV is unreachable) and starts beating. */
  async start(): Promise<void> {
    this.bucket = await this.o.kv.bucket(MEMBERS_BUCKET, { ttlMs: this.o.timing.failureTimeoutMs * 5 });
    this.echo = this.o.transport.subscribe(`${HEARTBEAT_SUBJECT}.${this.o.nodeId}`, (data) => this.onEcho(data));
    await this.register();
    this.heartbeat();
    this.schedule();
  }

  /** Marks the node as draining: the supervisor moves all its actors away. */
  async drain(): Promise<void> {
    this.state = 'draining';
    this.heartbeat();
    await this.register().catch(() => {});
  }

  /**
   * True while the node's liveness is proven: its last echoed heartbeat is
   * younger than fenceAfterMs. Checked on every delivery, so a node that was
   * paused (SIGSTOP, a long GC) refuses work the moment it wakes, before its
   * timer-driven fence check has run.
   */
  leaseValid(): boolean {
    return !this.seenEcho || this.o.clock.now() - this.lastOk < this.o.timing.fenceAfterMs;
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
    void this.echo?.dispose();
  }

  private info(): MemberInfo {
    return {
      id: this.o.nodeId, weight: this.o.weight ?? 1, region: this.o.region ?? 'local', state: this.state,
      startedAt: this.startedAt, beat: ++this.beat, load: this.o.load?.() ?? {}, ...(this.o.url ? { url: this.o.url } : {}),
    };
  }

  /** Writes the registry entry. */
  private async register(): Promise<void> {
    await this.bucket!.put(this.o.nodeId, codec.encode(this.info()));
  }

  /** Publishes one heartbeat; its echo proves liveness. */
  private heartbeat(): void {
    try {
      this.o.transport.publish(`${HEARTBEAT_SUBJECT}.${this.o.nodeId}`, codec.encode({ ...this.info(), sentAt: this.o.clock.now() }));
    } catch (err) {
      this.o.logger?.debug({ err: (err as Error).message }, 'heartbeat publish failed');
    }
  }

  private onEcho(data: Uint8Array): void {
    const m = decodeMember(data);
    if (!m || m.id !== this.o.nodeId || typeof m.sentAt !== 'number' || m.startedAt !== this.startedAt) return;
    // only the time the beat was sent is proven, not the time it came back
    this.lastOk = Math.max(this.lastOk, m.sentAt);
    this.seenEcho = true;
    if ((this.fenced || this.o.isFenced?.()) && !this.stopped && this.o.clock.now() - this.lastOk < this.o.timing.fenceAfterMs) {
      this.fenced = false;
      Promise.resolve(this.o.onUnfence()).catch(() => {});
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimeout(() => {
      if (this.stopped) return;
      this.heartbeat();
      if (this.beat % REGISTRY_EVERY === 0) this.register().catch((err) => this.o.logger?.debug({ err: (err as Error).message }, 'registry write failed'));
      this.checkFence();
      this.schedule();
    }, this.o.timing.heartbeatMs);
  }

  private checkFence(): void {
    const silent = this.o.clock.now() - this.lastOk;
    if (!this.fenced && this.seenEcho && silent >= this.o.timing.fenceAfterMs) {
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
