import {
  codec, type Clock, type Disposable, type KvBucket, type KvStore, type Logger, type PlacementMember, type PlacementTable,
  type TimerHandle, type Transport, silentLogger, KvConflictError,
} from '../runtime/index.ts';
import { decodeMember, HEARTBEAT_SUBJECT, MEMBERS_BUCKET, PLACEMENT_BUCKET, type MemberInfo, type MembershipTiming } from './membership.ts';

/** Key of the leader lease and of the placement table in the placement bucket. */
export const LEADER_KEY = 'leader';
export const TABLE_KEY = 'table';

/** One entry of the placement history the supervisor explains itself with. */
export interface PlacementChange {
  readonly epoch: number;
  readonly at: number;
  readonly by: string;
  readonly reason: string;
  readonly members: readonly PlacementMember[];
}

/**
 * Runs on every node. Every node follows the placement table (watch) and the
 * member heartbeats; one of them holds the leader lease (a KV entry renewed
 * with compare-and-set) and is the only one that writes new tables: on join,
 * leave, crash and drain. A leader that stops renewing is replaced after
 * `leaseMs` by whichever node first wins the CAS.
 */
export class PlacementSupervisor {
  private members?: KvBucket;
  private placement?: KvBucket;
  private watches: Disposable[] = [];
  private timer: TimerHandle | undefined;
  private stopped = false;
  /** Last heartbeat seen per member, by this node's clock. */
  private readonly seen = new Map<string, { info: MemberInfo; at: number }>();
  private leader: { node: string; revision: number; changedAt: number } | undefined;
  private table: PlacementTable | undefined;
  private tableRevision = 0;
  private readonly historyList: PlacementChange[] = [];
  private readonly logger: Logger;
  /** When this supervisor started listening to heartbeats. */
  private observingSince = 0;
  /** Incarnations that left gracefully (id -> startedAt): their late heartbeats are ignored. */
  private readonly departed = new Map<string, number>();

  constructor(private readonly o: {
    nodeId: string;
    kv: KvStore;
    transport: Transport;
    clock: Clock;
    timing: MembershipTiming;
    /** Called with every newer table (on every node). */
    onTable: (t: PlacementTable) => void;
    logger?: Logger;
    /** Scale decisions, taken by the leader every `scaleEveryMs` (default 10 s). */
    advisor?: { tick(members: readonly MemberInfo[]): Promise<unknown> };
    scaleEveryMs?: number;
  }) {
    this.logger = (o.logger ?? silentLogger).child({ component: 'supervisor' });
  }

  /** True while this node holds the leader lease. */
  get isLeader(): boolean {
    return this.leader?.node === this.o.nodeId;
  }
  /** The leader as this node last saw it. */
  get leaderId(): string | undefined {
    return this.leader?.node;
  }
  /** The newest table this node has seen. */
  get current(): PlacementTable | undefined {
    return this.table;
  }
  /** Members whose heartbeats this node sees, with the time of the last one. */
  liveMembers(): Array<MemberInfo & { lastSeen: number }> {
    return [...this.seen.values()].map((s) => ({ ...s.info, lastSeen: s.at }));
  }
  /** Table changes this leader made (newest last, bounded). */
  history(): readonly PlacementChange[] {
    return this.historyList;
  }

