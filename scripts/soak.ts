/**
 * `npm run soak -- --minutes N`: a steady load on one embedded Chorus node
 * (its own process, so its memory is its own) for N minutes: posting clients
 * and subscribers over a few channels, through the SDK. Every window (a
 * minute by default) it prints the node's memory (RSS and heap, from its
 * /metrics) and the latency of acknowledgements (post sent to reply) and
 * deliveries (post acknowledged by the channel to frame received), p50 and
 * p99. At the end it checks every acknowledged post reached every
 * subscriber of its channel and prints the drift from the first window to
 * the last; the last line is one JSON object.
 *
 * Options (defaults): --minutes 10, --window-seconds 60, --warmup-seconds
 * (one window; not measured), --posters 16, --subscribers 32, --channels 8,
 * --rate 2 (posts per second per poster), --node-url URL (use a running node
 * with dev sign-in instead of starting one; memory is then not read).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_FLAGS } from '../cluster/node-flags.ts';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ChorusClient, type WebSocketCtor } from '../client/sdk.ts';

interface Options { minutes: number; windowSeconds: number; warmupSeconds: number; posters: number; subscribers: number; channels: number; rate: number; nodeUrl: string | undefined }

function parseArgs(argv: string[]): Options {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, dflt: number) => {
    const v = get(name);
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number (got ${v})`);
    return n;
  };
  const windowSeconds = num('window-seconds', 60);
  return {
    minutes: num('minutes', 10), windowSeconds, warmupSeconds: get('warmup-seconds') === undefined ? windowSeconds : Number(get('warmup-seconds')),
    posters: num('posters', 16), subscribers: num('subscribers', 32), channels: num('channels', 8), rate: num('rate', 2), nodeUrl: get('node-url'),
  };
}

/** Nearest-rank percentile. */
function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
const r1 = (x: number) => Math.round(x * 10) / 10;

/** Starts `npm start`'s entry point on a free port with a temp data dir; resolves with its URL. */
async function startNodeProcess(dir: string): Promise<{ url: string; proc: ChildProcess }> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const proc = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', 'cluster/main.ts'], {
    cwd: root, stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, CHORUS_PORT: '0', CHORUS_DATA_DIR: dir, CHORUS_LOG_LEVEL: 'warn', CHORUS_PROFILE: 'embedded', CHORUS_NODE_ID: 'soak-1' },
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /on (http:\/\/[^\s]+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`the node exited (${code}) before it started: ${out}`)));
  });
  proc.stdout!.resume();
  return { url, proc };
}

/** The node's RSS and heap in MB from its /metrics (prom-client's default process metrics). */
async function memoryOf(url: string): Promise<{ rssMb: number; heapMb: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? NaN) / 1024 / 1024;
  return { rssMb: r1(read('process_resident_memory_bytes')), heapMb: r1(read('nodejs_heap_size_used_bytes')) };
}

async function signIn(url: string, user: string): Promise<{ token: string; channels: string[] }> {
  const r = await fetch(`${url}/api/dev/signin`, { method: 'POST', body: JSON.stringify({ user }), headers: { 'content-type': 'application/json' } });
  if (!r.ok) throw new Error(`sign-in of ${user} failed: ${r.status} ${await r.text()}`);
  return (await r.json()) as { token: string; channels: string[] };
}

/** Runs `fn(0..n-1)`, `width` at a time. */
async function inBatches(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i += width) await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, k) => fn(i + k)));
}

/** One measurement window. */
interface Window { window: number; atSec: number; rssMb: number; heapMb: number; posts: number; deliveries: number; errors: number; ackP50: number; ackP99: number; deliveryP50: number; deliveryP99: number }

