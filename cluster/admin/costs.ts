/**
 * The seed's cost optimisation ("Resource Right-Sizing"): compute
 * recommendations from the utilisation the members report in their
 * heartbeats, and a storage-tier section supplied by whoever owns the file
 * store (a provider; absent until one is wired in).
 */
import type { MemberInfo } from '../membership.ts';

/** The seed's right-sizing threshold: a node whose average CPU is under this (percent) can be smaller. */
export const DOWNSIZE_CPU_PCT = 30;
/** The seed's estimate of what downsizing saves: 40 % of the node's cost. */
export const DOWNSIZE_SAVING = 0.4;
/** WebSocket connections one node is sized for (the seed's HPA: 50,000 per node). */
export const CONNECTIONS_PER_NODE = 50_000;
/** The fleet is oversized when it uses less than this share of its connection capacity. */
export const FLEET_UNDERUSED = 0.3;

/** One storage-tier recommendation of the file store's tiering plan (the seed's `storage_tier`). */
export interface StorageTierRecommendation {
  /** Bucket or key prefix the recommendation is about. */
  readonly target: string;
  /** Storage class today, e.g. `STANDARD`. */
  readonly currentTier: string;
  /** Storage class recommended, e.g. `STANDARD_IA` or `GLACIER`. */
  readonly recommendedTier: string;
  /** Objects and bytes concerned, when known. */
  readonly objects?: number;
  readonly bytes?: number;
  /** Estimated monthly saving in `StorageCostReport.currency`, when a price list is known. */
  readonly monthlySavings?: number;
  /** Why, in one line (e.g. "older than 90 days, read fewer than 5 times"). */
  readonly why: string;
}

/** What a storage cost provider (the file store's tiering plan) reports to `chorus costs`. */
export interface StorageCostReport {
  /** Where the files live, e.g. `s3://chorus-files` or `./data/files`. */
  readonly store: string;
  /** Totals, when known. */
  readonly objects?: number;
  readonly bytes?: number;
  /** Currency of the money fields. Default 'USD'. */
  readonly currency?: string;
  readonly recommendations: readonly StorageTierRecommendation[];
}

/** Supplies the storage section of `costs`; the composition root wires the file store's tiering plan here. */
export type StorageCostProvider = () => Promise<StorageCostReport>;

/** One compute recommendation. */
export interface ComputeRecommendation {
  readonly type: 'downsize' | 'fewer-nodes';
  /** The node (downsize) or the fleet's size (fewer-nodes). */
  readonly node?: string;
  readonly nodes?: number;
  readonly cpuPct?: number;
  readonly connections?: number;
  readonly why: string;
  readonly estimatedSavings: string;
}

/** The answer of the `costs` admin operation. */
export interface CostsView {
  /** The node that answered. */
  readonly node: string;
  /** Compute right-sizing from the members' reported load. */
  readonly recommendations: readonly ComputeRecommendation[];
  /** The storage section: the provider's report, or why there is none. */
  readonly storage: ({ readonly configured: true } & StorageCostReport) | { readonly configured: false } | { readonly configured: true; readonly error: string };
}

/**
 * Right-sizing recommendations from the members' heartbeats: a node under
 * DOWNSIZE_CPU_PCT CPU can be smaller; a fleet using less than
 * FLEET_UNDERUSED of its connection capacity can have fewer nodes.
 */
export function rightSizing(members: readonly Pick<MemberInfo, 'id' | 'load'>[]): ComputeRecommendation[] {
  const recs: ComputeRecommendation[] = [];
  for (const m of members) {
    const cpu = m.load.cpuPct;
    if (typeof cpu === 'number' && cpu < DOWNSIZE_CPU_PCT) {
      recs.push({ type: 'downsize', node: m.id, cpuPct: cpu, why: `average CPU under ${DOWNSIZE_CPU_PCT}% (the seed's right-sizing rule)`, estimatedSavings: `~${DOWNSIZE_SAVING * 100}% of its cost` });
    }
  }
  const total = members.reduce((s, m) => s + (m.load.connections ?? 0), 0);
  if (members.length > 1 && total < FLEET_UNDERUSED * CONNECTIONS_PER_NODE * members.length) {
    const needed = Math.max(1, Math.ceil(total / CONNECTIONS_PER_NODE));
    recs.push({
      type: 'fewer-nodes', nodes: members.length, connections: total,
      why: `connections under ${FLEET_UNDERUSED * 100}% of the fleet's capacity (${CONNECTIONS_PER_NODE} per node)`,
      estimatedSavings: `${members.length - needed} of ${members.length} nodes by connections (the scale rules also weigh messages per second)`,
    });
  }
  return recs;
}

/** The storage section: the provider's report, `configured: false` without one, the error when it fails (the compute part still answers). */
export async function storageSection(provider: StorageCostProvider | undefined): Promise<CostsView['storage']> {
  if (!provider) return { configured: false };
  try {
    return { configured: true, ...(await provider()) };
  } catch (err) {
    return { configured: true, error: (err as Error)?.message ?? String(err) };
  }
}
