/**
 * The Metrics port. The runtime counts through it and never imports
 * prom-client; adapters/metrics implements it on prom-client and
 * adapters/memory keeps plain numbers for tests.
 */

/** Label values by label name. */
export type Labels = Readonly<Record<string, string | number>>;

/** A monotonically increasing count. */
export interface Counter { inc(labels?: Labels, value?: number): void }
/** A value that goes up and down. */
export interface Gauge { set(value: number, labels?: Labels): void; inc(labels?: Labels, value?: number): void; dec(labels?: Labels, value?: number): void }
/** A distribution of observations (seconds for durations). */
export interface Histogram { observe(value: number, labels?: Labels): void }

/** Creates or returns named instruments; asking twice for one name returns the same instrument. */
export interface Metrics {
  counter(name: string, help: string, labelNames?: readonly string[]): Counter;
  gauge(name: string, help: string, labelNames?: readonly string[]): Gauge;
  histogram(name: string, help: string, labelNames?: readonly string[], buckets?: readonly number[]): Histogram;
}

/** Metrics that go nowhere (the default when none is given). */
export const noopMetrics: Metrics = {
  counter: () => ({ inc() {} }),
  gauge: () => ({ set() {}, inc() {}, dec() {} }),
  histogram: () => ({ observe() {} }),
};

/** Token for the tsyringe container. */
export const METRICS = Symbol.for('chorus.Metrics');

/** Structured logger (pino's shape, so pino plugs in directly). */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: object): Logger;
}

/** A logger that discards everything. */
export const silentLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child() { return silentLogger; },
};

/** Token for the tsyringe container. */
export const LOGGER = Symbol.for('chorus.Logger');
