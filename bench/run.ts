/**
 * The bench runner: `npm run bench -- <name> [--quick] [--out bench/results/]`
 * runs bench/<name>.ts (its exported `run(args)`), which prints a table; the
 * runner then prints, as its last line, one JSON object of the figures plus
 * the machine they were measured on. `all` runs every bench in turn. With
 * `--out dir` it writes `<name>.json` and the bench's SVG charts there;
 * `charts [dir]` redraws the charts of every JSON in dir (default bench/results).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redrawAll, writeCharts } from './lib/charts.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const benches = readdirSync(here).filter((f) => f.endsWith('.ts') && !['run.ts'].includes(f) && !f.startsWith('_')).map((f) => f.slice(0, -3)).sort();

/** The machine a figure was measured on. */
export function machine() {
  return { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}` };
}

async function main() {
  const args = process.argv.slice(2);
  const name = args.find((a) => !a.startsWith('--'));
  const outIdx = args.indexOf('--out');
  const out = outIdx >= 0 ? args[outIdx + 1] : args.find((a) => a.startsWith('--out='))?.slice(6);
  const rest = args.filter((a, i) => a !== name && a !== '--out' && (outIdx < 0 || i !== outIdx + 1));
  if (name === 'charts') {
    // redraw every chart from the JSON already in a results folder
    const dir = rest.find((a) => !a.startsWith('--')) ?? join(here, 'results');
    for (const f of redrawAll(dir)) console.log(f);
    process.exit(0);
  }
  if (!name || (name !== 'all' && !benches.includes(name))) {
    console.error(`usage: npm run bench -- <${[...benches, 'all', 'charts'].join('|')}> [--quick] [--out dir]`);
    process.exit(2);
  }
  const names = name === 'all' ? benches : [name];
  const results: Record<string, unknown>[] = [];
  for (const n of names) {
    const mod = (await import(join(here, `${n}.ts`))) as { run(args: string[]): Promise<Record<string, unknown>> };
    const figures = { ...(await mod.run(rest)), machine: machine(), at: new Date().toISOString(), command: `npm run bench -- ${n}${rest.length ? ' ' + rest.join(' ') : ''}` };
    results.push(figures);
    if (out) {
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, `${n}.json`), JSON.stringify(figures, null, 2) + '\n');
      for (const f of writeCharts(out, figures)) console.error(`chart: ${f}`);
    }
  }
  console.log(JSON.stringify(names.length === 1 ? results[0] : { bench: 'all', results }));
  process.exit(0);
}

await main();
