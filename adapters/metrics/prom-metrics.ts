import { Counter as PCounter, Gauge as PGauge, Histogram as PHistogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Counter, Gauge, Histogram, Labels, Metrics } from '../../runtime/metrics.ts';

/** Metrics port on prom-client. One registry per node, so several nodes in one process keep separate figures. */
export class PromMetrics implements Metrics {
  readonly registry: Registry;
  private readonly made = new Map<string, Counter | Gauge | Histogram>();

  /** @param opts.defaultMetrics also collect process metrics (CPU, memory, event loop lag); default true. @param opts.labels constant labels (e.g. node). */
  constructor(opts: { defaultMetrics?: boolean; labels?: Record<string, string> } = {}) {
    this.registry = new Registry();
    if (opts.labels) this.registry.setDefaultLabels(opts.labels);
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.once(name, () => {
      const c = new PCounter({ name, help, labelNames: [...labelNames], registers: [this.registry] });
      return { inc: (labels?: Labels, v = 1) => (labels ? c.inc(labels, v) : c.inc(v)) };
    }) as Counter;
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.once(name, () => {
      const g = new PGauge({ name, help, labelNames: [...labelNames], registers: [this.registry] });
      return {
        set: (v: number, labels?: Labels) => (labels ? g.set(labels, v) : g.set(v)),
        inc: (labels?: Labels, v = 1) => (labels ? g.inc(labels, v) : g.inc(v)),
        dec: (labels?: Labels, v = 1) => (labels ? g.dec(labels, v) : g.dec(v)),
      };
    }) as Gauge;
  }
  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets?: readonly number[]): Histogram {
    return this.once(name, () => {
      const h = new PHistogram({ name, help, labelNames: [...labelNames], registers: [this.registry], ...(buckets ? { buckets: [...buckets] } : {}) });
      return { observe: (v: number, labels?: Labels) => (labels ? h.observe(labels, v) : h.observe(v)) };
    }) as Histogram;
  }
  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
  /** Content-Type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }
  private once(name: string, make: () => Counter | Gauge | Histogram) {
    let m = this.made.get(name);
    if (!m) this.made.set(name, (m = make()));
    return m;
  }
}
