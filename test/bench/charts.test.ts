// The bench charts: every committed result with charts draws them, each SVG names every system it compares
// and scales bars to the data (a bigger value gets a longer bar).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { chartsFor, renderBar, renderLine } from '../../bench/lib/charts.ts';

test('committed bench results draw their charts, naming every system', () => {
  const dir = new URL('../../bench/results/', import.meta.url);
  const files = readdirSync(dir).filter((n) => /^[a-z0-9-]+\.json$/.test(n));
  assert.ok(files.includes('fanout.json'), 'the fan-out results are committed');
  for (const n of files) {
    const f = JSON.parse(readFileSync(new URL(n, dir), 'utf8'));
    for (const c of chartsFor(f)) {
      const svg = c.kind === 'bar' ? renderBar(c) : renderLine(c);
      assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/, `${n} ${c.name}`);
      const names = c.kind === 'bar' ? c.groups.flatMap((g) => g.bars.map((b) => b.series)) : c.series.map((s) => s.name);
      assert.ok(names.length > 0, `${n} ${c.name} has data`);
      for (const s of names) assert.ok(svg.includes(s.replace(/&/g, '&amp;')), `${n} ${c.name} names ${s}`);
    }
  }
});

test('bar lengths follow the values', () => {
  const svg = renderBar({ kind: 'bar', name: 'x', title: 't', unit: 'u', better: 'higher', groups: [{ label: 'g', bars: [{ series: 'a', value: 10 }, { series: 'b', value: 40 }] }] });
  const widths = [...svg.matchAll(/<rect x="170" y="[\d.]+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.equal(widths.length, 2);
  assert.ok(Math.abs(widths[1]! / widths[0]! - 4) < 0.01, `40 is drawn 4x as long as 10 (${widths})`);
});
