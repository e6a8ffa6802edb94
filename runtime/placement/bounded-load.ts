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
   * After the moves: the largest load / fair share over members with weight > 0,
   * where fair share = total load x weight / total weight. At most `c` when
   * the plan is feasible; 0 when the total load is 0 or there is no member
   * with weight > 0.
   */
  readonly maxOverAvg: number;
}

/** One key on a node, as the planner sees it. */
interface HeldKey {
  readonly key: string;
  readonly load: number;
  /** Held through an override: moving it home to its ring owner shrinks the override table. */
  readonly overridden: boolean;
}

/** Per-node bookkeeping of the planner. */
interface NodeLoad {
  readonly id: string;
  readonly weight: number;
  /** total load x weight / total weight. */
  share: number;
  /** c x share. */
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

  for (const [key, load] of loads) {
    if (typeof load !== 'number' || !Number.isFinite(load) || load < 0) {
      throw new RangeError(`planBoundedLoad: load of "${key}" must be a finite number >= 0, got ${String(load)}`);
    }
    const pinned = overrides.get(key);
    const owner = pinned ?? ring.ringOwner(key);
    if (owner === undefined) continue; // no active member: nothing can be placed
    byId.get(owner)!.keys.push({ key, load, overridden: pinned !== undefined });
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
    n.cap = c * n.share;
  }

  const moves: BoundedLoadMove[] = [];
  if (total > 0) {
    const over = nodes
      .filter((n) => n.load > n.cap)
      .sort((a, b) => b.load / b.cap - a.load / a.cap || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const src of over) relieve(ring, src, byId, nodes, moves);
  }

  for (const m of moves) {
    if (ring.ringOwner(m.key) === m.to) overrides.delete(m.key);
    else overrides.set(m.key, m.to);
  }
  const sortedOverrides: Record<string, string> = {};
  for (const key of [...overrides.keys()].sort()) sortedOverrides[key] = overrides.get(key)!;

  let maxOverAvg = 0;
  if (total > 0) for (const n of nodes) maxOverAvg = Math.max(maxOverAvg, n.load / n.share);
  return { overrides: sortedOverrides, moves, maxOverAvg };
}

/** Moves keys off `src` until it is at or under its cap, or nothing useful can move. */
function relieve(ring: HashRing, src: NodeLoad, byId: Map<string, NodeLoad>, nodes: readonly NodeLoad[], moves: BoundedLoadMove[]): void {
  const keys = src.keys;
  const moved = new Uint8Array(keys.length);
  // Other nodes only fill up while this one is relieved, so a key that fits
  // nowhere now will fit nowhere later either: don't walk the ring for it again.
  const fitsNowhere = new Uint8Array(keys.length);
  let fallback = false;
  while (src.load > src.cap) {
    const excess = src.load - src.cap;
    // keys is hottest first: [0, split) can each clear the excess alone.
    let split = 0;
    for (let lo = 0, hi = keys.length; lo < hi; ) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]!.load >= excess) lo = split = mid + 1;
      else hi = mid;
    }
    // Preference: the lightest key that clears the excess (one move, least
    // load handed off), then lighter keys hottest first (fewest moves).
    let progress = false;
    for (const i of preferenceOrder(keys, split)) {
      const k = keys[i]!;
      if (moved[i] || k.load === 0 || (!fallback && fitsNowhere[i])) continue;
      const to = fallback ? leastLoaded(src, k.load, nodes) : firstWithRoom(ring, src, k, byId);
      if (to === undefined) {
        fitsNowhere[i] = 1;
        continue;
      }
      moved[i] = 1;
      src.load -= k.load;
      to.load += k.load;
      moves.push({ key: k.key, from: src.id, to: to.id, load: k.load });
      progress = true;
      break;
    }
    if (progress) continue;
    if (fallback) return; // nothing lowers the peak any more
    // No remaining key fits under any cap: the load is too concentrated for
    // c here. Best effort from now on.
    fallback = true;
  }
}

/**
 * The order to try a node's keys in, given `keys` in move order and `split`
 * = how many of them clear the excess alone: those from the lightest load up
 * (ties kept in move order), then the rest in move order.
 */
function* preferenceOrder(keys: readonly HeldKey[], split: number): Generator<number> {
  for (let end = split; end > 0; ) {
    let start = end - 1;
    while (start > 0 && keys[start - 1]!.load === keys[end - 1]!.load) start--;
    for (let i = start; i < end; i++) yield i;
    end = start;
  }
  for (let i = split; i < keys.length; i++) yield i;
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
    if (r < bestRatio) {
      best = n;
      bestRatio = r;
    }
  }
  return best !== undefined && bestRatio < src.load / src.share ? best : undefined;
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
