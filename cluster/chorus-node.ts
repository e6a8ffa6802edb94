import {
  ActorNode, systemClock, silentLogger, noopMetrics,
  type ActivationObserver, type ActorType, type Clock, type Codec, type EventLog, type KvStore, type Logger, type Metrics,
  type SnapshotStore, type Transport,
} from '../runtime/index.ts';
import { DEFAULT_TIMING, Membership, validateTiming, type MembershipTiming } from './membership.ts';
import { PlacementSupervisor } from './placement-supervisor.ts';

/** Everything a cluster node is made of: the ports plus its own settings. */
export interface ChorusNodeOptions {
  readonly nodeId: string;
  readonly transport: Transport;
  readonly kv: KvStore;
  readonly log: EventLog;
  readonly snapshots: SnapshotStore;
  readonly types: readonly ActorType[];
  readonly clock?: Clock;
  readonly codec?: Codec;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /** Membership timing; defaults in DEFAULT_TIMING. */
  readonly timing?: Partial<MembershipTiming>;
  readonly weight?: number;
  readonly region?: string;
  /** The node's public HTTP/WebSocket URL, advertised in its heartbeat. */
  readonly url?: string;
  readonly askTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly handoffTimeoutMs?: number;
  readonly strictSerialization?: boolean;
  readonly observer?: ActivationObserver;
  /** Extra load figures for the heartbeat (connections, messages per second). */
  readonly load?: () => Record<string, number>;
  /** Scale decisions made when this node leads (default: none). */
  readonly advisor?: { tick(members: readonly import('./membership.ts').MemberInfo[]): Promise<unknown> };
}

/**
 * One Chorus node: an ActorNode that follows the cluster's placement table,
 * a Membership that heartbeats and fences, and a PlacementSupervisor that
 * may lead. The same class runs on the memory ports (embedded profile, the
 * testing harness) and on NATS (cluster profile).
 */
export class ChorusNode {
  readonly nodeId: string;
  readonly actors: ActorNode;
  readonly membership: Membership;
  readonly supervisor: PlacementSupervisor;
  readonly timing: MembershipTiming;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private started = false;

  constructor(readonly options: ChorusNodeOptions) {
    this.nodeId = options.nodeId;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    const problems = validateTiming(this.timing);
    if (problems.length) throw new TypeError(`invalid membership timing:\n  - ${problems.join('\n  - ')}`);
    this.actors = new ActorNode({
      nodeId: options.nodeId, transport: options.transport, log: options.log, snapshots: options.snapshots, types: options.types,
      clock: this.clock, metrics: options.metrics ?? noopMetrics, logger: this.logger,
      ...(options.codec ? { codec: options.codec } : {}),
      ...(options.askTimeoutMs !== undefined ? { askTimeoutMs: options.askTimeoutMs } : {}),
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
      ...(options.handoffTimeoutMs !== undefined ? { handoffTimeoutMs: options.handoffTimeoutMs } : {}),
      // a previous owner that does not answer a handoff may run the actor until its lease lapses and its fence check runs
      prevOwnerLeaseMs: this.timing.fenceAfterMs + 2 * this.timing.heartbeatMs,
      ...(options.strictSerialization !== undefined ? { strictSerialization: options.strictSerialization } : {}),
      ...(options.observer ? { observer: options.observer } : {}),
      // a node that left the table but was heard from within the failure timeout may still run its actors (a
      // draining node hands them off; the new table can arrive before its 'draining' heartbeat does): ask it
      isDraining: (id) => this.supervisor.liveMembers().some((m) => m.id === id && this.clock.now() - m.lastSeen < this.timing.failureTimeoutMs),
      // checked on every delivery: a node that was paused refuses work the moment it wakes
      leaseValid: () => this.membership.leaseValid(),
    });
    this.supervisor = new PlacementSupervisor({
      nodeId: options.nodeId, kv: options.kv, transport: options.transport, clock: this.clock, timing: this.timing, logger: this.logger,
      onTable: (t) => this.actors.setTable(t),
      ...(options.advisor ? { advisor: options.advisor } : {}),
    });
    this.membership = new Membership({
      nodeId: options.nodeId, kv: options.kv, transport: options.transport, clock: this.clock, timing: this.timing, logger: this.logger,
      ...(options.weight !== undefined ? { weight: options.weight } : {}),
      ...(options.region !== undefined ? { region: options.region } : {}),
      ...(options.url !== undefined ? { url: options.url } : {}),
      load: () => ({ actors: this.actors.activeCount(), ...options.load?.() }),
      onFence: (reason) => this.actors.fence(reason),
      isFenced: () => this.actors.fenced,
      onUnfence: async () => {
        // catch up with the table first: it may have moved our actors while we were cut off
        await this.supervisor.refreshTable().catch(() => {});
        this.actors.unfence();
      },
    });
  }

  /** Starts the actor node, follows placement and joins the cluster. */
  async start(): Promise<void> {
    await this.actors.start();
    await this.supervisor.start();
    await this.membership.start();
    this.started = true;
  }

  /** A ref to a virtual actor, routed through this node. */
  ref(type: string, key: string) {
    return this.actors.ref(type, key);
  }

  /**
   * Hands every actor off and leaves: marks the node draining, waits until
   * the supervisor has published a table without it and every activation is
   * gone, stays up `graceMs` more (default 500: requests in flight finish,
   * and watchers such as a load balancer's health check or an operator see
   * it empty before it goes), then stops. `onProgress` gets the number of
   * actors still here.
   */
  async drain(opts: { timeoutMs?: number; graceMs?: number; onProgress?: (remaining: number) => void } = {}): Promise<void> {
    await this.membership.drain();
    const deadline = this.clock.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      const inTable = this.actors.table.members.some((m) => m.id === this.nodeId);
      const remaining = this.actors.activeCount();
      opts.onProgress?.(remaining);
      if (!inTable && remaining === 0) break;
      if (this.clock.now() > deadline) throw new Error(`drain of ${this.nodeId} timed out with ${remaining} actors left`);
      await new Promise((r) => this.clock.setTimeout(() => r(undefined), 50));
    }
    const grace = opts.graceMs ?? 500;
    if (grace > 0) await new Promise((r) => this.clock.setTimeout(() => r(undefined), grace));
    await this.stop();
  }

  /** Graceful stop: persists and releases every actor, leaves the membership, stops following placement. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.actors.stop();
    await this.membership.leave();
    await this.supervisor.stop();
  }

  /** Simulates kill -9 for the testing harness: nothing is persisted or released. */
  crash(): void {
    this.started = false;
    this.membership.stop();
    void this.supervisor.stop({ release: false }).catch(() => {});
    this.actors.crash();
  }
}