  async start(): Promise<void> {
    this.observingSince = this.o.clock.now();
    this.members = await this.o.kv.bucket(MEMBERS_BUCKET, { ttlMs: this.o.timing.failureTimeoutMs * 5 });
    this.placement = await this.o.kv.bucket(PLACEMENT_BUCKET);
    // liveness: heartbeats on the transport (see Membership for why not the KV)
    this.watches.push(this.o.transport.subscribe(`${HEARTBEAT_SUBJECT}.*`, (data) => {
      const info = decodeMember(data);
      if (!info || this.departed.get(info.id) === info.startedAt) return;
      this.seen.set(info.id, { info, at: this.o.clock.now() });
    }));
    // the registry: a deleted entry is a graceful leave, acted on at once
    this.watches.push(await this.members.watch('>', (e) => {
      if (e.op !== 'del') return;
      const s = this.seen.get(e.key);
      if (s) this.departed.set(e.key, s.info.startedAt);
      this.seen.delete(e.key);
    }));
    this.watches.push(await this.placement.watch('>', (e) => {
      if (e.key === TABLE_KEY && e.op === 'put' && e.value) this.adoptTable(codec.decode(e.value) as PlacementTable, e.revision);
      if (e.key === LEADER_KEY) this.observeLeader(e.op === 'put' && e.value ? (codec.decode(e.value) as { node: string }).node : undefined, e.revision);
    }));
    await this.refreshTable();
    this.schedule(0);
  }

  /** Re-reads the table from the KV (used before a fenced node takes work again). */
  async refreshTable(): Promise<void> {
    const e = await this.placement!.get(TABLE_KEY);
    if (e) this.adoptTable(codec.decode(e.value) as PlacementTable, e.revision);
  }

