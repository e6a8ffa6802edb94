import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

// Every error code the code can produce is listed in docs/errors.md, and
// every code listed there still exists in the code.
const ROOTS = ['runtime', 'actors', 'cluster', 'adapters', 'client'];
const PATTERNS = [
  /super\(\s*'([A-Z][A-Z0-9_]+)'/g,
  /ChorusError\(\s*'([A-Z][A-Z0-9_]+)'/g,
  /\bcode(?:\s*=|:)\s*'([A-Z][A-Z0-9_]+)'/g,
  /export const [A-Z0-9_]+\s*=\s*'([A-Z][A-Z0-9_]+)'/g,
  /\b([A-Z][A-Z0-9]*_[A-Z0-9_]+): '\1'/g,
];

function files(dir: string, out: string[] = []): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) files(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('docs/errors.md and the code list the same error codes', () => {
  const inCode = new Set<string>();
  for (const f of ROOTS.flatMap((r) => files(r))) {
    const src = readFileSync(f, 'utf8');
    for (const re of PATTERNS) for (const m of src.matchAll(re)) if (/_/.test(m[1]!)) inCode.add(m[1]!);
  }
  const doc = readFileSync('docs/errors.md', 'utf8');
  const inDoc = new Set([...doc.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`/gm)].map((m) => m[1]!));
  const undocumented = [...inCode].filter((c) => !inDoc.has(c)).sort();
  const stale = [...inDoc].filter((c) => !inCode.has(c)).sort();
  assert.deepEqual(undocumented, [], `codes missing from docs/errors.md: ${undocumented.join(', ')}`);
  assert.deepEqual(stale, [], `codes in docs/errors.md that the code no longer has: ${stale.join(', ')}`);
});
