/**
 * Charts of bench results as plain SVG, made from the JSON a bench returns
 * (no browser, no dependency): grouped horizontal bars for comparisons, a
 * line chart for latency against load. `chartsFor(figures)` knows each
 * bench's JSON; `writeCharts(dir, figures)` writes `<bench>-<chart>.svg`
 * next to the JSON. `npm run bench -- charts [dir]` redraws every chart from
 * the JSON files in `dir` (default bench/results).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One bar: a series name and its value. */
export interface Bar {
  readonly series: string;
  readonly value: number;
}
/** A bar chart: groups of bars (one per series) with a unit; `better` says which way is good. */
export interface BarChart {
  readonly kind: 'bar';
  readonly name: string;
  readonly title: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  readonly groups: ReadonlyArray<{ readonly label: string; readonly bars: readonly Bar[] }>;
}
/** A line chart: series of (x, y) points. */
export interface LineChart {
  readonly kind: 'line';
  readonly name: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: ReadonlyArray<{ readonly name: string; readonly points: ReadonlyArray<readonly [number, number]> }>;
}
/** Either chart. */
export type Chart = BarChart | LineChart;

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1', '#edc948', '#9c755f'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number) => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : String(Math.round(v * 100) / 100));

/** A "nice" upper bound for an axis (1, 2, 2.5, 5 x 10^k). */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** Renders a grouped horizontal bar chart. */
export function renderBar(c: BarChart, subtitle = ''): string {
  const series = [...new Set(c.groups.flatMap((g) => g.bars.map((b) => b.series)))];
  const color = (s: string) => PALETTE[series.indexOf(s) % PALETTE.length]!;
  const barH = 16, gap = 4, groupGap = 14, left = 170, right = 90, top = 58 + (subtitle ? 14 : 0), width = 760;
  const plotW = width - left - right;
  const max = niceMax(Math.max(...c.groups.flatMap((g) => g.bars.map((b) => b.value))));
  let y = top;
  const parts: string[] = [];
  for (const g of c.groups) {
    const gh = g.bars.length * (barH + gap) - gap;
    parts.push(`<text x="${left - 8}" y="${y + gh / 2 + 4}" text-anchor="end" class="lbl">${esc(g.label)}</text>`);
    for (const b of g.bars) {
      const w = Math.max(1, (b.value / max) * plotW);
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color(b.series)}"><title>${esc(b.series)}: ${fmt(b.value)} ${esc(c.unit)}</title></rect>`);
      parts.push(`<text x="${left + w + 4}" y="${y + barH - 4}" class="val">${fmt(b.value)}</text>`);
      y += barH + gap;
    }
    y += groupGap - gap;
  }
  const plotBottom = y;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const x = left + f * plotW;
    return `<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${plotBottom}" class="grid"/><text x="${x}" y="${plotBottom + 14}" text-anchor="middle" class="tick">${fmt(f * max)}</text>`;
  });
  const perRow = 4;
  const legend = series.map((s, i) => {
    const lx = 16 + (i % perRow) * 185, ly = plotBottom + 26 + Math.floor(i / perRow) * 18;
    return `<rect x="${lx}" y="${ly}" width="10" height="10" fill="${color(s)}"/><text x="${lx + 14}" y="${ly + 9}" class="tick">${esc(s)}</text>`;
  });
  const height = plotBottom + 42 + Math.ceil(series.length / perRow) * 18;
  return svg(width, height, c.title, `${c.unit} (${c.better} is better)${subtitle ? ` · ${subtitle}` : ''}`, [...ticks, ...parts, ...legend]);
}

