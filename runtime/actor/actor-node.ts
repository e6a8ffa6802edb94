import { codec as defaultCodec, type Codec } from '../codec.ts';
import { systemClock, type Clock, type TimerHandle } from '../clock.ts';
import {
  AskTimeoutError, BadMessageError, ChorusError, NoOwnerError, NodeUnavailableError, NotOwnerError, UnknownActorTypeError,
  fromWire, toChorusError,
} from '../errors.ts';
import { idString, type ActorId } from '../ids.ts';
import type { EventLog } from '../log/event-log.ts';
import type { SnapshotStore } from '../log/snapshot-store.ts';
import { noopMetrics, silentLogger, type Counter, type Gauge, type Histogram, type Logger, type Metrics } from '../metrics.ts';
import { HashRing } from '../placement/hash-ring.ts';
import { EMPTY_TABLE, type PlacementTable } from '../placement/placement-table.ts';
import type { Disposable, Transport } from '../transport/transport.ts';
import { Activation, type ActivationHost, type MailItem } from './activation.ts';
import { ActorTimers } from './actor-timers.ts';
import type { ActorContext, ActorType } from './actor.ts';
import { ActorRef, type AskOptions, type RefTarget } from './actor-ref.ts';
import { ASK, RELEASE, TELL, isEnvelope, type Envelope, type Reply } from './envelope.ts';

/** Sees every activation start and end; the testing harness checks single activation with it. */
export interface ActivationObserver {
  activated(nodeId: string, key: string): void;
  deactivated(nodeId: string, key: string): void;
}

/** Settings of one node. Every duration is in milliseconds. */
export interface ActorNodeOptions {
  /** Unique id of this node in the cluster. */
  readonly nodeId: string;
  readonly transport: Transport;
  readonly log: EventLog;
  readonly snapshots: SnapshotStore;
  /** The actor types this node can host (every node of a cluster registers the same ones). */
  readonly types: readonly ActorType[];
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** Default: msgpackr with the shared structures. */
  readonly codec?: Codec;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /** Default deadline of an ask, retries included. Default 5000. */
  readonly askTimeoutMs?: number;
  /** Idle time before an actor is passivated. Default 300000 (5 min). */
  readonly idleTimeoutMs?: number;
  /** How long a new owner waits for the previous owner to release a moved actor. Default 2000. */
  readonly handoffTimeoutMs?: number;
  /**
   * How long after a RELEASE request a previous owner that did not answer it
   * may still hold the actor: its cluster lease (fence-after time plus the
   * check interval). A new owner waits that long from its request before
   * activating, so a cut-off owner has fenced itself first. Default 0 (the
   * bare runtime has no lease; ChorusNode passes its membership timing).
   */
  readonly prevOwnerLeaseMs?: number;
  /** Round-trip local messages through the codec, so tests catch messages that could not cross a process. Default false. */
  readonly strictSerialization?: boolean;
  readonly observer?: ActivationObserver;
  /** Checked on every delivery: false means the node's cluster lease lapsed (e.g. it was paused); it fences at once. */
  readonly leaseValid?: () => boolean;
  /**
   * Whether a node that is no longer in the placement table is draining:
   * alive and handing its actors off. A new owner asks such a previous owner
   * to release an actor before activating it, as it asks a member (a crashed
   * node is not asked: nobody would answer). Default: no node is.
   */
  readonly isDraining?: (nodeId: string) => boolean;
}

const MAX_HOPS = 3;
/** A handoff or an activation at least this long is logged (warn): asks to the actor wait for it. */
const SLOW_ACTIVATION_MS = 1000;

/**
 * A node of the actor system: hosts activations of the actors it owns by the
 * placement table, routes messages for the others, and refuses work it does
 * not own (saying where to go). Placement changes come in through
 * `setTable`; the node hands off actors it no longer owns.
 */
