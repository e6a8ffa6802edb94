/**
 * Benchmark of the placement ring against the npm package `hashring` (the
 * ketama-compatible ring most Node projects reach for): lookup throughput,
 * balance, and how many keys move when a node joins or leaves.
 *
 * Usage: `node --import tsx bench/ring.ts [--quick] [--keys=N]`, or through
 * the shared runner (bench/run.ts), which calls `run`. Defaults: 10 nodes,
 * 1,000,000 keys `channel:<i>`; `--quick` uses 100,000 keys for CI.
 *
 * Method: key strings are built (and flattened by one untimed pass) before
 * any timing; each ring is timed over several passes and the median is kept,
 * because the machine is shared and single passes are noisy. `hashring` does
 * an MD5 per lookup and keeps an LRU cache of 5,000 keys, so on a million
 * distinct keys it mostly misses; its throughput is timed on at most 200,000
 * keys to keep the run short, and its placement of all keys is computed with
 * its own `hashValue` + `find` (what its `get` does, minus the cache), so
 * each key is MD5-hashed once for three rings.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HashRing } from '../runtime/placement/index.ts';

/** The part of `hashring`'s API this benchmark uses (the package ships no types). */
interface PeerRing {
  get(key: string): string | undefined;
  hashValue(key: string): number;
  find(hash: number): number;
  readonly ring: ReadonlyArray<{ readonly value: number; readonly server: string }>;
}
type PeerRingCtor = new (servers: string[]) => PeerRing;

// createRequire rather than `import HashRing from 'hashring'`: the package has
// no type declarations, so a static import fails the strict typecheck, and a
// typed require keeps the surface we rely on explicit.
const PeerHashRing = createRequire(import.meta.url)('hashring') as PeerRingCtor;

const NODES = 10;
const FULL_KEYS = 1_000_000;
const QUICK_KEYS = 100_000;
const PASSES = 5;
const PEER_PASSES = 3;
const PEER_TIMED_KEYS = 200_000;

/** Keeps the JIT from discarding lookups whose results nobody reads. */
let sink = 0;

/**
 * Runs the benchmark and returns its figures (also printed as a table).
 * `args`: `--quick` (100,000 keys), `--keys=N`.
 */
