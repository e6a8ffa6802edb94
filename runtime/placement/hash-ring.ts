/**
 * The consistent-hash ring that turns a placement snapshot into "which node
 * owns this actor key". It is a pure function of the snapshot: every process
 * that holds the same snapshot builds the same ring, bit for bit, so owners
 * agree without a directory look-up.
 *
 * Layout (chosen because `owner()` runs on every message):
 * - each member with weight w > 0 gets `round(w * vnodes)` points (at least 1),
 *   placed by hashing (node id, point number) only. A point never depends on
 *   the other members, which is what makes movement minimal: when a node joins
 *   only keys that land on its new points move (to it); when it leaves only
 *   its keys move.
 * - the points live in one sorted `Uint32Array` with a parallel `Uint32Array`
 *   of owner indexes; a key belongs to the first point at or after its hash,
 *   wrapping around to point 0.
 * - a bucket index over the top bits of the hash (about one point per bucket)
 *   narrows the binary search to a handful of points, so a lookup is one key
 *   hash plus one or two comparisons, with no allocation.
 */
import type { PlacementMember, PlacementSnapshot } from './placement-table.ts';

/** Size of the hash space: hashes and points are unsigned 32-bit integers. */
const SPACE = 2 ** 32;
/** Seed of the key hash. Fixed forever: changing it re-places every actor. */
const KEY_SEED = 0;
/** Seed of the per-node hash that seeds its point sequence; distinct from KEY_SEED so node ids and actor keys don't share hashes. */
const NODE_SEED = 0x9747b28c;
/** Guard against absurd weights or vnode counts eating memory: 16M points is about 200 MB of ring and index. */
const MAX_POINTS = 2 ** 24;

/** Options of {@link HashRing.fromSnapshot}. */
export interface HashRingOptions {
  /**
   * Ring points per unit of weight. Default {@link HashRing.DEFAULT_VNODES} (4000).
   * Must be the same on every node: it is part of the placement function.
   */
  readonly vnodes?: number;
}

/**
 * A consistent-hash ring with virtual nodes and weights, built from a
 * {@link PlacementSnapshot}. Immutable; build a new one for each epoch.
 *
 * Keys are hashed with MurmurHash3 (x86, 32-bit, seed 0) over the key's
 * UTF-16LE bytes (see {@link HashRing.hashKey}).
 */
export class HashRing {
  /**
   * Default points per unit of weight: 4000.
   *
   * A node's share of the hash space is the sum of its arcs, whose relative
   * spread is about 1/sqrt(points): 1.6% at 4000 points. Measured over 1000
   * random sets of 10 equal node ids, the busiest node's share averaged
   * 1.024 x the mean and exceeded 1.05 x in 0.5% of the sets (2000 points:
   * 10% of the sets; 160, as ketama uses: nearly all, with nodes 10-30%
   * apart), and a joining 11th node's share was always within 5% of 1/11.
   * The price is memory (8 bytes per point plus a 4-byte bucket entry per
   * point, rounded up to a power of two: about 600 KB for 10 nodes) and build
   * time (under 2 ms for 10 nodes once warm, more on the first, cold build);
   * lookups stay at one or two comparisons whatever the point count, thanks
   * to the bucket index.
   */
  static readonly DEFAULT_VNODES = 4000;

  /** Placement epoch of the snapshot this ring was built from. */
  readonly epoch: number;
  /** All members of the snapshot, sorted by id (UTF-16 code-unit order, not locale order, so every process sorts alike). Includes weight-0 members. */
  readonly members: readonly PlacementMember[];
  /** The snapshot's overrides, as given (including entries `owner()` ignores because their node is not an active member); a frozen copy. */
  readonly overrides: Readonly<Record<string, string>>;
  /** Points per unit of weight this ring was built with. */
  readonly vnodesPerWeight: number;