export class ActorNode implements RefTarget {
  readonly nodeId: string;
  readonly clock: Clock;
  private readonly codec: Codec;
  private readonly logger: Logger;
  private readonly types = new Map<string, ActorType>();
  private readonly activations = new Map<string, Activation>();
  /** Actors released to a new owner at an epoch this node has not seen yet: do not reactivate them before it. */
  private readonly released = new Map<string, number>();
  private tableValue: PlacementTable = EMPTY_TABLE;
  private ring: HashRing = HashRing.fromSnapshot(EMPTY_TABLE);
  private prevRing: HashRing | undefined;
  private tableWaiters: Array<() => void> = [];
  private listener: Disposable | undefined;
  private sweepTimer: TimerHandle | undefined;
  /** @internal Every actor timer of this node (ctx.setTimer) on one clock timer. */
  readonly timers: ActorTimers<Activation>;
  private fencedReason: string | undefined;
  private stopped = false;
  private readonly askTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly handoffTimeoutMs: number;
  private readonly m: {
    activations: Counter; passivations: Counter; turnFailures: Counter; asks: Counter; active: Gauge; askSeconds: Histogram; handoffs: Counter; epoch: Gauge; fenced: Gauge;
  };

  constructor(private readonly opts: ActorNodeOptions) {
    this.nodeId = opts.nodeId;
    this.clock = opts.clock ?? systemClock;
    this.codec = opts.codec ?? defaultCodec;
    this.logger = (opts.logger ?? silentLogger).child({ node: opts.nodeId });
    this.askTimeoutMs = opts.askTimeoutMs ?? 5000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 300_000;
    this.handoffTimeoutMs = opts.handoffTimeoutMs ?? 2000;
    this.timers = new ActorTimers<Activation>(this.clock, (a, msg) => {
      if (a.accepting) a.enqueue({ msg, meta: { kind: 'tell', senderNode: this.nodeId } });
    });
    for (const t of opts.types) {
      if (!/^[A-Za-z0-9_-]+$/.test(t.name)) throw new TypeError(`actor type name ${JSON.stringify(t.name)} must be letters, digits, - and _`);
      if (this.types.has(t.name)) throw new TypeError(`actor type ${t.name} registered twice`);
      this.types.set(t.name, t);
    }
    const m = opts.metrics ?? noopMetrics;
    this.m = {
      activations: m.counter('chorus_actor_activations_total', 'Actor activations', ['type']),
      passivations: m.counter('chorus_actor_deactivations_total', 'Actor deactivations by reason', ['type', 'reason']),
      turnFailures: m.counter('chorus_actor_turn_failures_total', 'Turns that threw', ['type', 'code']),
      asks: m.counter('chorus_asks_total', 'Asks by outcome', ['outcome']),
      active: m.gauge('chorus_actors_active', 'Live activations per type', ['type']),
      askSeconds: m.histogram('chorus_ask_duration_seconds', 'Ask latency as seen by the caller', [], [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]),
      handoffs: m.counter('chorus_handoffs_total', 'Actors handed off to another node on a placement change', []),
      epoch: m.gauge('chorus_placement_epoch', 'Placement epoch this node acts on', []),
      fenced: m.gauge('chorus_node_fenced', '1 while this node refuses actor work (lost its heartbeat), else 0', []),
    };
    this.m.fenced.set(0);
  }

  /** Starts listening for node messages and the passivation sweep. */
  async start(): Promise<void> {
    this.listener = await this.opts.transport.listen(this.nodeId, (data, reply) => this.onInbound(data, reply));
    this.scheduleSweep();
  }

