#!/usr/bin/env node
// Runs the test suite: every test/**/*.test.ts (or the files/folders given as
// arguments) with node's own test runner and the tsx loader. Files run in
// separate processes, two at a time (this machine has two cores).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(p, out) {
  const st = statSync(p);
  if (st.isDirectory()) {
    for (const e of readdirSync(p).sort()) if (e !== 'node_modules') collect(join(p, e), out);
  } else if (/\.test\.ts$/.test(p)) out.push(p);
  return out;
}

const args = process.argv.slice(2);
const roots = args.length ? args : ['test'];
const files = roots.flatMap((r) => collect(r, []));
if (!files.length) {
  console.error(`no test files under ${roots.join(' ')}`);
  process.exit(1);
}
const concurrency = process.env.CHORUS_TEST_CONCURRENCY ?? '2';
// --test-force-exit: a test file whose tests are done exits even if a failed test left a client reconnecting
// (an assertion before its close): without it that file's process, and CI with it, waits forever
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-force-exit', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