  /** Member ids, indexed like `members`; `owner()` returns these strings, so it allocates nothing. */
  private readonly ids: readonly string[];
  /** id -> index in `members`. */
  private readonly indexOf: ReadonlyMap<string, number>;
  /** Sorted ring points. */
  private readonly points: Uint32Array;
  /** owners[i] is the member index owning points[i]. */
  private readonly owners: Uint32Array;
  /** Points per member index. */
  private readonly counts: Uint32Array;
  /** bucketStart[b] = first point index whose value is >= b << bucketShift; one extra entry = points.length. */
  private readonly bucketStart: Uint32Array;
  /** 32 - log2(bucket count). */
  private readonly bucketShift: number;
  /** Overrides that `owner()` honours: key -> member index (member present, weight > 0). */
  private readonly activeOverrides: ReadonlyMap<string, number>;

  private constructor(
    snap: PlacementSnapshot,
    members: PlacementMember[],
    vnodes: number,
    points: Uint32Array,
    owners: Uint32Array,
    counts: Uint32Array,
  ) {
    this.epoch = snap.epoch;
    this.members = Object.freeze(members.map((m) => Object.freeze({ id: m.id, weight: m.weight })));
    // A frozen copy: the ring must not change under a caller who later mutates
    // the snapshot's object (spread keeps even a "__proto__" key as an entry).
    this.overrides = Object.freeze({ ...snap.overrides });
    this.vnodesPerWeight = vnodes;
    this.ids = members.map((m) => m.id);
    this.indexOf = new Map(this.ids.map((id, i) => [id, i]));
    this.points = points;
    this.owners = owners;
    this.counts = counts;

    // About one point per bucket: the search inside a bucket is then a
    // comparison or two, while the index stays as small as the ring itself.
    const bits = Math.min(24, Math.max(1, Math.ceil(Math.log2(Math.max(2, points.length)))));
    this.bucketShift = 32 - bits;
    this.bucketStart = buildBucketIndex(points, bits);

    const active = new Map<string, number>();
    for (const key of Object.keys(snap.overrides)) {
      const idx = this.indexOf.get(snap.overrides[key]!);
      if (idx !== undefined && counts[idx]! > 0) active.set(key, idx);
    }
    this.activeOverrides = active;
  }

  /**
   * Builds the ring of a snapshot. Members may come in any order; the result
   * depends only on the set of (id, weight) pairs, the overrides and `vnodes`.
   *
   * Throws (misuse) on duplicate or empty ids, a weight that is negative or not
   * finite, a `vnodes` that is not a positive integer, or more than 2^24 points.
   */
  static fromSnapshot(snap: PlacementSnapshot, opts: HashRingOptions = {}): HashRing {
    const vnodes = opts.vnodes ?? HashRing.DEFAULT_VNODES;
    if (!Number.isInteger(vnodes) || vnodes < 1) throw new RangeError(`HashRing: vnodes must be a positive integer, got ${vnodes}`);

    // Code-unit order, never localeCompare: the ring must not depend on the
    // process's locale or ICU version.
    const members = [...snap.members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const counts = new Uint32Array(members.length);
    let total = 0;
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      if (typeof m.id !== 'string' || m.id.length === 0) throw new TypeError('HashRing: member id must be a non-empty string');
      if (i > 0 && members[i - 1]!.id === m.id) throw new RangeError(`HashRing: duplicate member id "${m.id}"`);
      if (typeof m.weight !== 'number' || !Number.isFinite(m.weight) || m.weight < 0) {
        throw new RangeError(`HashRing: member "${m.id}" has weight ${String(m.weight)}; weights must be finite and >= 0`);
      }
      // At least one point for any positive weight, so a tiny weight still
      // means "owns a little" rather than silently "owns nothing".
      const n = m.weight > 0 ? Math.max(1, Math.round(m.weight * vnodes)) : 0;
      counts[i] = n;
      total += n;
      if (total > MAX_POINTS) throw new RangeError(`HashRing: more than ${MAX_POINTS} ring points; lower vnodes or the weights`);
    }

    // Points are generated member by member in id order, and the radix sort
    // is stable, so equal points keep member order: ties are deterministic.
    const rawPoints = new Uint32Array(total);
    const rawOwners = new Uint32Array(total);
    let k = 0;
    for (let i = 0; i < members.length; i++) {
      const seed = murmur3Utf16(members[i]!.id, NODE_SEED);
      for (let v = 0; v < counts[i]!; v++) {
        rawPoints[k] = pointOf(seed, v);
        rawOwners[k++] = i;
      }
    }
    const [points, owners] = radixSortPairs(rawPoints, rawOwners);
    return new HashRing(snap, members, vnodes, points, owners, counts);
  }

