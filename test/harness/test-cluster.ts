import { MemoryEventLog, MemoryKv, MemoryKvServer, MemoryLogServer, MemoryMetrics, MemoryNetwork, MemorySnapshotStore, type NetworkFaults } from '../../adapters/memory/index.ts';
import { ChorusNode } from '../../cluster/chorus-node.ts';
import type { MembershipTiming } from '../../cluster/membership.ts';
import { VirtualClock, type ActivationObserver, type ActorRef, type ActorType } from '../../runtime/index.ts';
import { pickSeed, seededRandom } from './rng.ts';
import { TestProbe, probeType, type ProbeRegistry } from './test-probe.ts';

/** Options of a TestCluster. */
export interface TestClusterOptions {
  /** Number of nodes started (ids n1..nN). Default 3. */
  nodes?: number;
  /** Actor types every node hosts (a `probe` type is added). */
  types: readonly ActorType[];
  /** Seed of every random choice (faults, schedules). Default: CHORUS_SEED or random; always printed on failure. */
  seed?: number;
  /** Network faults from the start. Default none. */
  faults?: Partial<NetworkFaults>;
  /** Membership timing. Defaults as in production (failure detected in about 2 s of virtual time). */
  timing?: Partial<MembershipTiming>;
  askTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Round-trip every local message through the codec (default true: catches messages that could not cross a process). */
  strictSerialization?: boolean;
}

/** A single-activation violation: one actor live on two nodes at once. */
export interface Violation {
  readonly key: string;
  readonly nodes: readonly string[];
  readonly at: number;
}

/**
 * N Chorus nodes in one process over the memory transport, KV and log, on a
 * virtual clock. Crash, restart, isolate, partition and heal nodes; delay,
 * drop, duplicate and reorder messages from a seed; check invariants after
 * every step. Time moves only through `advance`, `until`, `run` and
 * `eventually`, so a run with the same seed is the same run.
 */
export class TestCluster {
  readonly seed: number;
  readonly clock = new VirtualClock();
  readonly network: MemoryNetwork;
  readonly logServer: MemoryLogServer;
  readonly kvServer: MemoryKvServer;
  readonly metrics = new MemoryMetrics();
  readonly rng: () => number;
  private readonly nodesById = new Map<string, ChorusNode>();
  private readonly crashed = new Set<string>();
  private readonly live = new Map<string, Set<string>>();
  private readonly violationList: Violation[] = [];
  private readonly probes: ProbeRegistry = new Map();
  private nextId = 1;

  private constructor(readonly options: TestClusterOptions) {
    this.seed = options.seed ?? pickSeed();
    this.rng = seededRandom(this.seed);
    this.network = new MemoryNetwork({ clock: this.clock, rng: seededRandom(this.seed ^ 0x5bd1e995), faults: options.faults ?? {} });
    this.logServer = new MemoryLogServer(this.clock);
    this.kvServer = new MemoryKvServer(this.clock);
  }

  /** Starts a cluster and waits (in virtual time) until every node follows one table with all of them. */
  static async start(options: TestClusterOptions): Promise<TestCluster> {
    const c = new TestCluster(options);
    const n = options.nodes ?? 3;
    for (let i = 0; i < n; i++) await c.addNode({ wait: false });
    await c.stable();
    return c;
  }

  /** Observer shared by every node: records activations and flags a second live instance. */
  private readonly observer: ActivationObserver = {
    activated: (node, key) => {
      let set = this.live.get(key);
      if (!set) this.live.set(key, (set = new Set()));
      set.add(node);
      if (set.size > 1) this.violationList.push({ key, nodes: [...set], at: this.clock.now() });
    },
    deactivated: (node, key) => {
      const set = this.live.get(key);
      set?.delete(node);
      if (set && set.size === 0) this.live.delete(key);
    },
  };

  /** Ids of the nodes that are running (not crashed). */
  get nodeIds(): string[] {
    return [...this.nodesById.keys()].filter((id) => !this.crashed.has(id));
  }
  /** A running node by id. */
  node(id: string): ChorusNode {
    const n = this.nodesById.get(id);
    if (!n || this.crashed.has(id)) throw new Error(`no running node ${id} (seed ${this.seed})`);
    return n;
  }
  /** Single-activation violations seen so far. */
  get violations(): readonly Violation[] {
    return this.violationList;
  }
  /** Where each live actor is: key -> node ids. */
  liveActivations(): Map<string, string[]> {
    return new Map([...this.live].map(([k, s]) => [k, [...s]]));
  }

  /** Adds and starts a node; by default waits until the table includes it. */
  async addNode(opts: { id?: string; weight?: number; wait?: boolean } = {}): Promise<ChorusNode> {
    const id = opts.id ?? `n${this.nextId++}`;
    const link = { network: this.network, clientId: id };
    this.crashed.delete(id);
    this.network.partition([[id]]); // back with the broker, if it was cut off before
    const node = new ChorusNode({
      nodeId: id,
      transport: this.network.transport(id),
      kv: new MemoryKv(this.kvServer, link),
      log: new MemoryEventLog(this.logServer, link),
      snapshots: new MemorySnapshotStore(this.logServer, link),
      types: [...this.options.types, probeType(this.probes)],
      clock: this.clock,
      metrics: this.metrics,
      observer: this.observer,
      strictSerialization: this.options.strictSerialization ?? true,
      ...(opts.weight !== undefined ? { weight: opts.weight } : {}),
      ...(this.options.timing ? { timing: this.options.timing } : {}),
      ...(this.options.askTimeoutMs !== undefined ? { askTimeoutMs: this.options.askTimeoutMs } : {}),
      ...(this.options.idleTimeoutMs !== undefined ? { idleTimeoutMs: this.options.idleTimeoutMs } : {}),
    });
    this.nodesById.set(id, node);
    await this.run(node.start());
    if (opts.wait !== false) await this.stable();
    return node;
  }

