/**
 * Measuring helpers shared by the load benches: a mergeable latency
 * histogram, and CPU/RSS of any process read from /proc (so a server's
 * figures are measured outside it, the same way for Node servers,
 * nats-server and redis-server).
 */
import { readFileSync } from 'node:fs';

/** Relative width of a histogram bucket: 2 %, so percentiles are within 2 % of the truth. */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
/** Buckets cover 1 µs .. about 8 minutes. */
export const BUCKETS = 1000;

/**
 * A log-bucketed latency histogram in microseconds: O(1) record, fixed size,
 * merged across processes by adding counts (sent over IPC as sparse pairs).
 */
export class Histogram {
  readonly counts = new Float64Array(BUCKETS);
  count = 0;
  max = 0;

  /** Records one latency in microseconds. */
  record(us: number): void {
    const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / LOG_GROWTH));
    this.counts[i]!++;
    this.count++;
    if (us > this.max) this.max = us;
  }
  /** Adds another histogram (or its sparse form). */
  merge(o: Histogram | SparseHistogram): void {
    if (o instanceof Histogram) {
      for (let i = 0; i < BUCKETS; i++) this.counts[i]! += o.counts[i]!;
    } else {
      for (const [i, c] of o.buckets) this.counts[i]! += c;
    }
    this.count += o.count;
    this.max = Math.max(this.max, o.max);
  }
  /** The value at quantile q (0..1), in microseconds (upper bound of its bucket). */
  quantileUs(q: number): number {
    if (this.count === 0) return NaN;
    const want = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= want) return Math.min(GROWTH ** i, this.max);
    }
    return this.max;
  }
  /** Quantile in milliseconds, rounded to 0.01 ms. */
  ms(q: number): number {
    return Math.round(this.quantileUs(q) / 10) / 100;
  }
  /** A compact form for IPC. */
  sparse(): SparseHistogram {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]) buckets.push([i, this.counts[i]!]);
    return { buckets, count: this.count, max: this.max };
  }
}

/** Histogram counts as [bucket, count] pairs. */
export interface SparseHistogram { buckets: Array<[number, number]>; count: number; max: number }

const TICK = 100; // CLK_TCK on Linux (getconf CLK_TCK)

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; 0 if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after the command: state(3) ... utime(14) stime(15) -> indexes 11, 12 here
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return 0;
  }
}

/** Resident set size of a process in bytes, from /proc/<pid>/status; 0 if it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Machine-wide CPU seconds from /proc/stat: busy (everything but idle and iowait) and the softirq part of it (loopback TCP work is largely done there, charged to no process). */
export function machineCpu(): { busy: number; softirq: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: (total - f[3]! - f[4]!) / TICK, softirq: f[6]! / TICK };
  } catch {
    return { busy: 0, softirq: 0 };
  }
}

/** Sum of CPU seconds of several processes. */
export function cpuOf(pids: readonly number[]): number {
  let t = 0;
  for (const p of pids) t += cpuSeconds(p);
  return t;
}

/** Rounds to `d` decimals. */
export function round(x: number, d = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

/** Median of a list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >>> 1;
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
