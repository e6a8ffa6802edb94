import { systemClock, type Clock } from '../../runtime/clock.ts';
import { AskTimeoutError, BackendError, BadMessageError, NodeUnavailableError } from '../../runtime/errors.ts';
import { checkSubject, subjectMatches, type Disposable, type InboundHandler, type Transport } from '../../runtime/transport/transport.ts';

/** Seeded faults applied to every node-to-node and pub/sub message. All default to none. */
export interface NetworkFaults {
  /** Delay of each message, uniform in [minDelayMs, maxDelayMs]. Different delays reorder messages. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Probability that a message is lost. */
  dropRate: number;
  /** Probability that a message is delivered twice. */
  duplicateRate: number;
}

const NO_FAULTS: NetworkFaults = { minDelayMs: 0, maxDelayMs: 0, dropRate: 0, duplicateRate: 0 };

/** The group of the in-memory "broker" (KV, log): clients outside it cannot reach them. */
export const SERVER_GROUP = 'main';

/**
 * An in-process network of clients (one per node), with the broker's
 * reachability rules and seeded faults. It is both the embedded profile's
 * transport and the testing harness's simulated network: a test can crash a
 * client, isolate it, partition the clients into groups and heal them.
 */
export class MemoryNetwork {
  readonly clock: Clock;
  /** Current faults; mutate freely between steps. */
  faults: NetworkFaults;
  private readonly rng: () => number;
  private readonly listeners = new Map<string, InboundHandler>();
  /**
   * Subscriptions without wildcards, by subject, each subject's as a linked
   * list: a publish looks up its subject instead of matching every pattern,
   * and a subject with one subscriber (an edge's per-user subject: one per
   * connected user) costs its Sub and a map entry, no Set.
   */
  private readonly exact = new Map<string, Sub>();
  /** Subscriptions with `*` or `>`: matched one by one. */
  private readonly wild = new Set<Sub>();
  private readonly group = new Map<string, string>();
  private readonly healHooks = new Set<() => void>();
  /** Messages delivered, dropped and duplicated so far (for test reports). */
  readonly stats = { delivered: 0, dropped: 0, duplicated: 0 };

  /** @param opts.rng a seeded random source in [0,1) (default Math.random) */
  constructor(opts: { clock?: Clock; rng?: () => number; faults?: Partial<NetworkFaults> } = {}) {
    this.clock = opts.clock ?? systemClock;
    this.rng = opts.rng ?? Math.random;
    this.faults = { ...NO_FAULTS, ...opts.faults };
  }

  /** A transport bound to one client (node) id. */
  transport(clientId: string): Transport {
    return new MemoryTransport(this, clientId);
  }

  /** The partition group of a client ('main' unless isolated or partitioned). */
  groupOf(clientId: string): string {
    return this.group.get(clientId) ?? SERVER_GROUP;
  }
  /** True when `a` can talk to `b` (same partition group). */
  canReach(a: string, b: string): boolean {
    return this.groupOf(a) === this.groupOf(b);
  }
  /** True when the client can reach the broker (KV, log). */
  canReachServer(clientId: string): boolean {
    return this.groupOf(clientId) === SERVER_GROUP;
  }
  /** Throws the error a driver would when the broker is unreachable. */
  guardServer(clientId: string, what: string): void {
    if (!this.canReachServer(clientId)) throw new BackendError('memory', `${clientId} cannot reach the ${what} (partitioned)`);
  }
  /** Cuts one client off from everyone, broker included. */
  isolate(clientId: string): void {
    this.group.set(clientId, `isolated:${clientId}`);
  }
  /** Splits clients into groups; the first group keeps the broker. Clients not named stay with the broker. */
  partition(groups: readonly (readonly string[])[]): void {
    groups.forEach((g, i) => g.forEach((c) => this.group.set(c, i === 0 ? SERVER_GROUP : `group:${i}`)));
  }
  /** Ends every partition. */
  heal(): void {
    this.group.clear();
    for (const h of [...this.healHooks]) h();
  }
  /** Registers a callback run on heal (watchers flush what they buffered). */
  onHeal(fn: () => void): Disposable {
    this.healHooks.add(fn);
    return { dispose: () => void this.healHooks.delete(fn) };
  }
  /** Drops every listener and subscription of a client, as if its process died. */
  crash(clientId: string): void {
    this.listeners.delete(clientId);
    for (const head of [...this.exact.values()]) for (let s: Sub | undefined = head; s; s = s.next) if (s.client === clientId) this.unindex(s);
    for (const s of this.wild) if (s.client === clientId) this.unindex(s);
  }

