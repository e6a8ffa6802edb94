import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HashRing, type PlacementMember, type PlacementSnapshot } from '../../../runtime/placement/index.ts';

/** Byte-wise MurmurHash3 x86_32, written straight from the reference, to check the ring's UTF-16 version against. */
function murmur3Bytes(bytes: Uint8Array, seed: number): number {
  let h = seed | 0;
  const blocks = bytes.length >>> 2;
  const mixK = (k: number): number => {
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    return Math.imul(k, 0x1b873593);
  };
  for (let b = 0; b < blocks; b++) {
    const i = b * 4;
    const k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h ^= mixK(k);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks * 4;
  const rest = bytes.length & 3;
  if (rest > 0) {
    let k = 0;
    for (let j = rest - 1; j >= 0; j--) k = (k << 8) | bytes[tail + j]!;
    h ^= mixK(k);
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const snap = (members: PlacementMember[], overrides: Record<string, string> = {}, epoch = 1): PlacementSnapshot => ({ epoch, members, overrides });
const equal = (ids: string[]): PlacementMember[] => ids.map((id) => ({ id, weight: 1 }));
const nodes = (n: number, prefix = 'node-'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const sampleKeys = (n: number, prefix = 'channel:'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** Unique, non-empty node ids (none of them the fixed ids some tests add). */
const nodeIds = (min: number, max: number) =>
  fc.uniqueArray(
    fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }).filter((id) => id !== 'drained-node'),
    { minLength: min, maxLength: max },
  );

describe('HashRing.hashKey', () => {
  test('the byte-wise reference matches published MurmurHash3 x86_32 vectors', () => {
    const ascii = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
    assert.equal(murmur3Bytes(new Uint8Array(0), 0), 0);
    assert.equal(murmur3Bytes(new Uint8Array(0), 1), 0x514e28b7);
    assert.equal(murmur3Bytes(new Uint8Array(0), 0xffffffff), 0x81f16f39);
    assert.equal(murmur3Bytes(new Uint8Array([0, 0, 0, 0]), 0), 0x2362f9de);
    assert.equal(murmur3Bytes(ascii('Hello, world!'), 1234), 0xfaf6cdb3);
    assert.equal(murmur3Bytes(ascii('The quick brown fox jumps over the lazy dog'), 0x9747b28c), 0x2fa826cd);
  });

  test('is MurmurHash3 x86_32 (seed 0) of the UTF-16LE bytes, for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        assert.equal(HashRing.hashKey(s), murmur3Bytes(new Uint8Array(Buffer.from(s, 'utf16le')), 0));
      }),
      { numRuns: 500 },
    );
  });
});

