/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
 * "Consistent Hashing with Bounded Loads", SODA 2018), as a planner: given the
 * ring and the measured load of each active actor, it says which actors to move
 * with explicit overrides so that no node carries more than c x its fair share.
 *
 * The paper's rule is "a key goes to the first node clockwise from its hash
 * that still has room under the cap". Chorus keeps the ring as the default and
 * only applies that rule to the keys it has to move, so an actor is moved only
 * when its node is over the cap, and it lands where the paper would have put
 * it. The planner is pure; the placement supervisor publishes the result as
 * the next table's overrides.
 */
import type { HashRing } from './hash-ring.ts';

/** Options of {@link planBoundedLoad}. */
export interface BoundedLoadOptions {
  /**
   * Cap factor: a node may carry at most c x (total load x its weight / total
   * weight). Default 1.25 (the design's "c about 1.25"; the paper's analysis
   * gives O(1/(c-1)^2) expected moves per change, so values much closer to 1
   * cost many moves). Must be >= 1.
   */
  readonly c?: number;
  /**
   * Overrides in force now (key -> node id). Default: the ring snapshot's own
   * `overrides`. Entries whose node is not a member with weight > 0 are
   * dropped (the ring already ignores them); entries that agree with the ring
   * are dropped as redundant. Neither counts as a move.
   */
  readonly currentOverrides?: Readonly<Record<string, string>>;
}

/** One actor to hand off from one node to another. */
export interface BoundedLoadMove {
  /** Actor key. */
  readonly key: string;
  /** Node that owns it now (ring or current override). */
  readonly from: string;
  /** Node that should own it in the next table. */
  readonly to: string;
  /** The actor's load, as given. */
  readonly load: number;
}

/** What {@link planBoundedLoad} decided. */
export interface BoundedLoadPlan {
  /**
   * The complete override set for the next table (not a delta), keys in
   * sorted order: kept current overrides plus the moves, minus overrides that
   * now agree with the ring.
   */
  readonly overrides: Record<string, string>;
  /** Moves in the order they were decided. Empty when no node is over the cap. */
  readonly moves: BoundedLoadMove[];
  /**
   * After the moves: the largest load / fair share over members with weight
   * > 0, where fair share = total load x weight / total weight. At most `c`
   * (give or take 1e-9, relative) when the plan is feasible; 0 when the total
   * load is 0 or there is no member with weight > 0.
   */
  readonly maxOverAvg: number;
}

/** Relative tolerance on the cap (see where it is applied). */
const CAP_SLACK = 1e-9;

/** One key on a node, as the planner sees it. */
interface HeldKey {
  readonly key: string;
  /** Load divided by the largest load, so sums and caps stay in a sane float range whatever the unit (no underflow on tiny loads, no overflow on huge ones). */
  readonly load: number;
  /** Load as given, for the moves. */
  readonly raw: number;
  /** Held through an override: moving it home to its ring owner shrinks the override table. */
  readonly overridden: boolean;
}

/** Per-node bookkeeping of the planner. */
interface NodeLoad {
  readonly id: string;
  readonly weight: number;
  /** total load x weight / total weight. */
  share: number;
  /** c x share, plus a relative slack of 1e-9. */
  cap: number;
  load: number;
  /** Keys this node holds, as assigned before any move, in the order they are considered for a move (see `moveOrder`). */
  keys: HeldKey[];
}

/**
 * Plans the overrides that keep every node at or under c x its fair share of
 * the load.
 *
 * For each node over its cap, most overloaded first (ties by id), it moves
 * keys until the node is under the cap, choosing the keys so that few move:
 * the lightest key that alone removes the whole excess if there is one, else
 * the hottest key, and so on. Each moved key goes to the first node clockwise
 * from the key's hash that has room for it (the paper's rule), so moves are
 * local and repeatable. Among keys of equal load, those held through an
 * override go first: their first node clockwise is their ring owner, so a
 * plan tends to send moved actors home and the override table shrinks
 * instead of growing. If no node has room for any of the node's keys (the
 * load is too concentrated to fit under the cap), it falls back to the least
 * loaded node, but only when that lowers the larger of the two nodes' load
 * ratios; the result then stays above c and says so in `maxOverAvg`.
 *
 * Guarantee: if every key's load is at most (c - 1) x total / (n - 1), with n
 * the members with weight > 0, the result has no node above the cap (a node
 * over the cap always finds a node with room for any of its keys then).
 * Bin packing makes exact feasibility and the true minimum number of moves
 * NP-hard in general; this greedy gets both in the common case of a few hot
 * actors. Keys with load 0 never move.
 *
 * Deterministic: the output depends only on the ring, the key -> load pairs
 * (not the Map's order) and the options. Throws (misuse) if `c` < 1 or not
 * finite, or a load is negative or not finite.
 */
