/**
 * Idle WebSocket connections held by Chorus, against raw ws in the same run:
 * memory per connection and the time to accept them.
 *
 * Usage: `npm run bench -- connections [--quick] [--connections=N]
 * [--per-process=N]`. Default 50,000 connections; `--quick` 5,000.
 *
 * A process may hold at most 20,000 open files here, so both sides spread
 * out: Chorus runs ceil(N / 17,000) node processes (the cluster profile on
 * one local nats-server: the embedded profile's in-process transport cannot
 * span processes; one node uses the embedded profile), raw ws as many
 * independent ws processes, and the clients come from as many load-generator
 * processes, each bound to two loopback source addresses of its own
 * (127.0.0.x and 127.0.1.x: one address runs out of ephemeral ports past
 * about 28,000 connections). Clients connect straight to a node's /ws.
 *
 * A Chorus client here is an authenticated session with nothing else: a
 * signed user token granting no workspace, so the edge holds the socket and
 * its Session and asks no actor (bench/fanout.ts measures connected channel
 * members, whose user actors are active). Memory per connection is the sum
 * of the node processes' RSS after connecting (idle, after a full GC) minus
 * before; the accept time runs from the first connect to the last hello.
 */
import { BENCH_EDGE } from './fanout.ts';
import { startChorus, startWs, type Deployment } from './lib/deploy.ts';
import type { ClientPlan } from './lib/loadgen.ts';
import { Child } from './lib/rpc.ts';
import { round } from './lib/stats.ts';

interface Figures {
  system: string;
  processes: number;
  requested: number;
  connected: number;
  failed: number;
  firstFailure?: string;
  acceptSec: number;
  acceptPerSec: number;
  bytesPerConn: number;
  heapBytesPerConn: number;
  rssMiB: number;
}

async function hold(d: Deployment, total: number, generators: number, t0: number): Promise<Figures> {
  await new Promise((r) => setTimeout(r, 300));
  const rss0 = await d.settledRss();
  const heap0 = await d.settledHeap();
  const gens = Array.from({ length: generators }, (_, g) => new Child(`gen-${g + 1}`, './loadgen.ts'));
  try {
    await Promise.all(gens.map((g) => g.waitReady()));
    const nodes = d.ports.length;
    const plans: ClientPlan[] = gens.map((_, g) => {
      const from = Math.floor((total * g) / generators);
      const to = Math.floor((total * (g + 1)) / generators);
      const p: ClientPlan = {
        dialect: d.dialect, host: '127.0.0.1', ports: d.ports, node: [], index: [], user: [], ws: [], ch: [],
        localAddresses: [`127.0.0.${2 + g}`, `127.0.1.${2 + g}`], ...(d.secret ? { secret: d.secret } : {}),
        subscribe: false, tokenWs: 'none', concurrency: 256,
      };
      for (let i = from; i < to; i++) {
        p.node.push(i % nodes);
        p.index.push(i);
        p.user.push(`u${i}`);
        p.ws.push('w0');
        p.ch.push(`c${i}`);
      }
      return p;
    });
    const t1 = Date.now();
    const rs = await Promise.all(gens.map((g, i) => g.call<{ connected: number; failed: number; firstFailure?: string }>('connect', plans[i], 170_000)));
    const acceptMs = Date.now() - t1;
    const connected = rs.reduce((s, r) => s + r.connected, 0);
    await new Promise((r) => setTimeout(r, 500));
    const rss1 = await d.settledRss();
    const heap1 = await d.settledHeap();
    const firstFailure = rs.find((r) => r.firstFailure)?.firstFailure;
    const f: Figures = {
      system: d.label, processes: nodes, requested: total, connected, failed: rs.reduce((s, r) => s + r.failed, 0),
      ...(firstFailure ? { firstFailure } : {}),
      acceptSec: round(acceptMs / 1000, 1), acceptPerSec: Math.round(connected / (acceptMs / 1000)),
      bytesPerConn: connected ? Math.round((rss1 - rss0) / connected) : NaN,
      heapBytesPerConn: connected ? Math.round((heap1 - heap0) / connected) : NaN,
      rssMiB: Math.round(rss1 / 2 ** 20),
    };
    console.log(`  ${f.system}: ${f.connected}/${total} in ${f.acceptSec} s, ${f.bytesPerConn} B/conn (${Math.round((Date.now() - t0) / 1000)} s elapsed)${f.firstFailure ? `; first failure: ${f.firstFailure}` : ''}`);
    return f;
  } finally {
    await Promise.all(gens.map((g) => g.stop()));
  }
}

/** Runs the idle-connections comparison; returns the figures (and prints a table). */
export async function run(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes('--quick');
  const nArg = args.find((a) => a.startsWith('--connections='));
  const total = nArg ? Number(nArg.slice(14)) : quick ? 5000 : 50_000;
  const perArg = args.find((a) => a.startsWith('--per-process='));
  const perProcess = perArg ? Number(perArg.slice(14)) : 17_000;
  if (!Number.isInteger(total) || total < 1 || !Number.isInteger(perProcess) || perProcess < 1 || perProcess > 19_500) {
    throw new RangeError('--connections must be a positive integer and --per-process at most 19,500 (20,000 open files per process)');
  }
  const processes = Math.ceil(total / perProcess);
  const t0 = Date.now();
  console.log(`connections: ${total} idle connections; ${processes} server process(es) and ${processes} load generator(s) per system, each generator on 2 loopback source addresses`);
  console.log(`Chorus edge limits (StartOptions.edge): ${JSON.stringify(BENCH_EDGE)}`);
  const results: Figures[] = [];
  for (const sys of ['chorus', 'ws'] as const) {
    const d = sys === 'chorus'
      ? await startChorus({ nodes: processes, edge: BENCH_EDGE, label: processes > 1 ? `Chorus x${processes} (cluster, NATS)` : 'Chorus (embedded)' })
      : await startWs(processes);
    try {
      results.push(await hold(d, total, processes, t0));
    } finally {
      await d.stop();
    }
  }
  const [ch, ws] = results;
  console.table(Object.fromEntries(results.map((r) => [r.system, {
    processes: r.processes, connected: r.connected, failed: r.failed, 'accept s': r.acceptSec, 'accepted/s': r.acceptPerSec,
    'B/conn (RSS)': r.bytesPerConn, 'B/conn (JS heap)': r.heapBytesPerConn, 'RSS MiB': r.rssMiB,
  }])));
  const ratio = ch && ws && ws.bytesPerConn ? round(ch.bytesPerConn / ws.bytesPerConn, 2) : undefined;
  console.log(`Chorus / raw ws memory per idle connection: ${ratio}`);
  if (total < 20_000) console.log(`note: at ${total} connections RSS deltas are within the allocator's noise; the JS heap column and the default 50,000 run are the figures to use`);
  return {
    bench: 'connections',
    connections: ch?.connected,
    requested: total,
    processes,
    bytesPerConn: ch?.bytesPerConn,
    heapBytesPerConn: ch?.heapBytesPerConn,
    acceptSec: ch?.acceptSec,
    acceptPerSec: ch?.acceptPerSec,
    wsConnections: ws?.connected,
    wsBytesPerConn: ws?.bytesPerConn,
    wsAcceptSec: ws?.acceptSec,
    bytesPerConnVsWs: ratio,
    edgeLimits: BENCH_EDGE,
    elapsedSec: Math.round((Date.now() - t0) / 1000),
    systems: results,
  };
}
