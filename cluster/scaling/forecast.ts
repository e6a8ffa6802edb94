/**
 * Predictive scaling: a forecast of the load from history, with hour-of-week
 * seasonality and a linear trend, and a confidence taken from how well the
 * same model predicted the recent past. The seed's rule: pre-scale 15 minutes
 * ahead of a predicted peak when confidence passes 0.8.
 */

const HOUR = 3_600_000;
const WEEK_HOURS = 168;

/** One observation: load (e.g. messages per second or connections) at a time. */
export interface LoadPoint { readonly at: number; readonly value: number }

/** A forecast for one future time. */
export interface Forecast {
  readonly at: number;
  readonly value: number;
  /** 0..1: 1 - the model's mean absolute percentage error on the last `validationHours` of history. */
  readonly confidence: number;
}

/**
 * Fits the model on `history` (any sampling; bucketed by hour):
 * value(t) = seasonal[hourOfWeek(t)] x (1 + slope x weeks since the middle of the history).
 */
export class SeasonalForecaster {
  private seasonal = new Float64Array(WEEK_HOURS);
  private slope = 0;
  private mid = 0;
  private mape = 1;
  private fitted = false;

  /** @param validationHours the last hours held out to measure confidence (default 48). */
  constructor(private readonly validationHours = 48) {}

  /** Fits on history; needs at least two weeks for a meaningful seasonality. */
  fit(history: readonly LoadPoint[]): this {
    const hourly = bucketHourly(history);
    if (hourly.length < WEEK_HOURS) {
      this.fitted = false;
      return this;
    }
    const cut = Math.max(WEEK_HOURS, hourly.length - this.validationHours);
    this.fitOn(hourly.slice(0, cut));
    // confidence: how well the model fitted on the earlier part predicts the held-out tail
    const held = hourly.slice(cut);
    this.mape = held.length ? meanApe(held.map((h) => ({ actual: h.value, predicted: this.valueAt(h.at) }))) : 0.5;
    // then refit on everything for the actual forecast
    this.fitOn(hourly);
    this.fitted = true;
    return this;
  }

  /** The forecast at time `at`; confidence 0 when not fitted. */
  predict(at: number): Forecast {
    if (!this.fitted) return { at, value: 0, confidence: 0 };
    return { at, value: Math.max(0, this.valueAt(at)), confidence: Math.max(0, Math.min(1, 1 - this.mape)) };
  }

  /** The highest forecast in [from, to] (hourly steps) and when. */
  peak(from: number, to: number): Forecast {
    let best = this.predict(from);
    for (let t = from; t <= to; t += HOUR / 4) {
      const f = this.predict(t);
      if (f.value > best.value) best = f;
    }
    return best;
  }

  private valueAt(at: number): number {
    const weeks = (at - this.mid) / (WEEK_HOURS * HOUR);
    return this.seasonal[hourOfWeek(at)]! * (1 + this.slope * weeks);
  }

  private fitOn(hourly: readonly LoadPoint[]): void {
    // trend: least squares of weekly means against week index, as a relative slope
    const first = hourly[0]!.at;
    const weekly = new Map<number, { sum: number; n: number }>();
    for (const h of hourly) {
      const w = Math.floor((h.at - first) / (WEEK_HOURS * HOUR));
      const e = weekly.get(w) ?? { sum: 0, n: 0 };
      e.sum += h.value;
      e.n++;
      weekly.set(w, e);
    }
    const pts = [...weekly].filter(([, e]) => e.n >= WEEK_HOURS / 2).map(([w, e]) => ({ x: w, y: e.sum / e.n }));
    const meanAll = hourly.reduce((s, h) => s + h.value, 0) / hourly.length || 1;
    let slopeAbs = 0;
    if (pts.length >= 2) {
      const mx = pts.reduce((s, p) => s + p.x, 0) / pts.length;
      const my = pts.reduce((s, p) => s + p.y, 0) / pts.length;
      const num = pts.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
      const den = pts.reduce((s, p) => s + (p.x - mx) ** 2, 0) || 1;
      slopeAbs = num / den;
    }
    this.slope = slopeAbs / meanAll;
    this.mid = (first + hourly[hourly.length - 1]!.at) / 2;
    // seasonality: mean per hour-of-week of the detrended values
    const sum = new Float64Array(WEEK_HOURS);
    const n = new Float64Array(WEEK_HOURS);
    for (const h of hourly) {
      const weeks = (h.at - this.mid) / (WEEK_HOURS * HOUR);
      const detrended = h.value / Math.max(0.05, 1 + this.slope * weeks);
      const k = hourOfWeek(h.at);
      sum[k]! += detrended;
      n[k]! += 1;
    }
    for (let k = 0; k < WEEK_HOURS; k++) this.seasonal[k] = n[k]! ? sum[k]! / n[k]! : meanAll;
  }
}

/** Hour of the week, 0 = Sunday 00:00 UTC. */
export function hourOfWeek(at: number): number {
  const d = new Date(at);
  return d.getUTCDay() * 24 + d.getUTCHours();
}

/** Averages points into hourly buckets, sorted by time. */
export function bucketHourly(points: readonly LoadPoint[]): LoadPoint[] {
  const m = new Map<number, { sum: number; n: number }>();
  for (const p of points) {
    const h = Math.floor(p.at / HOUR) * HOUR;
    const e = m.get(h) ?? { sum: 0, n: 0 };
    e.sum += p.value;
    e.n++;
    m.set(h, e);
  }
  return [...m].sort((a, b) => a[0] - b[0]).map(([at, e]) => ({ at, value: e.sum / e.n }));
}

/** Mean absolute percentage error (ignoring near-zero actuals). */
export function meanApe(pairs: ReadonlyArray<{ actual: number; predicted: number }>): number {
  const usable = pairs.filter((p) => Math.abs(p.actual) > 1e-9);
  if (!usable.length) return 0;
  return usable.reduce((s, p) => s + Math.abs(p.actual - p.predicted) / Math.abs(p.actual), 0) / usable.length;
}

/** What predictive scaling decides at one moment. */
export interface PreScale {
  readonly at: number;
  /** Nodes the predicted peak needs. */
  readonly nodes: number;
  readonly peak: Forecast;
  /** True when the peak is within the look-ahead and confident enough to act on. */
  readonly act: boolean;
  readonly reason: string;
}

/**
 * The seed's rule: look `leadMs` (15 min) ahead; if the forecast then needs
 * more nodes than now and confidence > `minConfidence` (0.8), scale now.
 */
export function preScale(f: SeasonalForecaster, now: number, currentNodes: number, perNode: number, opts: { leadMs?: number; minConfidence?: number } = {}): PreScale {
  const lead = opts.leadMs ?? 15 * 60_000;
  const minConfidence = opts.minConfidence ?? 0.8;
  const peak = f.peak(now + lead, now + lead + HOUR / 4);
  const nodes = Math.max(1, Math.ceil(peak.value / perNode));
  const act = nodes > currentNodes && peak.confidence > minConfidence;
  const reason = nodes <= currentNodes
    ? `forecast ${peak.value.toFixed(0)} at +${Math.round(lead / 60_000)} min needs ${nodes} <= ${currentNodes} nodes`
    : peak.confidence > minConfidence
      ? `forecast ${peak.value.toFixed(0)} at +${Math.round(lead / 60_000)} min needs ${nodes} nodes (confidence ${peak.confidence.toFixed(2)}): pre-scale now`
      : `forecast needs ${nodes} nodes but confidence ${peak.confidence.toFixed(2)} <= ${minConfidence}: not acting`;
  return { at: now, nodes, peak, act, reason };
}
