import type { Counter, Gauge, Histogram, Labels, Metrics } from '../../runtime/metrics.ts';

const keyOf = (name: string, labels?: Labels) =>
  labels && Object.keys(labels).length ? `${name}{${Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(',')}}` : name;

/** Metrics port as plain numbers, for tests: `value('chorus_asks_total', { outcome: 'ok' })`. */
export class MemoryMetrics implements Metrics {
  private readonly values = new Map<string, number>();
  private readonly observations = new Map<string, number[]>();
  counter(name: string): Counter {
    return { inc: (labels, v = 1) => this.add(keyOf(name, labels), v) };
  }
  gauge(name: string): Gauge {
    return {
      set: (v, labels) => void this.values.set(keyOf(name, labels), v),
      inc: (labels, v = 1) => this.add(keyOf(name, labels), v),
      dec: (labels, v = 1) => this.add(keyOf(name, labels), -v),
    };
  }
  histogram(name: string): Histogram {
    return {
      observe: (v, labels) => {
        const k = keyOf(name, labels);
        let arr = this.observations.get(k);
        if (!arr) this.observations.set(k, (arr = []));
        arr.push(v);
      },
    };
  }
  /** Current value of a counter or gauge with exactly these labels (0 if never touched). */
  value(name: string, labels?: Labels): number {
    return this.values.get(keyOf(name, labels)) ?? 0;
  }
  /** Observations recorded by a histogram with exactly these labels. */
  observed(name: string, labels?: Labels): readonly number[] {
    return this.observations.get(keyOf(name, labels)) ?? [];
  }
  private add(k: string, v: number) {
    this.values.set(k, (this.values.get(k) ?? 0) + v);
  }
}