  /** Schedules a delivery under the current faults. Returns false when the message was dropped. */
  private deliver(fn: () => void): boolean {
    const f = this.faults;
    if (f.dropRate > 0 && this.rng() < f.dropRate) {
      this.stats.dropped++;
      return false;
    }
    const copies = f.duplicateRate > 0 && this.rng() < f.duplicateRate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const delay = f.maxDelayMs > 0 ? f.minDelayMs + Math.floor(this.rng() * (f.maxDelayMs - f.minDelayMs + 1)) : f.minDelayMs;
      this.stats.delivered++;
      if (delay === 0 && this.clock === systemClock) queueMicrotask(() => runSafely(fn));
      else this.clock.setTimeout(() => runSafely(fn), delay);
    }
    return true;
  }

  /** @internal */
  _listen(clientId: string, handler: InboundHandler): Disposable {
    if (this.listeners.has(clientId)) throw new Error(`${clientId} is already listening`);
    this.listeners.set(clientId, handler);
    return { dispose: () => { if (this.listeners.get(clientId) === handler) this.listeners.delete(clientId); } };
  }
  /** @internal */
  _send(from: string, to: string, data: Uint8Array, reply?: (d: Uint8Array) => void): 'sent' | 'no-responders' | 'unreachable' {
    if (!this.canReachServer(from)) return 'unreachable';
    if (!this.listeners.has(to) || !this.canReachServer(to)) return 'no-responders';
    const copy = data.slice();
    this.deliver(() => {
      const h = this.listeners.get(to);
      if (!h || !this.canReach(from, to)) return;
      let replied = false;
      h(copy, reply && ((d) => {
        if (replied) return;
        replied = true;
        const r = d.slice();
        this.deliver(() => { if (this.canReach(from, to)) reply(r); });
      }));
    });
    return 'sent';
  }
  /** @internal */
  _publish(from: string, subject: string, data: Uint8Array): void {
    if (!this.canReachServer(from)) return;
    for (let s = this.exact.get(subject); s; s = s.next) this.publishTo(s, from, subject, data);
    for (const s of this.wild) if (subject.startsWith(s.literal) && subjectMatches(s.pattern, subject)) this.publishTo(s, from, subject, data);
  }
  private publishTo(s: Sub, from: string, subject: string, data: Uint8Array): void {
    if (!this.canReach(from, s.client)) return;
    const copy = data.slice();
    this.deliver(() => { if (s.live) s.handler(copy, subject); });
  }
  /** @internal */
  _subscribe(client: string, pattern: string, handler: (d: Uint8Array, s: string) => void): Disposable {
    const s = new Sub(this, client, pattern, handler);
    if (/(^|\.)[*>](\.|$)/.test(pattern)) this.wild.add(s);
    else {
      const head = this.exact.get(pattern);
      if (head) {
        // appended, so subscribers of a subject hear a publish in the order they subscribed
        let last = head;
        while (last.next) last = last.next;
        last.next = s;
        s.prev = last;
      } else this.exact.set(pattern, s);
    }
    return s;
  }
  /** @internal */
  unindex(s: Sub): void {
    if (!s.live) return;
    s.live = false;
    if (this.wild.delete(s)) return;
    if (s.prev) s.prev.next = s.next;
    else if (s.next) this.exact.set(s.pattern, s.next);
    else this.exact.delete(s.pattern);
    if (s.next) s.next.prev = s.prev;
  }
}