describe('HashRing basics', () => {
  test('an empty ring, or one whose members all have weight 0, owns nothing', () => {
    for (const members of [[], [{ id: 'a', weight: 0 }, { id: 'b', weight: 0 }]]) {
      const ring = HashRing.fromSnapshot(snap(members, { k: 'a' }));
      assert.equal(ring.owner('k'), undefined);
      assert.equal(ring.ringOwner('x'), undefined);
      assert.deepEqual(ring.preferenceList('x'), []);
      assert.equal(ring.size, 0);
      for (const share of ring.keyShare().values()) assert.equal(share, 0);
    }
  });

  test('exposes epoch, members sorted by id, vnode counts by weight', () => {
    const ring = HashRing.fromSnapshot(
      snap([{ id: 'c', weight: 1 }, { id: 'a', weight: 2.5 }, { id: 'b', weight: 0 }, { id: 'd', weight: 1e-9 }], {}, 7),
      { vnodes: 100 },
    );
    assert.equal(ring.epoch, 7);
    assert.deepEqual(ring.members.map((m) => m.id), ['a', 'b', 'c', 'd']);
    assert.equal(ring.vnodeCount('a'), 250);
    assert.equal(ring.vnodeCount('b'), 0);
    assert.equal(ring.vnodeCount('c'), 100);
    assert.equal(ring.vnodeCount('d'), 1, 'a positive weight always gets a point');
    assert.equal(ring.vnodeCount('nope'), 0);
    assert.equal(ring.size, 351);
    assert.equal(HashRing.fromSnapshot(snap(equal(['x']))).vnodeCount('x'), HashRing.DEFAULT_VNODES);
  });

  test('rejects bad snapshots and options at the call site', () => {
    assert.throws(() => HashRing.fromSnapshot(snap(equal(['a', 'b', 'a']))), RangeError);
    assert.throws(() => HashRing.fromSnapshot(snap([{ id: '', weight: 1 }])), TypeError);
    assert.throws(() => HashRing.fromSnapshot(snap([{ id: 'a', weight: -1 }])), RangeError);
    assert.throws(() => HashRing.fromSnapshot(snap([{ id: 'a', weight: Number.NaN }])), RangeError);
    assert.throws(() => HashRing.fromSnapshot(snap([{ id: 'a', weight: Number.POSITIVE_INFINITY }])), RangeError);
    assert.throws(() => HashRing.fromSnapshot(snap(equal(['a'])), { vnodes: 0 }), RangeError);
    assert.throws(() => HashRing.fromSnapshot(snap(equal(['a'])), { vnodes: 1.5 }), RangeError);
    assert.throws(() => HashRing.fromSnapshot(snap([{ id: 'a', weight: 1e6 }])), RangeError);
  });

  test('keyShare sums to 1 and matches the share of keys, wrap-around arc included', () => {
    // One point per node: arcs are large and one of them wraps past 2^32.
    const ring = HashRing.fromSnapshot(snap(equal(['a', 'b', 'c'])), { vnodes: 1 });
    const share = ring.keyShare();
    const sum = [...share.values()].reduce((s, x) => s + x, 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `shares sum to ${sum}`);
    const counts = new Map<string, number>();
    const keys = sampleKeys(40_000, 'k');
    for (const k of keys) {
      const o = ring.owner(k)!;
      counts.set(o, (counts.get(o) ?? 0) + 1);
    }
    for (const [id, s] of share) assert.ok(Math.abs((counts.get(id) ?? 0) / keys.length - s) < 0.015, `${id}: keys ${(counts.get(id) ?? 0) / keys.length} vs arc ${s}`);
  });

  test('preferenceList lists distinct nodes clockwise, starting at the ring owner', () => {
    const ring = HashRing.fromSnapshot(snap([...equal(nodes(6)), { id: 'drained', weight: 0 }]), { vnodes: 50 });
    for (const key of sampleKeys(200)) {
      const list = ring.preferenceList(key);
      assert.equal(list[0], ring.ringOwner(key));
      assert.equal(new Set(list).size, 6);
      assert.ok(!list.includes('drained'));
      assert.deepEqual(ring.preferenceList(key, 2), list.slice(0, 2));
    }
  });
});