  /**
   * The 32-bit hash the ring uses for an actor key: MurmurHash3 x86_32, seed 0,
   * over the UTF-16LE bytes of the string (two code units per 32-bit block).
   *
   * Why this hash: it is fast in JavaScript (Math.imul, no byte encoding step,
   * no allocation), its finaliser avalanches well, so sequential keys such as
   * `channel:1`, `channel:2` spread evenly, and it is a published function:
   * any other language reproduces it by hashing the UTF-16LE bytes. It is not
   * cryptographic; placement needs spread, not secrecy.
   */
  static hashKey(key: string): number {
    return murmur3Utf16(key, KEY_SEED);
  }

  /**
   * The node that owns `key`: the snapshot's override when its node is a
   * member with weight > 0, otherwise the ring owner. `undefined` when no
   * member has weight > 0.
   */
  owner(key: string): string | undefined {
    if (this.activeOverrides.size !== 0) {
      const o = this.activeOverrides.get(key);
      if (o !== undefined) return this.ids[o];
    }
    return this.ringOwner(key);
  }

  /** The node the ring alone assigns to `key`, ignoring overrides. `undefined` when no member has weight > 0. */
  ringOwner(key: string): string | undefined {
    const n = this.points.length;
    if (n === 0) return undefined;
    const idx = this.pointIndex(murmur3Utf16(key, KEY_SEED));
    return this.ids[this.owners[idx]!];
  }

  /**
   * Distinct nodes in clockwise order starting at the ring owner of `key`
   * (ignores overrides), at most `limit` of them (default: all nodes with
   * points). The bounded-load planner walks it to find the next node with
   * room; replication can use it as a preference list. Allocates; not meant
   * for the per-message path.
   */
  preferenceList(key: string, limit = Number.POSITIVE_INFINITY): string[] {
    const out: string[] = [];
    const n = this.points.length;
    if (n === 0 || limit <= 0) return out;
    let withPoints = 0;
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]! > 0) withPoints++;
    const want = Math.min(limit, withPoints);
    const seen = new Uint8Array(this.ids.length);
    const start = this.pointIndex(murmur3Utf16(key, KEY_SEED));
    for (let s = 0; s < n && out.length < want; s++) {
      const o = this.owners[(start + s) % n]!;
      if (seen[o] === 0) {
        seen[o] = 1;
        out.push(this.ids[o]!);
      }
    }
    return out;
  }

  /** Ring points of `nodeId`: `round(weight * vnodes)` (at least 1) for weight > 0; 0 for weight 0 or an unknown node. */
  vnodeCount(nodeId: string): number {
    const i = this.indexOf.get(nodeId);
    return i === undefined ? 0 : this.counts[i]!;
  }

  /** Total number of ring points. */
  get size(): number {
    return this.points.length;
  }

  /**
   * Fraction of the 32-bit hash space each member owns by the ring alone
   * (overrides are per key, not per arc, so they don't count). Every member is
   * listed, weight-0 ones with 0; the fractions sum to 1 unless the ring is
   * empty.
   */
  keyShare(): Map<string, number> {
    const arcs = new Float64Array(this.ids.length);
    const n = this.points.length;
    for (let i = 0; i < n; i++) {
      // Point i owns (points[i-1], points[i]]; point 0 also owns the wrap-around
      // arc past the last point.
      const arc = i === 0 ? this.points[0]! + SPACE - this.points[n - 1]! : this.points[i]! - this.points[i - 1]!;
      arcs[this.owners[i]!] += arc;
    }
    const share = new Map<string, number>();
    for (let i = 0; i < this.ids.length; i++) share.set(this.ids[i]!, n === 0 ? 0 : arcs[i]! / SPACE);
    return share;
  }

  /** Index of the first point >= h, wrapping to 0. Assumes a non-empty ring. */
  private pointIndex(h: number): number {
    const points = this.points;
    const b = h >>> this.bucketShift;
    // The answer lies in [bucketStart[b], bucketStart[b + 1]]: every point
    // before the bucket is < h and the first point of the next bucket is > h.
    let lo = this.bucketStart[b]!;
    let hi = this.bucketStart[b + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === points.length ? 0 : lo;
  }
}