  /** The placement table this node acts on. */
  get table(): PlacementTable {
    return this.tableValue;
  }
  /** True while the node refuses actor work (lost its lease, or told to). */
  get fenced(): boolean {
    return this.fencedReason !== undefined;
  }
  /**
   * Keys (`type/key`) of the live activations on this node: past handoff,
   * loading or running turns, or persisting on their way out. What the
   * single-activation checks count.
   */
  activeKeys(): string[] {
    const out: string[] = [];
    for (const [k, a] of this.activations) if (a.live) out.push(k);
    return out;
  }
  /**
   * Keys of activations created here but not live yet: waiting for the
   * previous owner to release the actor (handoff). Their messages are queued.
   */
  pendingKeys(): string[] {
    const out: string[] = [];
    for (const [k, a] of this.activations) if (!a.live) out.push(k);
    return out;
  }
  /** Number of live activations, optionally of one type. */
  activeCount(type?: string): number {
    if (!type) return this.activations.size;
    let n = 0;
    for (const a of this.activations.values()) if (a.id.type === type) n++;
    return n;
  }
  /** The node that owns `id` by this node's table, or undefined when nobody can. */
  ownerOf(id: ActorId): string | undefined {
    return this.ring.owner(idString(id));
  }

  /** A ref to a virtual actor. Activates nothing. */
  ref(type: string, key: string): ActorRef {
    if (!this.types.has(type)) throw new UnknownActorTypeError(type);
    return new ActorRef({ type, key }, this);
  }

  /**
   * Adopts a newer placement table. Older or equal epochs are ignored. Actors
   * this node no longer owns are handed off: current turn finishes, state is
   * persisted, queued messages are routed to the new owner.
   */
  setTable(table: PlacementTable): void {
    if (table.epoch <= this.tableValue.epoch) return;
    this.tableValue = table;
    this.ring = HashRing.fromSnapshot(table);
    this.prevRing = table.prev ? HashRing.fromSnapshot(table.prev) : undefined;
    this.m.epoch.set(table.epoch);
    for (const [k, e] of this.released) if (e <= table.epoch) this.released.delete(k);
    for (const a of this.activations.values()) {
      if (a.accepting && this.ring.owner(a.key) !== this.nodeId) {
        this.m.handoffs.inc();
        void a.deactivate('moved');
      }
    }
    for (const w of this.tableWaiters.splice(0)) w();
  }

  /** Stops taking actor work (lost the cluster lease): every activation stops; state is persisted if possible. */
  fence(reason: string): void {
    if (this.fencedReason === undefined) this.logger.warn({ reason }, 'fenced: refusing actor work');
    this.fencedReason = reason;
    this.m.fenced.set(1);
    // Drop at once, without persisting: another node may take these actors
    // over as soon as the cluster declares this one dead. A turn still running
    // can only finish into the log if nobody wrote since (log fencing).
    this.dropAll(reason);
  }
  /**
   * Fences now if the cluster lease has lapsed (what every delivery checks
   * first); true while this node may run actors. Whoever reports on the
   * node's actors calls it first: a node that just woke from a pause must not
   * report activations it would refuse to run.
   */
  checkLease(): boolean {
    if (this.fencedReason === undefined && this.opts.leaseValid && !this.opts.leaseValid()) this.fence('cluster lease lapsed (paused or cut off)');
    return this.fencedReason === undefined;
  }
  /** Takes actor work again (lease regained). */
  unfence(): void {
    if (this.fencedReason !== undefined) this.logger.info({}, 'unfenced');
    this.fencedReason = undefined;
    this.m.fenced.set(0);
  }

  /** Deactivates every actor (persisting), then stops listening. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.fencedReason ??= 'stopping';
    await Promise.all([...this.activations.values()].map((a) => a.deactivate('stop')));
    this.stopped = true;
    if (this.sweepTimer) this.clock.clearTimeout(this.sweepTimer);
    this.timers.stop();
    await this.listener?.dispose();
  }

  /** Simulates a crash: drops every activation without persisting and stops listening. For the testing harness. */
  crash(): void {
    this.stopped = true;
    this.fencedReason = 'crashed';
    if (this.sweepTimer) this.clock.clearTimeout(this.sweepTimer);
    this.timers.stop();
    this.dropAll('crashed');
    void this.listener?.dispose();
  }

  private dropAll(reason: string): void {
    for (const a of [...this.activations.values()]) {
      const left = a.kill();
      this.removeActivation(a, reason);
      for (const item of left) item.reject?.(new NodeUnavailableError(this.nodeId, reason));
    }
  }