describe('HashRing properties', () => {
  test('determinism: same members in any order give the same ring on every build', () => {
    fc.assert(
      fc.property(
        nodeIds(1, 12).chain((ids) =>
          fc.tuple(
            fc.constant(ids),
            fc.array(fc.constantFrom(0, 0.5, 1, 2, 3), { minLength: ids.length, maxLength: ids.length }),
            fc.array(fc.integer(), { minLength: ids.length, maxLength: ids.length }),
          ),
        ),
        ([ids, weights, shuffleKeys]) => {
          const members = ids.map((id, i) => ({ id, weight: weights[i]! }));
          const shuffled = members.map((m, i) => ({ m, r: shuffleKeys[i]! })).sort((a, b) => a.r - b.r).map((x) => x.m);
          const a = HashRing.fromSnapshot(snap(members), { vnodes: 64 });
          const b = HashRing.fromSnapshot(snap(shuffled), { vnodes: 64 });
          assert.deepEqual([...a.keyShare()], [...b.keyShare()]);
          for (const key of sampleKeys(300)) assert.equal(a.owner(key), b.owner(key));
        },
      ),
      { numRuns: 60 },
    );
  });

  test('balance: equal members each own 1/n of the hash space within 10% at the default vnode count', () => {
    fc.assert(
      fc.property(nodeIds(2, 16), (ids) => {
        const ring = HashRing.fromSnapshot(snap(equal(ids)));
        const shares = [...ring.keyShare().values()];
        const maxOverAvg = Math.max(...shares) * ids.length;
        const minOverAvg = Math.min(...shares) * ids.length;
        assert.ok(maxOverAvg <= 1.1 && minOverAvg >= 0.9, `shares ${minOverAvg.toFixed(3)}..${maxOverAvg.toFixed(3)} of avg for ${ids.length} nodes`);
      }),
      { numRuns: Number(process.env.RING_RUNS ?? 40) },
    );
  });

  test('balance: 10 equal nodes and 200k channel keys stay within 1.05 x average', () => {
    const ring = HashRing.fromSnapshot(snap(equal(nodes(10))));
    const counts = new Map<string, number>();
    const keys = sampleKeys(200_000);
    for (const k of keys) {
      const o = ring.owner(k)!;
      counts.set(o, (counts.get(o) ?? 0) + 1);
    }
    const max = Math.max(...counts.values());
    assert.ok(max / (keys.length / 10) <= 1.05, `max/avg ${max / (keys.length / 10)}`);
  });

  test('weights: a member owns about weight / total weight of the hash space', () => {
    fc.assert(
      fc.property(
        nodeIds(2, 10).chain((ids) => fc.tuple(fc.constant(ids), fc.array(fc.constantFrom(0.5, 1, 2, 3), { minLength: ids.length, maxLength: ids.length }))),
        ([ids, weights]) => {
          const members = ids.map((id, i) => ({ id, weight: weights[i]! }));
          const total = weights.reduce((s, w) => s + w, 0);
          const share = HashRing.fromSnapshot(snap(members)).keyShare();
          for (const m of members) {
            const ratio = share.get(m.id)! / (m.weight / total);
            assert.ok(ratio > 0.85 && ratio < 1.15, `${m.id} weight ${m.weight}: ${ratio.toFixed(3)} of its fair share`);
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  test('minimal movement: on a join keys only move to the new node; on a leave only from the leaving node', () => {
    const keys = sampleKeys(3000, 'user:');
    fc.assert(
      fc.property(nodeIds(2, 12), fc.nat(), (ids, pick) => {
        const [newcomer, ...rest] = ids;
        const before = HashRing.fromSnapshot(snap(equal(rest)), { vnodes: 200 });
        const after = HashRing.fromSnapshot(snap(equal([...rest, newcomer!])), { vnodes: 200 });
        let moved = 0;
        for (const k of keys) {
          const a = before.owner(k);
          const b = after.owner(k);
          if (a !== b) {
            moved++;
            assert.equal(b, newcomer, `${k} moved ${a} -> ${b}, not to the joining node`);
          }
        }
        // The keys that move are the newcomer's arc, nothing else.
        const arc = after.keyShare().get(newcomer!)!;
        // a sample of keys.length keys: allow 6 standard deviations of sampling error
        const tolerance = 6 * Math.sqrt((arc * (1 - arc)) / keys.length) + 0.002;
        assert.ok(Math.abs(moved / keys.length - arc) < tolerance, `moved ${moved / keys.length}, newcomer's arc ${arc}`);

        const leaving = ids[pick % ids.length]!;
        const full = HashRing.fromSnapshot(snap(equal(ids)), { vnodes: 200 });
        const less = HashRing.fromSnapshot(snap(equal(ids.filter((id) => id !== leaving))), { vnodes: 200 });
        for (const k of keys) {
          const a = full.owner(k);
          if (a !== less.owner(k)) assert.equal(a, leaving, `${k} moved off ${a}, which did not leave`);
        }
      }),
      { numRuns: Number(process.env.RING_RUNS ?? 40) },
    );
  });

  test('minimal movement: changing one weight moves keys only to or from that node', () => {
    const keys = sampleKeys(3000, 'ws:');
    fc.assert(
      fc.property(nodeIds(2, 8), fc.constantFrom(0, 0.5, 2, 3), (ids, w) => {
        const before = HashRing.fromSnapshot(snap(equal(ids)), { vnodes: 200 });
        const after = HashRing.fromSnapshot(snap(ids.map((id, i) => ({ id, weight: i === 0 ? w : 1 }))), { vnodes: 200 });
        for (const k of keys) {
          const a = before.owner(k);
          const b = after.owner(k);
          if (a !== b) assert.ok(a === ids[0] || b === ids[0], `${k} moved ${a} -> ${b}`);
        }
      }),
      { numRuns: 30 },
    );
  });

  test('overrides: honoured when their node is an active member, ignored otherwise', () => {
    fc.assert(
      fc.property(nodeIds(2, 8), fc.uniqueArray(fc.string({ maxLength: 10 }), { minLength: 1, maxLength: 20 }), fc.nat(), (ids, keys, pick) => {
        const target = ids[pick % ids.length]!;
        const drained = 'drained-node';
        const members = [...equal(ids), { id: drained, weight: 0 }];
        // fromEntries, not assignment, so a key like "__proto__" is a real entry (as JSON.parse makes it).
        const overrides: Record<string, string> = Object.fromEntries(keys.map((k, i) => [k, i % 3 === 0 ? target : i % 3 === 1 ? drained : 'not-a-member']));
        const plain = HashRing.fromSnapshot(snap(members), { vnodes: 32 });
        const ring = HashRing.fromSnapshot(snap(members, overrides), { vnodes: 32 });
        keys.forEach((k, i) => {
          assert.equal(ring.ringOwner(k), plain.ringOwner(k), 'ringOwner ignores overrides');
          assert.equal(ring.owner(k), i % 3 === 0 ? target : plain.owner(k));
        });
        for (const k of sampleKeys(100, 'other:')) assert.equal(ring.owner(k), plain.owner(k));
        assert.deepEqual(ring.overrides, overrides);
      }),
      { numRuns: 50 },
    );
  });
});
