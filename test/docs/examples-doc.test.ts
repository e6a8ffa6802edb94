import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';

// Code blocks marked <!-- example:path --> in docs/*.md must equal the file
// they name, so every example in the docs is a test that runs.
test('examples in docs are the files they claim to be', () => {
  let checked = 0;
  for (const f of readdirSync('docs').filter((x) => x.endsWith('.md'))) {
    const doc = readFileSync(`docs/${f}`, 'utf8');
    for (const m of doc.matchAll(/<!-- example:(\S+) -->\n```\w*\n([\s\S]*?)```\n<!-- \/example -->/g)) {
      assert.equal(m[2], readFileSync(m[1]!, 'utf8'), `docs/${f}: example ${m[1]} is out of date`);
      checked++;
    }
  }
  assert.ok(checked > 0, 'no examples found');
});
