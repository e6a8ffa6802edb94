import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

// docs/guarantees.md and the tests agree: every promise id (G1, G2, ...) of
// the page is carried by the title of some test, every id a test title
// carries is on the page, and every test file a promise names exists and
// carries that promise's id.

function files(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) files(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The G-ids in the titles (first argument of test, it, describe) of one file. */
function idsInTitles(src: string): Set<string> {
  const ids = new Set<string>();
  for (const m of src.matchAll(/\b(?:test|it|describe)\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g)) {
    for (const g of m[2]!.matchAll(/\bG(\d+)\b/g)) ids.add(`G${g[1]}`);
  }
  return ids;
}

test('docs/guarantees.md: every promise is carried by a test title, and every id a test carries is a promise', () => {
  const doc = readFileSync('docs/guarantees.md', 'utf8');
  const sections = [...doc.matchAll(/^- \*\*(G\d+) —[\s\S]*?(?=^- \*\*G\d+ —|^## )/gm)].map((m) => ({ id: m[1]!, text: m[0] }));
  const inDoc = new Set(sections.map((s) => s.id));
  assert.ok(inDoc.size >= 10, `the page lists its promises (${inDoc.size} found)`);
  assert.equal(sections.length, inDoc.size, 'each id is defined once');

  const carriers = new Map<string, Set<string>>(); // file -> ids
  for (const f of files('test')) {
    const ids = idsInTitles(readFileSync(f, 'utf8'));
    if (ids.size) carriers.set(f, ids);
  }
  const inTests = new Set([...carriers.values()].flatMap((s) => [...s]));
  const uncarried = [...inDoc].filter((g) => !inTests.has(g));
  const unknown = [...inTests].filter((g) => !inDoc.has(g));
  assert.deepEqual(uncarried, [], `promises no test title carries: ${uncarried.join(', ')}`);
  assert.deepEqual(unknown, [], `ids in test titles that docs/guarantees.md does not define: ${unknown.join(', ')}`);

  for (const s of sections) {
    for (const m of s.text.matchAll(/`(test\/[^`]+\.ts)`/g)) {
      const f = m[1]!;
      assert.ok(existsSync(f), `${s.id} names ${f}, which does not exist`);
      assert.ok(carriers.get(f)?.has(s.id), `${s.id} names ${f}, but no test title there carries ${s.id}`);
    }
  }
});