export function planBoundedLoad(
  ring: HashRing,
  loads: ReadonlyMap<string, number>,
  opts: BoundedLoadOptions = {},
): BoundedLoadPlan {
  const c = opts.c ?? 1.25;
  if (typeof c !== 'number' || !Number.isFinite(c) || c < 1) throw new RangeError(`planBoundedLoad: c must be a finite number >= 1, got ${String(c)}`);

  const active = ring.members.filter((m) => ring.vnodeCount(m.id) > 0);
  const activeIds = new Set(active.map((m) => m.id));

  // Keep the overrides still meaningful; the ring decides the rest.
  const overrides = new Map<string, string>();
  const current = opts.currentOverrides ?? ring.overrides;
  for (const key of Object.keys(current)) {
    const to = current[key]!;
    if (activeIds.has(to) && ring.ringOwner(key) !== to) overrides.set(key, to);
  }

  const byId = new Map<string, NodeLoad>();
  const totalWeight = active.reduce((sum, m) => sum + m.weight, 0);
  for (const m of active) byId.set(m.id, { id: m.id, weight: m.weight, share: 0, cap: 0, load: 0, keys: [] });

  let maxLoad = 0;
  for (const [key, load] of loads) {
    if (typeof load !== 'number' || !Number.isFinite(load) || load < 0) {
      throw new RangeError(`planBoundedLoad: load of "${key}" must be a finite number >= 0, got ${String(load)}`);
    }
    if (load > maxLoad) maxLoad = load;
  }
  for (const [key, raw] of loads) {
    const pinned = overrides.get(key);
    const owner = pinned ?? ring.ringOwner(key);
    if (owner === undefined) continue; // no active member: nothing can be placed
    byId.get(owner)!.keys.push({ key, load: raw === 0 ? 0 : raw / maxLoad, raw, overridden: pinned !== undefined });
  }

  // Sort each node's keys and sum in that order, so float sums (and with them
  // every later decision) don't depend on the order of the input Map.
  let total = 0;
  const nodes = [...byId.values()];
  for (const n of nodes) {
    n.keys.sort(moveOrder);
    for (const k of n.keys) n.load += k.load;
    total += n.load;
  }
  for (const n of nodes) {
    n.share = (total * n.weight) / totalWeight;
    // The slack keeps float rounding from deciding whether a node sitting
    // exactly at the cap is over it (and from making the decision depend on
    // the unit of load); loads are measurements, 1e-9 is far below their noise.
    n.cap = c * n.share * (1 + CAP_SLACK);
  }

  const moves: BoundedLoadMove[] = [];
  if (total > 0) {
    const over = nodes
      .filter((n) => n.load > n.cap)
      .sort((a, b) => byRatio(b, a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const src of over) relieve(ring, src, byId, nodes, moves);
  }

  for (const m of moves) {
    if (ring.ringOwner(m.key) === m.to) overrides.delete(m.key);
    else overrides.set(m.key, m.to);
  }
  // fromEntries defines own properties, so even an actor key "__proto__" survives.
  const sortedOverrides: Record<string, string> = Object.fromEntries([...overrides].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

  let maxOverAvg = 0;
  if (total > 0) for (const n of nodes) maxOverAvg = Math.max(maxOverAvg, ratioOf(n));
  return { overrides: sortedOverrides, moves, maxOverAvg };
}

/**
 * Moves keys off `src` until it is at or under its cap, or nothing useful can
 * move. A key that is tried and cannot go anywhere is never tried again in
 * the same phase (other nodes only fill up and `src` only empties while it is
 * relieved, so it would fail again), and resolved keys are skipped in near
 * constant time, so relieving a node costs about one ring walk per key tried.
 */
function relieve(ring: HashRing, src: NodeLoad, byId: Map<string, NodeLoad>, nodes: readonly NodeLoad[], moves: BoundedLoadMove[]): void {
  const keys = src.keys;
  // Start index of each run of equal loads, for the lightest-first order.
  const groupStart = new Int32Array(keys.length);
  for (let i = 1; i < keys.length; i++) groupStart[i] = keys[i]!.load === keys[i - 1]!.load ? groupStart[i - 1]! : i;
  const moved = new Uint8Array(keys.length);
  const fresh = (): Unresolved => {
    const u = new Unresolved(keys.length);
    for (let i = 0; i < keys.length; i++) if (moved[i] || keys[i]!.load === 0) u.resolve(i);
    return u;
  };
  let fallback = false;
  let open = fresh();
  while (src.load > src.cap) {
    const excess = src.load - src.cap;
    // keys is hottest first: [0, split) can each clear the excess alone.
    let split = 0;
    for (let lo = 0, hi = keys.length; lo < hi; ) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]!.load >= excess) lo = split = mid + 1;
      else hi = mid;
    }
    let progress = false;
    for (const i of preferenceOrder(keys.length, split, groupStart, open)) {
      const k = keys[i]!;
      const to = fallback ? leastLoaded(src, k.load, nodes) : firstWithRoom(ring, src, k, byId);
      open.resolve(i);
      if (to === undefined) continue;
      moved[i] = 1;
      src.load -= k.load;
      to.load += k.load;
      moves.push({ key: k.key, from: src.id, to: to.id, load: k.raw });
      progress = true;
      break;
    }
    if (progress) continue;
    if (fallback) return; // nothing lowers the peak any more
    // No remaining key fits under any cap: the load is too concentrated for
    // c here. Best effort from now on, every unmoved key a candidate again.
    fallback = true;
    open = fresh();
  }
}