export async function soak(o: Options, log: (line: string) => void = console.log): Promise<Record<string, unknown>> {
  const dir = o.nodeUrl ? undefined : await mkdtemp(join(tmpdir(), 'chorus-soak-'));
  const started = o.nodeUrl ? undefined : await startNodeProcess(dir!);
  const url = o.nodeUrl ?? started!.url;
  const clients: ChorusClient[] = [];
  const connect = async (user: string) => {
    const { token } = await signIn(url, user);
    const c = await ChorusClient.connect({ baseUrl: url, token, WebSocket: WebSocket as unknown as WebSocketCtor, requestTimeoutMs: 30_000 });
    clients.push(c);
    return c;
  };
  try {
    log(`soak: ${o.minutes} min on ${url}: ${o.posters} posters x ${o.rate}/s, ${o.subscribers} subscribers, ${o.channels} channels, windows of ${o.windowSeconds} s after ${o.warmupSeconds} s warm-up`);
    const admin = await connect('soak-admin');
    const channels: string[] = [];
    for (let i = 0; i < o.channels; i++) {
      channels.push((await admin.request<{ ch: string }>('createChannel', { ws: 'demo', name: `soak-${i}`, kind: 'public', clientMsgId: `soak-ch-${i}` })).ch);
    }
    // subscribers: each in two channels, round robin; set-up eight at a time
    const expectedPer = new Map<string, number>(channels.map((ch) => [ch, 0]));
    let delivered = 0;
    let deliveryLat: number[] = [];
    await inBatches(o.subscribers, 8, async (i) => {
      const c = await connect(`soak-sub-${i}`);
      for (const ch of [channels[i % channels.length]!, channels[(i + 1) % channels.length]!]) {
        await c.request('joinChannel', { ws: 'demo', ch, clientMsgId: `join-${ch}` });
        await c.subscribe('demo', ch, (e) => {
          if (e.type !== 'message') return;
          delivered++;
          const ts = (e.message as { ts?: number } | undefined)?.ts;
          if (typeof ts === 'number') deliveryLat.push(Date.now() - ts);
        });
        expectedPer.set(ch, expectedPer.get(ch)! + 1);
      }
    });
    const posters: ChorusClient[] = [];
    await inBatches(o.posters, 8, async (i) => {
      const c = await connect(`soak-post-${i}`);
      for (const ch of channels) await c.request('joinChannel', { ws: 'demo', ch, clientMsgId: `join-${ch}` });
      posters[i] = c;
    });
    let firstError: string | undefined;
    let posts = 0;
    let errors = 0;
    let expected = 0;
    let ackLat: number[] = [];
    let measuring = false;
    const endAt = Date.now() + o.warmupSeconds * 1000 + o.minutes * 60_000;
    const gap = 1000 / o.rate;
    const loops = posters.map(async (c, i) => {
      let n = 0;
      let next = Date.now() + Math.random() * gap;
      while (Date.now() < endAt) {
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait)); // pacing the load, not waiting for a condition
        next += gap;
        const ch = channels[(i + n++) % channels.length]!;
        const t0 = performance.now();
        try {
          await c.post('demo', ch, `soak ${i} ${n} ${'x'.repeat(100)}`);
          if (measuring) ackLat.push(performance.now() - t0);
          posts++;
          expected += expectedPer.get(ch)!;
        } catch (err) {
          errors++;
          firstError ??= (err as Error).message;
        }
      }
    });
    // warm-up, then windows
    const windows: Window[] = [];
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, o.warmupSeconds * 1000));
    measuring = true;
    let base = { posts, delivered, errors };
    deliveryLat = [];
    ackLat = [];
    for (let w = 1; Date.now() + 500 < endAt; w++) {
      await new Promise((r) => setTimeout(r, Math.min(o.windowSeconds * 1000, endAt - Date.now())));
      const mem = o.nodeUrl ? { rssMb: NaN, heapMb: NaN } : await memoryOf(url);
      const win: Window = {
        window: w, atSec: Math.round((Date.now() - t0) / 1000), ...mem,
        posts: posts - base.posts, deliveries: delivered - base.delivered, errors: errors - base.errors,
        ackP50: r1(pct(ackLat, 50)), ackP99: r1(pct(ackLat, 99)), deliveryP50: r1(pct(deliveryLat, 50)), deliveryP99: r1(pct(deliveryLat, 99)),
      };
      windows.push(win);
      log(`window ${w} (${win.atSec} s): rss ${win.rssMb} MB, heap ${win.heapMb} MB, posts ${win.posts}, deliveries ${win.deliveries}, errors ${win.errors}, ack p50 ${win.ackP50} ms p99 ${win.ackP99} ms, delivery p50 ${win.deliveryP50} ms p99 ${win.deliveryP99} ms`);
      base = { posts, delivered, errors };
      deliveryLat = [];
      ackLat = [];
    }
    await Promise.all(loops);
    // every acknowledged post reaches every subscriber of its channel (bounded wait)
    const drainUntil = Date.now() + 15_000;
    while (delivered < expected && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
    const first = windows[0];
    const last = windows.at(-1);
    const summary = {
      minutes: o.minutes, windows: windows.length, posts, deliveries: delivered, expectedDeliveries: expected, missing: Math.max(0, expected - delivered), errors,
      first: first ?? null, last: last ?? null,
      rssDriftMb: first && last ? r1(last.rssMb - first.rssMb) : null,
      rssDriftPct: first && last ? r1(((last.rssMb - first.rssMb) / first.rssMb) * 100) : null,
      heapDriftMb: first && last ? r1(last.heapMb - first.heapMb) : null,
      ackP99DriftMs: first && last ? r1(last.ackP99 - first.ackP99) : null,
      deliveryP99DriftMs: first && last ? r1(last.deliveryP99 - first.deliveryP99) : null,
      maxRssMb: Math.max(...windows.map((w) => w.rssMb)),
    };
    if (firstError) log(`first post error: ${firstError}`);
    log(`drift first -> last window: rss ${summary.rssDriftMb} MB (${summary.rssDriftPct} %), heap ${summary.heapDriftMb} MB, ack p99 ${summary.ackP99DriftMs} ms, delivery p99 ${summary.deliveryP99DriftMs} ms; missing deliveries ${summary.missing}`);
    return summary;
  } finally {
    for (const c of clients) c.close();
    if (started) {
      started.proc.kill('SIGTERM');
      await new Promise((r) => (started.proc.exitCode !== null ? r(null) : started.proc.once('exit', r)));
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  soak(parseArgs(process.argv.slice(2))).then(
    (summary) => {
      console.log(JSON.stringify(summary));
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