  /** Waits until the table epoch is at least `epoch`, or `ms` passed. */
  private waitForTable(epoch: number, ms: number): Promise<void> {
    if (this.tableValue.epoch >= epoch) return Promise.resolve();
    return new Promise((resolve) => {
      const t = this.clock.setTimeout(done, ms);
      const self = this;
      function done() {
        self.clock.clearTimeout(t);
        resolve();
      }
      this.tableWaiters.push(done);
    });
  }

  // ---- sending ---------------------------------------------------------

  /** @internal RefTarget */
  tellActor(id: ActorId, msg: unknown): void {
    this.route({ k: TELL, t: id.type, y: id.key, m: msg, e: this.tableValue.epoch, s: this.nodeId, h: 0 });
  }

  /** @internal RefTarget */
  async askActor<R>(id: ActorId, msg: unknown, opts: AskOptions = {}): Promise<R> {
    const timeoutMs = opts.timeoutMs ?? this.askTimeoutMs;
    const started = this.clock.now();
    const deadline = started + timeoutMs;
    const target = idString(id);
    let attempt = 0;
    try {
      for (;;) {
        const remaining = deadline - this.clock.now();
        if (remaining <= 0) throw new AskTimeoutError(target, timeoutMs);
        const owner = this.ring.owner(target);
        let retryAfterEpoch = 0;
        try {
          if (owner === undefined) throw new NoOwnerError(target);
          if (owner === this.nodeId) {
            const v = await this.askLocal(id, msg, remaining, target, timeoutMs);
            this.m.asks.inc({ outcome: 'ok' });
            return v as R;
          }
          const env: Envelope = { k: ASK, t: id.type, y: id.key, m: msg, e: this.tableValue.epoch, s: this.nodeId, h: 0 };
          const bytes = await this.opts.transport.request(owner, this.codec.encode(env), remaining);
          const reply = this.codec.decode(bytes) as Reply;
          if (reply.ok) {
            this.m.asks.inc({ outcome: 'ok' });
            return reply.v as R;
          }
          const err = fromWire(reply.err);
          if (err.code === 'CHORUS_NOT_OWNER') retryAfterEpoch = reply.e;
          throw err;
        } catch (err) {
          const e = toChorusError(err, target);
          if (!isRetriable(e)) throw e;
          attempt++;
          this.m.asks.inc({ outcome: 'retry' });
          // A newer table exists somewhere: wait for ours to catch up; else back off.
          const backoff = Math.min(25 * 2 ** Math.min(attempt, 5), 500);
          const wait = Math.min(backoff, Math.max(0, deadline - this.clock.now()));
          if (retryAfterEpoch > this.tableValue.epoch) await this.waitForTable(retryAfterEpoch, wait);
          else await this.sleep(wait);
        }
      }
    } catch (err) {
      const e = toChorusError(err, target);
      this.m.asks.inc({ outcome: e.code === 'CHORUS_ASK_TIMEOUT' ? 'timeout' : 'error' });
      throw e;
    } finally {
      this.m.askSeconds.observe((this.clock.now() - started) / 1000);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.clock.setTimeout(r, ms));
  }