/**
 * The order to try a node's open keys in, given `split` = how many of them
 * (hottest first) clear the excess alone: those, from the lightest load up
 * (the fewest moves and the least load handed off; ties in move order), then
 * the lighter ones hottest first (the fewest moves).
 */
function* preferenceOrder(len: number, split: number, groupStart: Int32Array, open: Unresolved): Generator<number> {
  for (let j = open.atOrBefore(split - 1); j >= 0; ) {
    const g = groupStart[j]!;
    for (let i = open.atOrAfter(g); i <= j; i = open.atOrAfter(i + 1)) yield i;
    j = open.atOrBefore(g - 1);
  }
  for (let i = open.atOrAfter(split); i < len; i = open.atOrAfter(i + 1)) yield i;
}

/**
 * The set of indexes [0, n) not yet resolved, with "first open at or after i"
 * and "last open at or before i" in near constant amortised time (two
 * disjoint-set forests with path halving).
 */
class Unresolved {
  /** next[i] === i when i is open; else a pointer towards a larger index. next[n] = n is the end. */
  private readonly next: Int32Array;
  /** prev[i + 1] === i + 1 when i is open; else a pointer towards a smaller one. prev[0] = 0 is the end. */
  private readonly prev: Int32Array;
  constructor(n: number) {
    this.next = new Int32Array(n + 1);
    this.prev = new Int32Array(n + 1);
    for (let i = 0; i <= n; i++) this.next[i] = this.prev[i] = i;
  }
  resolve(i: number): void {
    this.next[i] = i + 1;
    this.prev[i + 1] = i;
  }
  /** First open index >= i, or n. */
  atOrAfter(i: number): number {
    const next = this.next;
    while (next[i] !== i) {
      next[i] = next[next[i]!]!;
      i = next[i]!;
    }
    return i;
  }
  /** Last open index <= i, or -1. */
  atOrBefore(i: number): number {
    const prev = this.prev;
    let p = i + 1;
    while (prev[p] !== p) {
      prev[p] = prev[prev[p]!]!;
      p = prev[p]!;
    }
    return p - 1;
  }
}

/** The paper's rule: the first node clockwise from the key's hash, other than `src`, whose load stays within its cap. */
function firstWithRoom(ring: HashRing, src: NodeLoad, k: HeldKey, byId: Map<string, NodeLoad>): NodeLoad | undefined {
  for (const id of ring.preferenceList(k.key)) {
    if (id === src.id) continue;
    const n = byId.get(id)!;
    if (n.load + k.load <= n.cap) return n;
  }
  return undefined;
}

/** Best effort when nothing fits: the node with the lowest ratio after taking the key, if that stays below src's ratio now. */
function leastLoaded(src: NodeLoad, load: number, nodes: readonly NodeLoad[]): NodeLoad | undefined {
  let best: NodeLoad | undefined;
  let bestRatio = Number.POSITIVE_INFINITY;
  for (const n of nodes) {
    if (n === src) continue;
    const r = (n.load + load) / n.share;
    // better by more than rounding: ratios equal but for the last bits are ties (the first node wins), so the
    // choice does not depend on the unit of load (found by the scaled-loads property test, seed -1460801690)
    if (r < bestRatio * (1 - CAP_SLACK)) {
      best = n;
      bestRatio = r;
    }
  }
  return best !== undefined && bestRatio < ratioOf(src) * (1 - CAP_SLACK) ? best : undefined;
}

/** Compares load ratios, ratios within rounding of each other (relative CAP_SLACK) being equal. */
function byRatio(a: NodeLoad, b: NodeLoad): number {
  const ra = ratioOf(a);
  const rb = ratioOf(b);
  if (ra === rb || Math.abs(ra - rb) <= CAP_SLACK * Math.max(ra, rb)) return 0;
  return ra < rb ? -1 : 1;
}

/** load / fair share; a share that underflowed to 0 (a weight near 0) counts as infinitely loaded when it holds anything. */
function ratioOf(n: NodeLoad): number {
  return n.share > 0 ? n.load / n.share : n.load > 0 ? Number.POSITIVE_INFINITY : 0;
}

/**
 * Hottest first. Among equal loads, keys held through an override first (the
 * first node clockwise is their ring owner, so if it has room they go home and
 * their override disappears rather than a new one appearing), then by key in
 * code-unit order, so the order is total.
 */
function moveOrder(a: HeldKey, b: HeldKey): number {
  return b.load - a.load || Number(b.overridden) - Number(a.overridden) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}
