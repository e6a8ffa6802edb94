import { HashRing } from '../../runtime/index.ts';

/** An edge a client may connect to, as the cluster sees it. */
export interface EdgeCandidate {
  readonly id: string;
  /** WebSocket base URL of the edge, e.g. ws://10.0.0.5:8080 */
  readonly url: string;
  readonly region: string;
  /** Connections it holds now. */
  readonly connections: number;
  /** Healthy = heartbeating and not draining. */
  readonly healthy: boolean;
  readonly weight?: number;
}

/** Where a user should connect, and why. */
export interface EdgeChoice {
  readonly edge: EdgeCandidate;
  /** 'affinity': the user's ring owner; 'overflow': the owner was over the load bound; 'fallback-region': no healthy edge in the asked region. */
  readonly reason: 'affinity' | 'overflow' | 'fallback-region';
}

/**
 * The connect call's routing (Slack's "connect" call, the seed's
 * routeConnection): users are hashed onto healthy edges of their region with
 * a consistent-hash ring, so a user keeps landing on the same edge (and its
 * channel subscriptions stay warm); an edge over `c` times the average load,
 * or over `maxConnections`, passes the user to the next edge on the ring; a
 * region with no healthy edge falls back to all regions.
 */
export function chooseEdge(
  userId: string,
  candidates: readonly EdgeCandidate[],
  opts: { region?: string; c?: number; maxConnections?: number } = {},
): EdgeChoice | undefined {
  const healthy = candidates.filter((e) => e.healthy);
  if (!healthy.length) return undefined;
  let pool = opts.region ? healthy.filter((e) => e.region === opts.region) : healthy;
  let reason: EdgeChoice['reason'] = 'affinity';
  if (!pool.length) {
    pool = healthy;
    reason = 'fallback-region';
  }
  const ring = HashRing.fromSnapshot({ epoch: 0, members: pool.map((e) => ({ id: e.id, weight: e.weight ?? 1 })), overrides: {} }, { vnodes: 64 });
  const byId = new Map(pool.map((e) => [e.id, e]));
  const total = pool.reduce((s, e) => s + e.connections, 0);
  const totalWeight = pool.reduce((s, e) => s + (e.weight ?? 1), 0);
  const c = opts.c ?? 1.25;
  const max = opts.maxConnections ?? 50_000;
  const order = ring.preferenceList(userId);
  for (let i = 0; i < order.length; i++) {
    const e = byId.get(order[i]!)!;
    // bound: c x the average load (per unit of weight), counting the new connection
    const bound = Math.max(1, Math.ceil((c * (total + 1) * (e.weight ?? 1)) / totalWeight));
    if (e.connections < bound && e.connections < max) return { edge: e, reason: i === 0 ? reason : 'overflow' };
  }
  // everyone is over the bound: least loaded
  const least = [...pool].sort((a, b) => a.connections - b.connections)[0]!;
  return { edge: least, reason: 'overflow' };
}