/** Renders a line chart (linear axes from 0). */
export function renderLine(c: LineChart, subtitle = ''): string {
  const left = 70, right = 30, top = 58 + (subtitle ? 14 : 0), width = 760, plotH = 300;
  const plotW = width - left - right;
  const xs = c.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = c.series.flatMap((s) => s.points.map((p) => p[1]));
  const xMax = niceMax(Math.max(...xs)), yMax = niceMax(Math.max(...ys));
  const X = (v: number) => left + (v / xMax) * plotW;
  const Y = (v: number) => top + plotH - (v / yMax) * plotH;
  const parts: string[] = [];
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${left}" y1="${Y(f * yMax)}" x2="${left + plotW}" y2="${Y(f * yMax)}" class="grid"/><text x="${left - 6}" y="${Y(f * yMax) + 4}" text-anchor="end" class="tick">${fmt(f * yMax)}</text>`);
    parts.push(`<text x="${X(f * xMax)}" y="${top + plotH + 16}" text-anchor="middle" class="tick">${fmt(f * xMax)}</text>`);
  }
  c.series.forEach((s, i) => {
    const col = PALETTE[i % PALETTE.length]!;
    parts.push(`<polyline fill="none" stroke="${col}" stroke-width="2" points="${s.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of s.points) parts.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${col}"><title>${esc(s.name)}: ${fmt(x)}, ${fmt(y)}</title></circle>`);
    parts.push(`<rect x="${left + i * 170}" y="${top + plotH + 34}" width="10" height="10" fill="${col}"/><text x="${left + i * 170 + 14}" y="${top + plotH + 43}" class="tick">${esc(s.name)}</text>`);
  });
  parts.push(`<text x="${left + plotW / 2}" y="${top + plotH + 30}" text-anchor="middle" class="tick">${esc(c.xLabel)}</text>`);
  return svg(width, top + plotH + 56, c.title, `${c.yLabel}${subtitle ? ` · ${subtitle}` : ''}`, parts);
}

