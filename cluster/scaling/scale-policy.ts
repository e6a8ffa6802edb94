/**
 * The reactive scale rule of the seed: nodes needed = the larger of
 * ceil(connections / connectionsPerNode) and ceil(messages per second /
 * messagesPerNode); scale up at once, scale down only when the need falls
 * below 70 % of the current size and has stayed there for `downCooldownMs`
 * (hysteresis, so a dip does not make the cluster flap).
 */

/** Settings of the rule, with the seed's defaults. */
export interface ScalePolicy {
  /** Connections one node should hold. Default 50,000 (the seed's per-server figure). */
  connectionsPerNode: number;
  /** Messages per second one node should carry. Default 1,000 (the seed's HPA target). */
  messagesPerNode: number;
  /** Scale down only below this share of the current size. Default 0.7. */
  scaleDownBelow: number;
  /** The need must stay low this long before scaling down. Default 10 min. */
  downCooldownMs: number;
  minNodes: number;
  maxNodes: number;
}

/** The seed's numbers. */
export const DEFAULT_SCALE_POLICY: Readonly<ScalePolicy> = Object.freeze({
  connectionsPerNode: 50_000, messagesPerNode: 1000, scaleDownBelow: 0.7, downCooldownMs: 10 * 60_000, minNodes: 1, maxNodes: 100,
});

/** What the rule saw. */
export interface LoadSample {
  readonly at: number;
  readonly connections: number;
  readonly messagesPerSec: number;
  readonly currentNodes: number;
}

/** A decision with everything needed to explain it. */
export interface ScaleDecision {
  readonly at: number;
  readonly current: number;
  readonly target: number;
  readonly action: 'up' | 'down' | 'hold';
  /** Nodes needed by connections, by messages, and overall (before min/max). */
  readonly needed: { byConnections: number; byMessages: number; overall: number };
  /** The rule that decided, in words. */
  readonly reason: string;
  readonly inputs: LoadSample;
}

/** Applies the rule over successive samples; keeps the state hysteresis needs. */
export class ReactiveScaler {
  private lowSince: number | undefined;
  constructor(readonly policy: ScalePolicy = DEFAULT_SCALE_POLICY) {}

  /** Decides for one sample. */
  decide(s: LoadSample): ScaleDecision {
    const p = this.policy;
    const byConnections = Math.ceil(s.connections / p.connectionsPerNode);
    const byMessages = Math.ceil(s.messagesPerSec / p.messagesPerNode);
    const overall = Math.max(byConnections, byMessages, 0);
    const clamp = (n: number) => Math.min(p.maxNodes, Math.max(p.minNodes, n));
    const base = { at: s.at, current: s.currentNodes, needed: { byConnections, byMessages, overall }, inputs: s };
    if (overall > s.currentNodes) {
      this.lowSince = undefined;
      const target = clamp(overall);
      const by = byConnections >= byMessages ? `connections ${s.connections} / ${p.connectionsPerNode} per node` : `messages ${s.messagesPerSec.toFixed(0)}/s / ${p.messagesPerNode} per node`;
      return { ...base, target, action: target > s.currentNodes ? 'up' : 'hold', reason: `need ${overall} nodes (${by}) > ${s.currentNodes}: scale up now${target !== overall ? ` (capped at ${target})` : ''}` };
    }
    if (overall < s.currentNodes * p.scaleDownBelow) {
      this.lowSince ??= s.at;
      const waited = s.at - this.lowSince;
      if (waited >= p.downCooldownMs) {
        this.lowSince = undefined;
        const target = clamp(Math.max(overall, 1));
        return { ...base, target, action: target < s.currentNodes ? 'down' : 'hold', reason: `need ${overall} < ${p.scaleDownBelow * 100}% of ${s.currentNodes} for ${Math.round(waited / 1000)} s: scale down` };
      }
      return { ...base, target: s.currentNodes, action: 'hold', reason: `need ${overall} < ${p.scaleDownBelow * 100}% of ${s.currentNodes}, waiting ${Math.round((p.downCooldownMs - waited) / 1000)} s more before scaling down` };
    }
    this.lowSince = undefined;
    return { ...base, target: s.currentNodes, action: 'hold', reason: `need ${overall} within [${Math.ceil(s.currentNodes * p.scaleDownBelow)}, ${s.currentNodes}]: hold` };
  }
}