/** A throwing handler is its owner's bug; like the NATS client, log-and-continue, never crash the process. */
function runSafely(fn: () => void): void {
  try {
    fn();
  } catch {
    /* handler error */
  }
}

/** One subscription; its own Disposable (no closure per subscription). */
class Sub implements Disposable {
  live = true;
  next: Sub | undefined;
  prev: Sub | undefined;
  /** The pattern up to its first wildcard token: a subject without it cannot match (a cheap test before subjectMatches). */
  readonly literal: string;
  constructor(private readonly net: MemoryNetwork, readonly client: string, readonly pattern: string, readonly handler: (d: Uint8Array, s: string) => void) {
    const tokens = pattern.split('.');
    const w = tokens.findIndex((t) => t === '*' || t === '>');
    this.literal = w < 0 ? pattern : tokens.slice(0, w).map((t) => `${t}.`).join('');
  }
  dispose(): void {
    this.net.unindex(this);
  }
}

/** One client's view of a MemoryNetwork, implementing the Transport port. */
export class MemoryTransport implements Transport {
  private closed = false;
  private readonly owned = new Set<Disposable>();
  private readonly pending = new Set<(e: Error) => void>();
  constructor(private readonly net: MemoryNetwork, readonly clientId: string) {}

  async listen(nodeId: string, handler: InboundHandler): Promise<Disposable> {
    if (this.closed) throw new NodeUnavailableError(this.clientId, 'transport closed');
    checkSubject(nodeId, false);
    if (nodeId.includes('.')) throw new BadMessageError('node id must be one subject token', { nodeId });
    const d = this.net._listen(nodeId, handler);
    this.owned.add(d);
    return d;
  }
  send(nodeId: string, data: Uint8Array): void {
    if (!this.closed) this.net._send(this.clientId, nodeId, data);
  }
  request(nodeId: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new NodeUnavailableError(this.clientId, 'transport closed'));
      let done = false;
      const abort = (e: Error) => {
        if (done) return;
        done = true;
        this.net.clock.clearTimeout(timer);
        this.pending.delete(abort);
        reject(e);
      };
      const timer = this.net.clock.setTimeout(() => abort(new AskTimeoutError(`node ${nodeId}`, timeoutMs)), timeoutMs);
      this.pending.add(abort);
      const outcome = this.net._send(this.clientId, nodeId, data, (reply) => {
        if (done) return;
        done = true;
        this.pending.delete(abort);
        this.net.clock.clearTimeout(timer);
        resolve(reply);
      });
      if (outcome === 'no-responders') abort(new NodeUnavailableError(nodeId, 'no responders'));
      // 'unreachable': like a disconnected NATS client, the request just times out
    });
  }
  publish(subject: string, data: Uint8Array): void {
    checkSubject(subject, false);
    if (!this.closed) this.net._publish(this.clientId, subject, data);
  }
  subscribe(subject: string, handler: (data: Uint8Array, subject: string) => void): Disposable {
    if (this.closed) throw new NodeUnavailableError(this.clientId, 'transport closed');
    checkSubject(subject, true);
    const d = this.net._subscribe(this.clientId, subject, handler);
    this.owned.add(d);
    return d;
  }
  /** Called when the network heals (the memory twin of a NATS reconnect). */
  onReconnect(handler: () => void): Disposable {
    const d = this.net.onHeal(handler);
    this.owned.add(d);
    return d;
  }
  async close(): Promise<void> {
    this.closed = true;
    for (const abort of [...this.pending]) abort(new NodeUnavailableError(this.clientId, 'transport closed'));
    for (const d of this.owned) await d.dispose();
    this.owned.clear();
  }
}