function svg(w: number, h: number, title: string, sub: string, body: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="system-ui, sans-serif">
<style>.lbl{font-size:12px;fill:#222}.val{font-size:11px;fill:#333}.tick{font-size:11px;fill:#555}.grid{stroke:#ddd;stroke-width:1}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="16" y="24" font-size="16" font-weight="600" fill="#111">${esc(title)}</text>
<text x="16" y="44" font-size="12" fill="#555">${esc(sub)}</text>
${body.join('\n')}
</svg>
`;
}

type J = Record<string, any>;
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const bars = (pairs: Array<[string, unknown]>): Bar[] => pairs.flatMap(([series, v]) => (num(v) !== undefined ? [{ series, value: num(v)! }] : []));

/** The charts of one bench's figures (empty for a bench without charts). */
export function chartsFor(f: J): Chart[] {
  switch (f.bench) {
    case 'fanout': {
      const sys = (f.systems ?? []) as J[];
      const shapes = [...new Set(sys.map((s) => s.shape as string))];
      const group = (metric: (s: J) => unknown) => shapes.map((shape) => ({
        label: `${shape} (${sys.find((s) => s.shape === shape)?.connections ?? '?'} clients)`,
        bars: bars(sys.filter((s) => s.shape === shape).map((s) => [s.system.replace(/ x2.*/, ' x2'), metric(s)])),
      }));
      return [
        { kind: 'bar', name: 'deliveries', title: 'Fan-out at saturation: deliveries per second', unit: 'deliveries/s', better: 'higher', groups: group((s) => s.saturation?.deliveredPerSec) },
        { kind: 'bar', name: 'cpu', title: 'Fan-out: server CPU-seconds per million deliveries', unit: 'CPU-s / 1M', better: 'lower', groups: group((s) => s.saturation?.cpuSecPerMillion) },
        { kind: 'bar', name: 'memory', title: 'Memory per idle connection (process RSS)', unit: 'bytes', better: 'lower', groups: group((s) => s.bytesPerConn).filter((g) => g.bars.length) },
      ];
    }
    case 'latency': {
      const rows = (f.rows ?? []) as J[];
      return [{
        kind: 'line', name: 'curve', title: `Chorus end-to-end latency against load (${f.connections} clients)`, xLabel: '% of saturation', yLabel: 'ms',
        series: [
          { name: 'p50', points: rows.map((r) => [r.loadPct, r.p50Ms] as const) },
          { name: 'p99', points: rows.map((r) => [r.loadPct, r.p99Ms] as const) },
          { name: 'p99.9', points: rows.map((r) => [r.loadPct, r.p999Ms] as const) },
        ],
      }];
    }
    case 'connections':
      return [{
        kind: 'bar', name: 'memory', title: `Idle connections: memory per connection (${f.connections} held)`, unit: 'bytes', better: 'lower',
        groups: [{ label: 'RSS per connection', bars: bars([['Chorus', f.bytesPerConn], ['raw ws', f.wsBytesPerConn]]) }, { label: 'accept time (s)', bars: bars([['Chorus', f.acceptSec], ['raw ws', f.wsAcceptSec]]) }],
      }];
    case 'ring':
      return [
        { kind: 'bar', name: 'lookups', title: `Hash ring lookups per second (${f.nodes} nodes)`, unit: 'lookups/s', better: 'higher', groups: [{ label: 'lookups/s', bars: bars([['Chorus HashRing', f.lookupsPerSec], ['hashring (npm)', f.peerLookupsPerSec]]) }] },
        {
          kind: 'bar', name: 'balance', title: 'Hash ring balance and movement', unit: 'ratio', better: 'lower',
          groups: [
            { label: 'max / avg keys', bars: bars([['Chorus HashRing', f.maxOverAvg], ['hashring (npm)', f.peerMaxOverAvg], ['ideal', 1]]) },
            { label: 'moved on join', bars: bars([['Chorus HashRing', f.movedOnJoin], ['hashring (npm)', f.peerMovedOnJoin], ['ideal', f.idealMovedOnJoin]]) },
            { label: 'moved on leave', bars: bars([['Chorus HashRing', f.movedOnLeave], ['hashring (npm)', f.peerMovedOnLeave], ['ideal', f.idealMovedOnLeave]]) },
          ],
        },
      ];
    case 'history': {
      const runs = (f.runs ?? {}) as Record<string, Record<string, J>>;
      const groups = Object.entries(runs).flatMap(([topo, r]) => Object.entries(r).map(([kind, v]) => ({ label: `${topo}, ${kind}`, bars: bars([['p50 ms', v.p50Ms], ['p99 ms', v.p99Ms]]) })));
      return [{ kind: 'bar', name: 'latency', title: `History pages of ${f.pageSize} from a ${Number(f.messages).toLocaleString('en-US')}-message channel`, unit: 'ms', better: 'lower', groups }];
    }
    case 'log': {
      const rows = (f.rows ?? []) as J[];
      const workloads = [...new Set(rows.map((r) => r.workload as string))];
      const short = (s: string) => s.replace('Chorus ', '').replace('PostgresEventLog', 'PG log').replace(' client', '');
      return [
        { kind: 'bar', name: 'throughput', title: 'Durable appends per second (acked)', unit: 'appends/s', better: 'higher', groups: workloads.map((w) => ({ label: w, bars: bars(rows.filter((r) => r.workload === w).map((r) => [short(r.system), r.appendsPerSec])) })) },
        { kind: 'bar', name: 'latency', title: 'Append latency, one at a time', unit: 'ms', better: 'lower', groups: ['p50Ms', 'p99Ms'].map((k) => ({ label: k.replace('Ms', ''), bars: bars(rows.filter((r) => r.workload.startsWith('sequential')).map((r) => [short(r.system), r[k]])) })) },
      ];
    }
    case 'failover': {
      const rec = Array.isArray(f.recoverMs) ? f.recoverMs : [f.recoverMs];
      return [{ kind: 'bar', name: 'recovery', title: 'Failover: kill -9 a node under load, time until every channel acks again', unit: 'ms', better: 'lower', groups: [{ label: 'recovery', bars: bars(rec.map((v: unknown, i: number) => [`run ${i + 1}`, v])) }] }];
    }
    default:
      return [];
  }
}

/** The machine line under every chart. */
function machineLine(f: J): string {
  const m = f.machine as J | undefined;
  return m ? `${m.cores} cores ${m.cpu}, ${m.memoryGiB} GiB, Node.js ${m.node}; ${f.command ?? ''}` : String(f.command ?? '');
}

/** Writes `<prefix>-<chart>.svg` files for a bench's figures into `dir`; returns their paths. */
export function writeCharts(dir: string, f: J, prefix = String(f.bench)): string[] {
  return chartsFor(f).map((c) => {
    const file = join(dir, `${prefix}-${c.name}.svg`);
    writeFileSync(file, c.kind === 'bar' ? renderBar(c, machineLine(f)) : renderLine(c, machineLine(f)));
    return file;
  });
}

/** Redraws the charts of every `<name>.json` in `dir` (files with a further dot, like `fanout.quick.json`, are skipped). */
export function redrawAll(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /^[a-z0-9-]+\.json$/.test(n))
    .flatMap((n) => writeCharts(dir, JSON.parse(readFileSync(join(dir, n), 'utf8')) as J, n.slice(0, -5)));
}