  /** kill -9: the node stops at once; nothing is persisted or released. */
  crash(id: string): void {
    const node = this.node(id);
    this.network.isolate(id);
    this.network.crash(id);
    node.crash();
    this.crashed.add(id);
  }
  /** Starts a crashed node again with the same id (fresh memory, same durable log). */
  async restart(id: string): Promise<ChorusNode> {
    if (!this.crashed.has(id)) throw new Error(`node ${id} is not crashed`);
    return this.addNode({ id });
  }
  /** Cuts one node off from everyone, the broker included. */
  isolate(id: string): void {
    this.network.isolate(id);
  }
  /** Splits nodes into groups; the first group keeps the broker (KV, log). */
  partition(groups: string[][]): void {
    this.network.partition(groups);
  }
  /** Ends every partition (crashed nodes stay down). */
  heal(): void {
    this.network.heal();
    for (const id of this.crashed) this.network.isolate(id);
  }
  /** Sets network faults (delay range, drop and duplicate rates). */
  setFaults(f: Partial<NetworkFaults>): void {
    this.network.faults = { ...this.network.faults, ...f };
  }

  /** A ref routed through a running node (the first, or `via`). */
  ref(type: string, key: string, via?: string): ActorRef {
    return this.node(via ?? this.nodeIds[0]!).ref(type, key);
  }
  /** A probe: an actor that records what it is sent. */
  probe(name = `probe-${this.probes.size + 1}`): TestProbe {
    return new TestProbe(this, name, this.probes);
  }

  /** Moves virtual time forward, firing due timers in order. */
  advance(ms: number): Promise<void> {
    return this.clock.advance(ms);
  }
  /** Drives virtual time until `p` settles (at most `maxMs` of virtual time), then returns its result. */
  async run<T>(p: Promise<T>, maxMs = 60_000): Promise<T> {
    let done = false;
    const tracked = p.finally(() => { done = true; });
    tracked.catch(() => {});
    const until = this.clock.now() + maxMs;
    while (!done && this.clock.now() < until) await this.clock.advance(5);
    if (!done) throw new Error(`still pending after ${maxMs} ms of virtual time (seed ${this.seed})`);
    return tracked;
  }
  /** Asks through `ref` (driving virtual time) and checks the answer deep-equals `expected`; throws with the seed otherwise. */
  async askExpect<T>(ref: ActorRef, msg: unknown, expected: T): Promise<T> {
    const got = await this.run(ref.ask<T>(msg));
    const a = JSON.stringify(got);
    const b = JSON.stringify(expected);
    if (a !== b) throw new Error(`ask ${ref} ${JSON.stringify(msg)}: expected ${b}, got ${a} (seed ${this.seed})`);
    return got;
  }
  /** Advances time in small steps until `cond` is truthy; throws with the seed after `timeoutMs` of virtual time. */
  async until(cond: () => unknown, opts: { timeoutMs?: number; stepMs?: number; what?: string } = {}): Promise<void> {
    const end = this.clock.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      if (await cond()) return;
      if (this.clock.now() >= end) throw new Error(`timed out waiting for ${opts.what ?? 'condition'} (seed ${this.seed})`);
      await this.clock.advance(opts.stepMs ?? 10);
    }
  }
  /** Retries an assertion, advancing time, until it passes; rethrows its last error (with the seed) on timeout. */
  async eventually(assertion: () => unknown, opts: { timeoutMs?: number; stepMs?: number } = {}): Promise<void> {
    let last: unknown;
    try {
      await this.until(async () => {
        try {
          await assertion();
          return true;
        } catch (err) {
          last = err;
          return false;
        }
      }, opts);
    } catch {
      const e = last instanceof Error ? last : new Error(String(last));
      e.message += ` (seed ${this.seed})`;
      throw e;
    }
  }
  /** Waits until every running, reachable node acts on the same table, whose members are exactly those nodes. */
  stable(timeoutMs = 30_000): Promise<void> {
    return this.until(() => {
      const ids = this.nodeIds.filter((id) => this.network.canReachServer(id)).sort();
      const tables = ids.map((id) => this.node(id).actors.table);
      const t = tables[0];
      if (!t) return false;
      return tables.every((x) => x.epoch === t.epoch) && t.members.map((m) => m.id).sort().join() === ids.join();
    }, { timeoutMs, what: 'a stable placement table' });
  }

  /** Throws if any invariant was broken so far (single activation). */
  checkInvariants(): void {
    if (this.violationList.length) {
      const v = this.violationList[0]!;
      throw new Error(`single activation broken: ${v.key} live on ${v.nodes.join(' and ')} at t=${v.at} (${this.violationList.length} violations; seed ${this.seed})`);
    }
  }

  /** Stops every running node. */
  async stop(): Promise<void> {
    for (const id of this.nodeIds) await this.run(this.node(id).stop()).catch(() => {});
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
