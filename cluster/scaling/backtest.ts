import { meanApe, preScale, SeasonalForecaster, type LoadPoint } from './forecast.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** A synthetic load trace: daily and weekly cycles, a trend and noise, from a seed. */
export function syntheticTrace(opts: { days: number; start?: number; base?: number; trendPerWeek?: number; noise?: number; seed?: number; stepMs?: number }): LoadPoint[] {
  const start = opts.start ?? Date.UTC(2026, 0, 4); // a Sunday
  const base = opts.base ?? 4000;
  const step = opts.stepMs ?? 5 * MIN;
  let s = (opts.seed ?? 1) >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: LoadPoint[] = [];
  for (let at = start; at < start + opts.days * DAY; at += step) {
    const d = new Date(at);
    const hour = d.getUTCHours() + d.getUTCMinutes() / 60;
    const weekday = d.getUTCDay();
    // working hours peak around 14:00, a small evening bump; weekends at 35 %
    const daily = 0.25 + 0.75 * Math.exp(-((hour - 14) ** 2) / 18) + 0.15 * Math.exp(-((hour - 21) ** 2) / 4);
    const weekly = weekday === 0 || weekday === 6 ? 0.35 : 1;
    const trend = 1 + (opts.trendPerWeek ?? 0.03) * ((at - start) / (7 * DAY));
    const noise = 1 + (opts.noise ?? 0.05) * (rnd() * 2 - 1);
    out.push({ at, value: base * daily * weekly * trend * noise });
  }
  return out;
}

/** Results of a backtest. */
export interface BacktestResult {
  trainDays: number;
  testDays: number;
  /** Mean absolute percentage error of hourly forecasts over the test days. */
  mape: number;
  /** Steps up in the nodes needed during the test days. */
  peaks: number;
  /** Of those, how many had the capacity pre-scaled at least `leadMin` minutes before. */
  preScaledInTime: number;
  leadMin: number;
  meanConfidence: number;
}

/**
 * Trains on the first `trainDays` of a trace, then walks the next
 * `testDays` every 5 minutes as the supervisor would: at each step it asks
 * for the pre-scale decision 15 min ahead and checks, at every step up of the
 * real need, whether capacity was already there.
 */
export function backtest(trace: readonly LoadPoint[], opts: { trainDays?: number; testDays?: number; perNode?: number; leadMin?: number } = {}): BacktestResult {
  const trainDays = opts.trainDays ?? 30;
  const testDays = opts.testDays ?? 7;
  const perNode = opts.perNode ?? 1000;
  const leadMin = opts.leadMin ?? 15;
  const t0 = trace[0]!.at;
  const split = t0 + trainDays * DAY;
  const train = trace.filter((p) => p.at < split);
  const test = trace.filter((p) => p.at >= split && p.at < split + testDays * DAY);
  const f = new SeasonalForecaster().fit(train);
  // hourly MAPE
  const hourly = new Map<number, number[]>();
  for (const p of test) {
    const h = Math.floor(p.at / HOUR) * HOUR;
    hourly.set(h, [...(hourly.get(h) ?? []), p.value]);
  }
  const mape = meanApe([...hourly].map(([h, vs]) => ({ actual: vs.reduce((a, b) => a + b, 0) / vs.length, predicted: f.predict(h + HOUR / 2).value })));
  // walk: capacity follows the pre-scale decisions (and the reactive need, after the fact)
  let capacity = Math.max(1, Math.ceil(test[0]!.value / perNode));
  let peaks = 0;
  let inTime = 0;
  let prevNeed = capacity;
  let confSum = 0;
  const pendingUntil: Array<{ at: number; nodes: number }> = [];
  for (const p of test) {
    const need = Math.max(1, Math.ceil(p.value / perNode));
    if (need > prevNeed) {
      peaks++;
      if (capacity >= need) inTime++;
    }
    prevNeed = need;
    const d = preScale(f, p.at, capacity, perNode, { leadMs: leadMin * MIN });
    confSum += d.peak.confidence;
    if (d.act) pendingUntil.push({ at: p.at, nodes: d.nodes });
    // pre-scaled capacity is ready at once (the decision is taken leadMin ahead); reactive scaling catches up afterwards
    capacity = Math.max(capacity, need, ...pendingUntil.filter((x) => p.at - x.at < 60 * MIN).map((x) => x.nodes));
    // scale down after the peak passed (keeps the walk honest: capacity is not just the running max)
    if (need < capacity * 0.7 && !pendingUntil.some((x) => p.at - x.at < 60 * MIN)) capacity = Math.max(need, Math.ceil(capacity * 0.8));
  }
  return { trainDays, testDays, mape, peaks, preScaledInTime: inTime, leadMin, meanConfidence: confSum / test.length };
}
