import { noopMetrics, silentLogger, type Clock, type Logger, type Metrics } from '../../runtime/index.ts';
import type { MemberInfo } from '../membership.ts';
import { preScale, SeasonalForecaster, type LoadPoint, type PreScale } from './forecast.ts';
import { DEFAULT_SCALE_POLICY, ReactiveScaler, type ScaleDecision, type ScalePolicy } from './scale-policy.ts';
import type { Scaler } from './scaler.ts';

/** The advisor's latest view, for the inspector CLI and /admin/scale. */
export interface ScaleExplanation {
  readonly reactive: ScaleDecision;
  readonly predictive: PreScale | undefined;
  readonly target: number;
  readonly applied: boolean;
  readonly samples: number;
}

/**
 * Runs on the supervisor leader: samples the cluster's load from member
 * heartbeats (connections, messages per second), applies the reactive rule
 * and the forecast, explains the result (logs, metrics, CLI) and applies it
 * through the Scaler port. Samples are kept in memory (30 days at one a
 * minute); a new leader starts with the history it has seen itself.
 */
export class ScaleAdvisor {
  private readonly reactive: ScaleReactive;
  private readonly history: LoadPoint[] = [];
  private forecaster = new SeasonalForecaster();
  private lastFit = 0;
  private last: ScaleExplanation | undefined;
  private readonly g: { desired: ReturnType<Metrics['gauge']>; forecast: ReturnType<Metrics['gauge']>; confidence: ReturnType<Metrics['gauge']> };

  constructor(private readonly o: { scaler: Scaler; clock: Clock; policy?: ScalePolicy; logger?: Logger; metrics?: Metrics; sampleEveryMs?: number }) {
    this.reactive = new ReactiveScaler(o.policy ?? DEFAULT_SCALE_POLICY);
    const m = o.metrics ?? noopMetrics;
    this.g = {
      desired: m.gauge('chorus_scale_desired_nodes', 'Nodes the scale rules want now'),
      forecast: m.gauge('chorus_scale_forecast_messages_per_second', 'Forecast message rate 15 minutes ahead'),
      confidence: m.gauge('chorus_scale_forecast_confidence', 'Confidence of the forecast (0..1)'),
    };
  }

  /** The last explanation, if any. */
  get explanation(): ScaleExplanation | undefined {
    return this.last;
  }

  /** One decision from the live members' heartbeats. */
  async tick(members: readonly MemberInfo[]): Promise<ScaleExplanation> {
    const now = this.o.clock.now();
    const connections = members.reduce((s, m) => s + (m.load.connections ?? 0), 0);
    const messagesPerSec = members.reduce((s, m) => s + (m.load.messagesPerSec ?? 0), 0);
    const current = await this.o.scaler.currentReplicas().catch(() => members.length);
    this.record(now, messagesPerSec);
    const reactive = this.reactive.decide({ at: now, connections, messagesPerSec, currentNodes: current });
    if (now - this.lastFit > 3_600_000 && this.history.length > 0) {
      this.forecaster = new SeasonalForecaster().fit(this.history);
      this.lastFit = now;
    }
    const predictive = this.history.length ? preScale(this.forecaster, now, current, this.reactive.policy.messagesPerNode) : undefined;
    let target = reactive.target;
    if (predictive?.act && predictive.nodes > target) target = Math.min(predictive.nodes, this.reactive.policy.maxNodes);
    let applied = false;
    if (target !== current) {
      const reason = predictive?.act && target === predictive.nodes ? predictive.reason : reactive.reason;
      try {
        await this.o.scaler.setReplicas(target, reason);
        applied = true;
      } catch (err) {
        (this.o.logger ?? silentLogger).warn({ err: (err as Error).message, target }, 'scaler failed');
      }
      (this.o.logger ?? silentLogger).info({ current, target, reason, connections, messagesPerSec }, 'scale decision');
    }
    this.g.desired.set(target);
    if (predictive) {
      this.g.forecast.set(predictive.peak.value);
      this.g.confidence.set(predictive.peak.confidence);
    }
    this.last = { reactive, predictive, target, applied, samples: this.history.length };
    return this.last;
  }

  private record(at: number, value: number): void {
    const prev = this.history[this.history.length - 1];
    if (prev && at - prev.at < 60_000) return;
    this.history.push({ at, value });
    if (this.history.length > 30 * 24 * 60) this.history.shift();
  }
}

type ScaleReactive = ReactiveScaler;