export async function run(args: string[]): Promise<Record<string, unknown>> {
  const keysArg = args.find((a) => a.startsWith('--keys='));
  const keyCount = keysArg ? Number(keysArg.slice('--keys='.length)) : args.includes('--quick') ? QUICK_KEYS : FULL_KEYS;
  if (!Number.isInteger(keyCount) || keyCount < 1000) throw new RangeError(`bench/ring: --keys must be an integer >= 1000, got ${keysArg}`);

  const keys = Array.from({ length: keyCount }, (_, i) => `channel:${i}`);
  const ids = Array.from({ length: NODES }, (_, i) => `node-${i}`);
  const joiner = `node-${NODES}`;
  const leaver = ids[ids.length - 1]!;
  const withJoiner = [...ids, joiner];
  const withoutLeaver = ids.filter((id) => id !== leaver);
  const snap = (members: string[]) => ({ epoch: 1, members: members.map((id) => ({ id, weight: 1 })), overrides: {} });

  // --- ours ---
  const buildTimes: number[] = [];
  let ring = HashRing.fromSnapshot(snap(ids));
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    ring = HashRing.fromSnapshot(snap(ids));
    buildTimes.push(performance.now() - t0);
  }
  const first = ids[0]!;
  for (let i = 0; i < keys.length; i++) if (ring.owner(keys[i]!) === first) sink++; // warm-up, flattens the key strings
  const rates: number[] = [];
  for (let p = 0; p < PASSES; p++) {
    const t0 = performance.now();
    for (let i = 0; i < keys.length; i++) if (ring.owner(keys[i]!) === first) sink++;
    rates.push(keys.length / ((performance.now() - t0) / 1000));
  }
  const owners = keys.map((k) => ring.owner(k)!);
  const joined = HashRing.fromSnapshot(snap(withJoiner));
  const left = HashRing.fromSnapshot(snap(withoutLeaver));
  const movedOnJoin = movedShare(owners, keys.map((k) => joined.owner(k)!));
  const movedOnLeave = movedShare(owners, keys.map((k) => left.owner(k)!));

  // --- peer: hashring ---
  const peer = new PeerHashRing(ids);
  const timed = keys.slice(0, Math.min(keys.length, PEER_TIMED_KEYS));
  for (let i = 0; i < Math.min(timed.length, 20_000); i++) if (peer.get(timed[i]!) === first) sink++;
  const peerRates: number[] = [];
  for (let p = 0; p < PEER_PASSES; p++) {
    const t0 = performance.now();
    for (let i = 0; i < timed.length; i++) if (peer.get(timed[i]!) === first) sink++;
    peerRates.push(timed.length / ((performance.now() - t0) / 1000));
  }
  const peerHashes = new Float64Array(keys.length);
  for (let i = 0; i < keys.length; i++) peerHashes[i] = peer.hashValue(keys[i]!);
  const peerOwnersOf = (r: PeerRing) => Array.from(peerHashes, (h) => r.ring[r.find(h)]!.server);
  const peerOwners = peerOwnersOf(peer);
  const peerMovedOnJoin = movedShare(peerOwners, peerOwnersOf(new PeerHashRing(withJoiner)));
  const peerMovedOnLeave = movedShare(peerOwners, peerOwnersOf(new PeerHashRing(withoutLeaver)));

  const ours = spread(owners, ids);
  const theirs = spread(peerOwners, ids);
  const lookupsPerSec = Math.round(median(rates));
  const peerLookupsPerSec = Math.round(median(peerRates));
  const figures = {
    bench: 'ring',
    keys: keyCount,
    nodes: NODES,
    vnodes: ring.vnodesPerWeight,
    peerPointsPerNode: peer.ring.length / NODES,
    buildMs: round(median(buildTimes), 3),
    lookupsPerSec,
    peerLookupsPerSec,
    speedup: round(lookupsPerSec / peerLookupsPerSec, 1),
    maxOverAvg: round(ours.maxOverAvg, 4),
    peerMaxOverAvg: round(theirs.maxOverAvg, 4),
    stddevPct: round(ours.stddevPct, 2),
    peerStddevPct: round(theirs.stddevPct, 2),
    movedOnJoin: round(movedOnJoin, 4),
    idealMovedOnJoin: round(1 / (NODES + 1), 4),
    peerMovedOnJoin: round(peerMovedOnJoin, 4),
    movedOnLeave: round(movedOnLeave, 4),
    idealMovedOnLeave: round(1 / NODES, 4),
    peerMovedOnLeave: round(peerMovedOnLeave, 4),
    leavingNode: leaver,
  };

  console.log(`ring: ${NODES} nodes, ${keyCount.toLocaleString('en-US')} keys; chorus ${figures.vnodes} points per node, hashring ${figures.peerPointsPerNode}; ring build ${figures.buildMs} ms`);
  console.table({
    'lookups/s (median)': { chorus: lookupsPerSec, hashring: peerLookupsPerSec, ideal: '' },
    'max/avg keys per node': { chorus: figures.maxOverAvg, hashring: figures.peerMaxOverAvg, ideal: 1 },
    'stddev keys per node %': { chorus: figures.stddevPct, hashring: figures.peerStddevPct, ideal: 0 },
    [`moved when ${joiner} joins`]: { chorus: figures.movedOnJoin, hashring: figures.peerMovedOnJoin, ideal: figures.idealMovedOnJoin },
    [`moved when ${leaver} leaves`]: { chorus: figures.movedOnLeave, hashring: figures.peerMovedOnLeave, ideal: figures.idealMovedOnLeave },
  });
  if (sink < 0) console.log(sink); // never true; reads the sink
  return figures;
}

/** Fraction of positions where the owner changed. */
function movedShare(before: readonly string[], after: readonly string[]): number {
  let moved = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) moved++;
  return moved / before.length;
}

/** max/avg and population standard deviation (in % of the mean) of keys per node. */
function spread(owners: readonly string[], ids: readonly string[]): { maxOverAvg: number; stddevPct: number } {
  const counts = new Map<string, number>(ids.map((id) => [id, 0]));
  for (const o of owners) counts.set(o, (counts.get(o) ?? 0) + 1);
  const values = [...counts.values()];
  const mean = owners.length / ids.length;
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
  return { maxOverAvg: Math.max(...values) / mean, stddevPct: (100 * Math.sqrt(variance)) / mean };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >>> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// Run on its own: print the table, then the figures as the very last line.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const figures = await run(process.argv.slice(2));
  console.log(JSON.stringify(figures));
}
