/**
 * The CI form of the soak (`npm run soak`): 15 seconds of steady load on an
 * embedded node in its own process, in windows of 5 s after a 5 s warm-up.
 * Checks the script's contract (a line per window, the last line one JSON
 * object) and that nothing grows without bound: every acknowledged post
 * reached every subscriber, no post failed, and the memory and latency drift
 * from the first window to the last stay under generous bounds (printed).
 * The long form (`npm run soak -- --minutes 10`) is for on demand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

/** Bounds for a 15-second run on a shared 2-core machine: a leak of a few MB per second, or a stall, fails them. */
const RSS_DRIFT_MB = 100;
const HEAP_DRIFT_MB = 100;
const LAST_DELIVERY_P99_MS = 2000;

test('soak, CI form: steady load for 15 s, no lost delivery, bounded memory and latency drift (G25)', { timeout: 150_000 }, async () => {
  const args = ['--import', 'tsx', 'scripts/soak.ts', '--minutes', '0.25', '--window-seconds', '5', '--warmup-seconds', '5', '--posters', '6', '--subscribers', '8', '--channels', '4'];
  const lines: string[] = [];
  const code = await new Promise<number | null>((resolve) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const l of parts) {
        lines.push(l);
        console.log(`# ${l.length > 400 ? `${l.slice(0, 400)}...` : l}`);
      }
    });
    p.on('exit', (c) => {
      if (buf) lines.push(buf);
      resolve(c);
    });
  });
  assert.equal(code, 0, 'the soak script exits 0');
  const windows = lines.filter((l) => l.startsWith('window '));
  assert.ok(windows.length >= 2, `a line per window (${windows.length})`);
  const summary = JSON.parse(lines.at(-1)!) as {
    posts: number; missing: number; errors: number; rssDriftMb: number; heapDriftMb: number; last: { deliveryP99: number; rssMb: number; heapMb: number };
  };
  assert.ok(summary.posts > 100, `a real load (${summary.posts} posts)`);
  assert.equal(summary.errors, 0, 'no post failed');
  assert.equal(summary.missing, 0, 'every acknowledged post reached every subscriber of its channel');
  assert.ok(Number.isFinite(summary.last.rssMb) && Number.isFinite(summary.last.heapMb), 'memory read from the node');
  console.log(`# drift: rss ${summary.rssDriftMb} MB (bound ${RSS_DRIFT_MB}), heap ${summary.heapDriftMb} MB (bound ${HEAP_DRIFT_MB}), last delivery p99 ${summary.last.deliveryP99} ms (bound ${LAST_DELIVERY_P99_MS})`);
  assert.ok(summary.rssDriftMb < RSS_DRIFT_MB, `rss drift ${summary.rssDriftMb} MB`);
  assert.ok(summary.heapDriftMb < HEAP_DRIFT_MB, `heap drift ${summary.heapDriftMb} MB`);
  assert.ok(summary.last.deliveryP99 < LAST_DELIVERY_P99_MS, `last window's delivery p99 ${summary.last.deliveryP99} ms`);
});