  /**
   * An ask to an actor this node owns, failing with AskTimeoutError after
   * `ms`: one promise and one timer per ask (the edge's every request is
   * one). The settle functions are passed as arguments, not written as
   * properties of an object literal: the TypeScript loader (esbuild's
   * keepNames) names every such function when it is created, a
   * defineProperty per ask.
   */
  private askLocal(id: ActorId, msg: unknown, ms: number, target: string, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const strict = this.opts.strictSerialization;
      const t = this.clock.setTimeout(() => reject(new AskTimeoutError(target, timeoutMs)), ms);
      this.deliverLocal(id, askItem(
        strict ? this.codec.decode(this.codec.encode(msg)) : msg,
        this.nodeId,
        (v) => {
          this.clock.clearTimeout(t);
          resolve(strict ? this.codec.decode(this.codec.encode(v)) : v);
        },
        (e) => {
          this.clock.clearTimeout(t);
          reject(e);
        },
      ), this.tableValue.epoch);
    });
  }

  /** Routes a tell by the table: local delivery, or one send to the owner. */
  private route(env: Envelope): void {
    const id = { type: env.t, key: env.y };
    const owner = this.ring.owner(idString(id));
    if (owner === undefined) {
      this.logger.warn({ target: idString(id) }, 'tell dropped: no owner');
      return;
    }
    if (owner === this.nodeId) {
      const m = this.opts.strictSerialization ? this.codec.decode(this.codec.encode(env.m)) : env.m;
      this.deliverLocal(id, { msg: m, meta: { kind: 'tell', senderNode: env.s } }, env.e);
    } else {
      this.opts.transport.send(owner, this.codec.encode({ ...env, e: Math.max(env.e, this.tableValue.epoch) }));
    }
  }

  // ---- receiving ---------------------------------------------------------

  private onInbound(data: Uint8Array, reply: ((d: Uint8Array) => void) | undefined): void {
    let env: Envelope;
    try {
      const decoded = this.codec.decode(data);
      if (!isEnvelope(decoded)) throw new BadMessageError('not an envelope');
      env = decoded;
    } catch (err) {
      // garbage on the node subject: answer if we can, never crash
      reply?.(this.encodeReply({ ok: false, err: toChorusError(err).toJSON(), e: this.tableValue.epoch }));
      return;
    }
    const id = { type: env.t, key: env.y };
    if (env.k === RELEASE) {
      this.release(id, env.e).then(
        () => reply?.(this.encodeReply({ ok: true, v: null, e: this.tableValue.epoch })),
        (err) => reply?.(this.encodeReply({ ok: false, err: toChorusError(err).toJSON(), e: this.tableValue.epoch })),
      );
      return;
    }
    if (env.k === ASK) {
      if (!reply) return;
      this.deliverLocal(id, askItem(
        env.m,
        env.s,
        (v) => reply(this.encodeReply({ ok: true, v, e: this.tableValue.epoch })),
        (e) => reply(this.encodeReply({ ok: false, err: e.toJSON(), e: this.tableValue.epoch })),
      ), env.e);
      return;
    }
    // tell
    this.deliverLocal(id, { msg: env.m, meta: { kind: 'tell', senderNode: env.s } }, env.e, env.h);
  }

  private encodeReply(r: Reply): Uint8Array {
    try {
      return this.codec.encode(r);
    } catch (err) {
      return this.codec.encode({ ok: false, err: toChorusError(err).toJSON(), e: this.tableValue.epoch });
    }
  }

  /**
   * Delivers to a local activation if this node owns the actor; otherwise
   * refuses an ask with NotOwner (the caller retries at the owner) and
   * forwards a tell (bounded hops).
   */
  private deliverLocal(id: ActorId, item: MailItem, senderEpoch: number, hops = 0): void {
    const key = idString(id);
    if (!this.checkLease()) {
      if (item.reject) item.reject(new NodeUnavailableError(this.nodeId, this.fencedReason ?? 'fenced'));
      return;
    }
    const type = this.types.get(id.type);
    if (!type) {
      item.reject?.(new UnknownActorTypeError(id.type));
      return;
    }
    if (senderEpoch > this.tableValue.epoch && !item.waitedForTable) {
      // The sender acts on a newer table than ours: buffer until we have it
      // (or a short while passed), rather than act as an owner we may no longer be.
      item.waitedForTable = true;
      void this.waitForTable(senderEpoch, this.handoffTimeoutMs).then(() => this.deliverLocal(id, item, senderEpoch, hops));
      return;
    }
    const owner = this.ring.owner(key);
    const releasedUntil = this.released.get(key);
    if (owner !== this.nodeId || (releasedUntil !== undefined && releasedUntil > this.tableValue.epoch)) {
      const hint = owner === this.nodeId ? undefined : owner;
      if (item.reject) {
        item.reject(new NotOwnerError(key, senderEpoch, Math.max(this.tableValue.epoch, releasedUntil ?? 0), hint));
      } else if (hint && hops < MAX_HOPS) {
        this.opts.transport.send(hint, this.codec.encode({ k: TELL, t: id.type, y: id.key, m: item.msg, e: this.tableValue.epoch, s: item.meta.senderNode, h: hops + 1 } satisfies Envelope));
      } else {
        this.logger.warn({ target: key, hops }, 'tell dropped: owner unknown or too many hops');
      }
      return;
    }
    let a = this.activations.get(key);
    if (!a || !a.accepting) {
      if (a) {
        // an activation is on its way out (passivation or log conflict); queue behind it
        const old = a;
        void old.deactivate('replaced').then(() => this.deliverLocal(id, item, senderEpoch, hops));
        return;
      }
      a = new Activation(id, type, this.host, this.clock.now());
      this.activations.set(key, a);
      this.m.activations.inc({ type: id.type });
      this.m.active.inc({ type: id.type });
    }
    a.enqueue(item);
  }

  /** Handoff, old owner's side: deactivate (persisting) and refuse to reactivate before `epoch`. */
  private async release(id: ActorId, epoch: number): Promise<void> {
    const key = idString(id);
    if (epoch > this.tableValue.epoch) this.released.set(key, Math.max(epoch, this.released.get(key) ?? 0));
    const a = this.activations.get(key);
    if (a && this.ring.owner(key) !== this.nodeId || a && epoch > this.tableValue.epoch) await a.deactivate('moved');
  }

  private readonly host: ActivationHost = {
    makeContext: (a) => this.makeContext(a),
    awaitHandoff: async (id) => {
      // Handoff, new owner's side: if the actor had another owner in the
      // previous table and that node is still a member (or is draining out of
      // the cluster), ask it to release first, so the two never run the
      // actor at once.
      const key = idString(id);
      const prevOwner = this.prevRing?.owner(key);
      if (!prevOwner || prevOwner === this.nodeId) return;
      if (!this.tableValue.members.some((m) => m.id === prevOwner) && !this.opts.isDraining?.(prevOwner)) return;
      const env: Envelope = { k: RELEASE, t: id.type, y: id.key, m: null, e: this.tableValue.epoch, s: this.nodeId, h: 0 };
      const alive = () => this.tableValue.members.some((m) => m.id === prevOwner) || Boolean(this.opts.isDraining?.(prevOwner));
      const started = this.clock.now();
      let askedAt = started;
      try {
        // A previous owner that is alive but slow (a busy or draining node) still runs the actor: ask again while it
        // is alive rather than activate beside it; give up only once it is gone (or after a few tries).
        for (let attempt = 1; ; attempt++) {
          try {
            await this.opts.transport.request(prevOwner, this.codec.encode(env), this.handoffTimeoutMs);
            return;
          } catch (err) {
            if (attempt >= 4 || !alive()) throw err;
            askedAt = this.clock.now();
          }
        }
      } catch (err) {
        // The previous owner is gone or cut off: it fences itself when its lease lapses, but until then it may
        // still run the actor (a cut-off node cannot hear this request, and failing fast proves nothing), so wait
        // out its lease before activating here. Found by the single-activation property test (isolate + join).
        this.logger.info({ target: key, prevOwner, err: (err as Error).message }, 'handoff: previous owner did not answer; waiting out its lease');
        const left = askedAt + (this.opts.prevOwnerLeaseMs ?? 0) - this.clock.now();
        if (left > 0) await new Promise<void>((r) => this.clock.setTimeout(r, left));
      } finally {
        // asks to the actor wait meanwhile: a slow handoff is what an ask timeout on a moving cluster comes from
        const tookMs = this.clock.now() - started;
        if (tookMs >= SLOW_ACTIVATION_MS) this.logger.warn({ target: key, prevOwner, tookMs }, 'slow handoff');
      }
    },
    onStopped: (a, leftover) => {
      this.removeActivation(a, a === this.activations.get(a.key) ? 'stopped' : 'stale');
      for (const item of leftover) this.deliverLocal(a.id, item, this.tableValue.epoch);
    },
    onTurnFailed: (a, err) => {
      const e = toChorusError(err, a.key);
      this.m.turnFailures.inc({ type: a.id.type, code: e.code });
      if (!(err instanceof ChorusError)) this.logger.error({ target: a.key, err: e.message }, 'actor turn failed');
    },
    onActivated: (a, tookMs) => {
      if (tookMs >= SLOW_ACTIVATION_MS) this.logger.warn({ target: a.key, tookMs }, 'slow activation');
    },
    beforeActivate: (a) => {
      a.live = true;
      this.opts.observer?.activated(this.nodeId, a.key);
    },
    cancelTimers: (a) => this.timers.cancelAll(a),
  };

  private removeActivation(a: Activation, reason: string): void {
    if (this.activations.get(a.key) !== a) return;
    this.activations.delete(a.key);
    this.m.active.dec({ type: a.id.type });
    this.m.passivations.inc({ type: a.id.type, reason });
    if (a.live) this.opts.observer?.deactivated(this.nodeId, a.key);
    a.live = false;
  }

  private makeContext(a: Activation): ActorContext {
    return new NodeActorContext(this, a, this.opts, this.logger, this.codec);
  }

  private scheduleSweep(): void {
    const every = Math.max(10, Math.min(this.idleTimeoutMs / 4, 30_000));
    this.sweepTimer = this.clock.setTimeout(() => {
      if (this.stopped) return;
      const now = this.clock.now();
      for (const a of this.activations.values()) {
        const idle = a.type.idleTimeoutMs ?? this.idleTimeoutMs;
        if (a.accepting && a.backlog === 0 && now - a.lastActive >= idle) void a.deactivate('idle');
      }
      this.scheduleSweep();
    }, every);
  }
}