/**
 * bucketStart[b] = index of the first point whose top `bits` bits are >= b,
 * for b in [0, 2^bits]; the last entry is points.length.
 */
function buildBucketIndex(points: Uint32Array, bits: number): Uint32Array {
  const shift = 32 - bits;
  const buckets = 2 ** bits;
  const start = new Uint32Array(buckets + 1);
  let b = 0;
  for (let j = 0; j < points.length; j++) {
    const pb = points[j]! >>> shift;
    // Buckets up to and including this point's bucket (and not yet filled)
    // start at this point.
    while (b <= pb) start[b++] = j;
  }
  while (b <= buckets) start[b++] = points.length;
  return start;
}

/**
 * Stable LSD radix sort of 32-bit points (two 16-bit passes) carrying their
 * owners along. Linear time: measured on 40k points it takes about a third
 * of the time of a native sort of the pairs packed into doubles.
 */
function radixSortPairs(keys: Uint32Array, vals: Uint32Array): [Uint32Array, Uint32Array] {
  const n = keys.length;
  let srcK: Uint32Array = keys;
  let srcV: Uint32Array = vals;
  let dstK: Uint32Array = new Uint32Array(n);
  let dstV: Uint32Array = new Uint32Array(n);
  const count = new Uint32Array(65536);
  for (let shift = 0; shift < 32; shift += 16) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(srcK[i]! >>> shift) & 0xffff]++;
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const c = count[d]!;
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const key = srcK[i]!;
      const at = count[(key >>> shift) & 0xffff]++;
      dstK[at] = key;
      dstV[at] = srcV[i]!;
    }
    [srcK, dstK] = [dstK, srcK];
    [srcV, dstV] = [dstV, srcV];
  }
  return [srcK, srcV];
}

/**
 * MurmurHash3 x86_32 over the UTF-16LE bytes of `s`. Reading two code units as
 * one little-endian 32-bit block is exactly the byte-wise algorithm on the
 * UTF-16LE encoding, without encoding or allocating anything.
 */
function murmur3Utf16(s: string, seed: number): number {
  let h = seed | 0;
  const len = s.length;
  const even = len & ~1;
  let i = 0;
  for (; i < even; i += 2) {
    let k = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < len) {
    // Tail of two bytes (one code unit); no third or fourth byte in UTF-16.
    let k = s.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= len * 2; // length in bytes
  return fmix32(h);
}

/**
 * Point number `v` of the node whose id hashes to `seed`: MurmurHash3 x86_32
 * of the 4-byte little-endian `v`, seeded with the node hash. Depends on the
 * node alone, never on the other members.
 */
function pointOf(seed: number, v: number): number {
  let k = Math.imul(v, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  let h = seed ^ k;
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  h ^= 4;
  return fmix32(h);
}

/** MurmurHash3's finaliser: every input bit flips each output bit with probability about 1/2. Returns an unsigned 32-bit integer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