  /** Stops following and leading; with `release` (default) a leader gives up its lease at once. */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    for (const w of this.watches) await w.dispose();
    this.watches = [];
    if (this.isLeader && opts.release !== false) {
      // hand the lease over at once instead of letting it run out
      await this.placement?.delete(LEADER_KEY).catch(() => {});
    }
  }

  private adoptTable(t: PlacementTable, revision: number): void {
    if (this.table && t.epoch <= this.table.epoch) return;
    this.table = t;
    this.tableRevision = revision;
    this.o.onTable(t);
  }

  private observeLeader(node: string | undefined, revision: number): void {
    if (!this.leader || this.leader.revision !== revision || this.leader.node !== node) {
      this.leader = node ? { node, revision, changedAt: this.o.clock.now() } : undefined;
    }
  }

  private schedule(ms = this.o.timing.heartbeatMs): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimeout(() => {
      if (this.stopped) return;
      this.tick().catch((err) => this.logger.debug({ err: (err as Error).message }, 'supervisor tick failed')).finally(() => this.schedule());
    }, ms);
  }

  private lastScale = 0;

  private async tick(): Promise<void> {
    await this.lead();
    if (!this.isLeader) return;
    await this.reconcile();
    const now = this.o.clock.now();
    if (this.o.advisor && now - this.lastScale >= (this.o.scaleEveryMs ?? 10_000)) {
      this.lastScale = now;
      const live = this.desiredMembers().map((m) => this.seen.get(m.id)!.info);
      await this.o.advisor.tick(live).catch((err) => this.logger.warn({ err: (err as Error).message }, 'scale advisor failed'));
    }
  }

  /** Acquires, renews or takes over the leader lease. */
  private async lead(): Promise<void> {
    const p = this.placement!;
    const now = this.o.clock.now();
    const value = codec.encode({ node: this.o.nodeId, at: now });
    try {
      const cur = await p.get(LEADER_KEY);
      if (!cur) {
        const rev = await p.create(LEADER_KEY, value);
        this.leader = { node: this.o.nodeId, revision: rev, changedAt: now };
        this.logger.info({}, 'became leader');
        return;
      }
      const holder = (codec.decode(cur.value) as { node: string }).node;
      this.observeLeader(holder, cur.revision);
      if (holder === this.o.nodeId) {
        const rev = await p.update(LEADER_KEY, value, cur.revision);
        this.leader = { node: holder, revision: rev, changedAt: now };
      } else if (now - this.leader!.changedAt >= this.o.timing.leaseMs) {
        // the holder has not renewed for a whole lease: take over
        const rev = await p.update(LEADER_KEY, value, cur.revision);
        this.leader = { node: this.o.nodeId, revision: rev, changedAt: now };
        this.logger.info({ previous: holder }, 'took over leadership');
      }
    } catch (err) {
      if (err instanceof KvConflictError) return; // somebody else won; we learn who through the watch
      if (this.isLeader && now - this.leader!.changedAt >= this.o.timing.leaseMs) this.leader = undefined;
      throw err;
    }
  }

  /**
   * The members the ring should have now: heard from recently, not draining.
   * A supervisor that started listening less than `failureTimeoutMs` ago
   * keeps the current table's members it has not heard from yet (unless they
   * left gracefully): not having heard a node is not evidence it is dead
   * until a full failure timeout has been watched. Without this, a node
   * restarted with the leader lease could publish a table without a live but
   * unheard member, and that member's actors would get a second activation
   * before it fenced itself (found by the single-activation property test).
   */
  desiredMembers(): PlacementMember[] {
    const now = this.o.clock.now();
    const out: PlacementMember[] = [];
    for (const [id, s] of this.seen) {
      if (now - s.at >= this.o.timing.failureTimeoutMs) continue;
      if (s.info.state !== 'active') continue;
      out.push({ id, weight: s.info.weight });
    }
    if (now - this.observingSince < this.o.timing.failureTimeoutMs) {
      for (const m of this.table?.members ?? []) {
        if (!this.seen.has(m.id) && !this.departed.has(m.id)) out.push({ id: m.id, weight: m.weight });
      }
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private async reconcile(): Promise<void> {
    const want = this.desiredMembers();
    const cur = this.table;
    const same = cur && cur.members.length === want.length && cur.members.every((m, i) => m.id === want[i]!.id && m.weight === want[i]!.weight);
    if (same) return;
    const reason = describeChange(cur?.members ?? [], want, this.seen, this.departed);
    const keptOverrides = Object.fromEntries(Object.entries(cur?.overrides ?? {}).filter(([, n]) => want.some((m) => m.id === n)));
    const next: PlacementTable = {
      epoch: (cur?.epoch ?? 0) + 1,
      members: want,
      overrides: keptOverrides,
      ...(cur ? { prev: { epoch: cur.epoch, members: cur.members, overrides: cur.overrides } } : {}),
    };
    await this.writeTable(next, reason);
  }

  /** Writes a new table with CAS on the previous one; used for membership changes and for explicit overrides. */
  async writeTable(next: PlacementTable, reason: string): Promise<void> {
    const p = this.placement!;
    const bytes = codec.encode(next);
    const rev = this.tableRevision === 0 ? await p.create(TABLE_KEY, bytes) : await p.update(TABLE_KEY, bytes, this.tableRevision);
    this.logger.info({ epoch: next.epoch, members: next.members.map((m) => m.id), reason }, 'placement table published');
    this.historyList.push({ epoch: next.epoch, at: this.o.clock.now(), by: this.o.nodeId, reason, members: next.members });
    if (this.historyList.length > 100) this.historyList.shift();
    this.adoptTable(next, rev);
  }
}

/**
 * Why the members changed, for the history: `leave` only for a member that
 * deleted its registry entry (`departed`); one this observer never heard
 * from is a crash too (a leader that took over, or restarted its supervisor,
 * after the member died: before, that read as a leave).
 * @internal exported for its test
 */
export function describeChange(before: readonly PlacementMember[], after: readonly PlacementMember[], seen: Map<string, { info: MemberInfo }>, departed: ReadonlyMap<string, number>): string {
  const b = new Set(before.map((m) => m.id));
  const a = new Set(after.map((m) => m.id));
  const parts: string[] = [];
  for (const id of a) if (!b.has(id)) parts.push(`join ${id}`);
  for (const id of b) {
    if (a.has(id)) continue;
    const s = seen.get(id);
    parts.push(departed.has(id) && !s ? `leave ${id}` : s?.info.state === 'draining' ? `drain ${id}` : `crash ${id}`);
  }
  if (!parts.length) parts.push('weights changed');
  return parts.join(', ');
}