/** The mail item of an ask (its settle functions passed in as arguments: see ActorNode.askLocal). */
function askItem(msg: unknown, senderNode: string, resolve: (v: unknown) => void, reject: (e: ChorusError) => void): MailItem {
  return { msg, meta: { kind: 'ask', senderNode }, resolve, reject };
}

/** Errors after which an ask is tried again (at the owner by the newest table) until its deadline. */
function isRetriable(e: ChorusError): boolean {
  return e.code === 'CHORUS_NOT_OWNER' || e.code === 'CHORUS_NODE_UNAVAILABLE' || e.code === 'CHORUS_NO_OWNER';
}

/**
 * The ActorContext of one activation. Methods live on the prototype and the
 * logger and self ref are made on first use: a node holds one context per
 * live actor (one user actor per connected user), so closures per context
 * were most of its size.
 */
class NodeActorContext implements ActorContext {
  readonly id: ActorId;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly log: EventLog;
  readonly snapshots: SnapshotStore;
  private loggerValue: Logger | undefined;
  private selfRef: ActorRef | undefined;

  constructor(
    private readonly node: ActorNode,
    private readonly a: Activation,
    private readonly opts: ActorNodeOptions,
    private readonly nodeLogger: Logger,
    private readonly codec: Codec,
  ) {
    this.id = a.id;
    this.nodeId = node.nodeId;
    this.clock = node.clock;
    this.log = opts.log;
    this.snapshots = opts.snapshots;
  }

  get logger(): Logger {
    return (this.loggerValue ??= this.nodeLogger.child({ actor: this.a.key }));
  }
  get self(): ActorRef {
    return (this.selfRef ??= new ActorRef(this.a.id, this.node));
  }
  ref(type: string, key: string): ActorRef {
    return this.node.ref(type, key);
  }
  setTimer(name: string, delayMs: number, msg: unknown, opts?: { repeat?: boolean }): void {
    this.node.timers.set(this.a, name, delayMs, msg, opts?.repeat === true);
  }
  cancelTimer(name: string): void {
    this.node.timers.cancel(this.a, name);
  }
  publish(subject: string, value: unknown): void {
    this.opts.transport.publish(subject, this.codec.encode(value));
  }
  passivate(): void {
    this.a.passivateRequested = true;
  }
}
