/**
 * Team chat end to end: channel fan-out over WebSockets, Chorus against its
 * peers on the same workload in the same run.
 *
 * Usage: `npm run bench -- fanout [--quick] [--clients=N] [--systems=a,b]
 * [--no-shape-b] [--no-two-node] [--two-node-clients=N] [--no-query-side]
 * [--profile=dir]`
 * (`--systems` from ws, sio, chorus, chorus2, sio2, and floor, run only when
 * named: one Chorus node on in-memory ports without the query side, no
 * durable append, what the actor turns and the edge cost alone; `--profile=dir` writes a
 * CPU profile of every server process for every phase). `--quick` runs shape
 * A with 2,000 clients and the three single-node systems only.
 *
 * Workload (bench/lib/workload.ts): C clients over load-generator processes
 * (bench/lib/loadgen.ts, 2 by default, each on its own loopback source
 * address), each client a user in exactly one channel of S members; posts are
 * `b:<client>:<send µs> ...` texts and every member (sender included)
 * receives each one. Shapes: A = C/10 channels x 10 (default C = 10,000;
 * `--quick` 2,000) and B = 20 channels x 100 (2,000 clients).
 *
 * Systems, each its own server process(es), measured from /proc:
 * - raw ws: a minimal relay on `ws` (bench/lib/ws-server.ts), the ceiling;
 * - Socket.IO rooms (bench/lib/sio-server.ts);
 * - Chorus, embedded profile (bench/lib/chorus-server.ts: startNode with the
 *   edge limits below; PGlite log, in-process transport);
 * - 2 nodes: Chorus cluster profile over one nats-server vs Socket.IO with
 *   @socket.io/redis-adapter on a redis-server (broker CPU counted); members
 *   of each channel alternate between the two nodes. Shape A with 4,000
 *   clients by default (`--two-node-clients`): Chorus sets its domain up
 *   over JetStream, which takes a while.
 *
 * Phases: saturation (a fixed number of posts in flight, each client at most
 * one; the rate the system sustains), a fixed rate of 20,000 deliveries/s,
 * and for Chorus half of its own saturation rate. Each phase starts from
 * idle servers: after a phase the bench waits until they settle (Chorus's
 * query side catches up on a burst after it) and bills that CPU to the phase
 * (bench/lib/workload.ts PhaseFigures). Figures: deliveries/s,
 * p50/p99/p999 end to end (send -> receive, same process clock), server
 * CPU-seconds per million deliveries (settling included), RSS per idle connection (RSS after
 * connecting and subscribing minus before, after full GCs and 10 s idle (deploy.ts RSS_IDLE_MS); Chorus is
 * restarted on its data first so no setup garbage or pre-activated actor is
 * in the baseline: each connection then carries its user actor).
 *
 * Chorus edge limits are raised for the bench and printed: with 10 posts/s a
 * client, the default 20 frames/s bucket would not bind, but the bench must
 * not depend on that.
 */
import { startChorus, startSio, startWs, type Deployment } from './lib/deploy.ts';
import { populate, runPhase, type PhaseFigures, type Shape } from './lib/workload.ts';
import { round } from './lib/stats.ts';
import type { EdgeOptions } from '../cluster/edge/chat-edge.ts';

/** Edge limits passed through StartOptions.edge for every Chorus node in the benches. */
export const BENCH_EDGE: EdgeOptions = Object.freeze({
  maxConnections: 60_000,
  maxConnectionsPerUser: 20,
  limits: { framesPerSecond: 200, frameBurst: 400, maxInFlight: 64, maxBufferedBytes: 4 * 1024 * 1024, floodCloseAfter: 200, maxSubscriptions: 500 },
});

type Kind = 'ws' | 'sio' | 'chorus' | 'floor' | 'chorus2' | 'sio2';

/** Figures of one system on one shape. */
export interface SystemFigures {
  system: string;
  shape: string;
  connections: number;
  failed: number;
  setupSec: number;
  connectSec: number;
  bytesPerConn?: number;
  heapBytesPerConn?: number;
  saturation?: PhaseFigures;
  fixed?: PhaseFigures;
  half?: PhaseFigures;
  /** Set when the run failed: why. */
  error?: string;
}

interface Plan {
  quick: boolean;
  measureMs: number;
  warmupMs: number;
  generators: number;
  profileDir: string | undefined;
}

function start(kind: Kind): Promise<Deployment> {
  switch (kind) {
    case 'ws': return startWs();
    case 'sio': return startSio();
    case 'sio2': return startSio(2);
    case 'chorus': return startChorus({ edge: BENCH_EDGE });
    case 'floor': return startChorus({ edge: BENCH_EDGE, memoryPorts: true, querySide: false, label: LABELS.floor });
    case 'chorus2': return startChorus({ nodes: 2, edge: BENCH_EDGE });
  }
}

/**
 * Posts in flight tried for the saturation phase, the best kept: a small
 * window and one large enough that the load loop is never the limit. One
 * size does not suit every system: raw ws needs about 1,000 posts in flight
 * (10 members) to peak, while so many in flight can stall a Chorus node's
 * event loop long enough to lose its membership lease and fence itself.
 */
function satWindows(shape: Shape, quick: boolean): number[] {
  const big = Math.max(50, Math.round(12_000 / shape.channelSize));
  return quick ? [big] : [Math.max(10, Math.round(big / 6)), big];
}

/** Runs one system on one shape; a failure is reported in the figures (with the reason), not thrown, so the other systems still run. */
async function measure(kind: Kind, shape: Shape, plan: Plan, opts: { fixedDeliveries?: number; half?: boolean; memory?: boolean }): Promise<SystemFigures> {
  const shapeName = `${shape.clients / shape.channelSize}x${shape.channelSize}`;
  let d: Deployment | undefined;
  try {
    d = await start(kind);
    return await measureOn(d, kind, shape, shapeName, plan, opts);
  } catch (err) {
    const why = d?.health();
    const error = `${(err as Error).message.split('\n')[0]}${why ? ` (${why})` : ''}`;
    console.log(`  ${LABELS[kind]} ${shapeName} failed: ${error}`);
    return { system: LABELS[kind], shape: shapeName, connections: 0, failed: shape.clients, setupSec: NaN, connectSec: NaN, error };
  }
}

const LABELS: Record<Kind, string> = {
  ws: 'raw ws', sio: 'Socket.IO', chorus: 'Chorus', floor: 'Chorus, memory ports', chorus2: 'Chorus x2 + NATS', sio2: 'Socket.IO x2 + redis',
};

async function measureOn(d: Deployment, kind: Kind, shape: Shape, shapeName: string, plan: Plan, opts: { fixedDeliveries?: number; half?: boolean; memory?: boolean }): Promise<SystemFigures> {
  let pop: Awaited<ReturnType<typeof populate>> | undefined;
  try {
    let rss0 = 0;
    let heap0 = 0;
    pop = await populate(d, shape, {
      generators: plan.generators,
      beforeConnect: async () => {
        if (!opts.memory) return;
        // (--quick skips the restart: its 2,000-connection RSS figures are noise anyway, see the note it prints)
        if (kind === 'chorus' && !plan.quick) {
          await d.restart();
          await d.quiesce();
        }
        rss0 = await d.settledRss();
        heap0 = await d.settledHeap();
        // (the profile's own memory lands in the per-connection figures: they mean little in a --profile run)
        if (plan.profileDir) await Promise.all(d.nodes.map((n) => n.call('profileStart')));
      },
    });
    if (opts.memory && plan.profileDir) await Promise.all(d.nodes.map((n, i) => n.call('profileStop', { file: `${plan.profileDir}/${kind}-${shapeName}-connect-n${i + 1}.cpuprofile` })));
    if (pop.connected === 0) throw new Error(`${d.label}: no client connected: ${pop.firstFailure}`);
    let bytesPerConn: number | undefined;
    let heapBytesPerConn: number | undefined;
    if (opts.memory) {
      bytesPerConn = Math.round((await d.settledRss() - rss0) / pop.connected);
      heapBytesPerConn = Math.round((await d.settledHeap() - heap0) / pop.connected);
    }
    const phase = async (name: string, spec: Parameters<typeof runPhase>[2]) => {
      if (plan.profileDir) await Promise.all(d.nodes.map((n) => n.call('profileStart')));
      const logged = d.nodes.map((n) => n.output.length);
      const r = await runPhase(d, pop!, spec, {
        beforeSettle: async () => {
          if (plan.profileDir) await Promise.all(d.nodes.map((n, i) => n.call('profileStop', { file: `${plan.profileDir}/${kind}-${shapeName}-${name}-n${i + 1}.cpuprofile` })));
        },
      });
      // a node that lost its membership lease (event loop stalled past fenceAfterMs) drops its actors: say so next to the figures
      const fenced = d.nodes.some((n, i) => n.output.slice(logged[i]).some((l) => l.includes('fencing') || l.includes('fenced')));
      if (fenced) r.fenced = true;
      return r;
    };
    const drainMs = plan.quick ? 2000 : 3000;
    let saturation: PhaseFigures | undefined;
    for (const window of satWindows(shape, plan.quick)) {
      const r = await phase(`sat${window}`, { mode: 'window', window, warmupMs: plan.warmupMs + 500, measureMs: plan.measureMs, drainMs });
      if (!saturation || r.deliveredPerSec > saturation.deliveredPerSec) saturation = { ...r, window };
    }
    if (!saturation) throw new Error('no saturation phase ran');
    const fixed = opts.fixedDeliveries
      ? await phase('fixed', { mode: 'rate', rate: opts.fixedDeliveries / shape.channelSize, warmupMs: plan.warmupMs, measureMs: plan.measureMs, drainMs })
      : undefined;
    const half = opts.half && saturation.postsPerSec > 0
      ? await phase('half', { mode: 'rate', rate: saturation.postsPerSec / 2, warmupMs: plan.warmupMs, measureMs: plan.measureMs, drainMs })
      : undefined;
    return {
      system: d.label, shape: shapeName, connections: pop.connected, failed: pop.failed,
      setupSec: round(pop.setupMs / 1000, 1), connectSec: round(pop.connectMs / 1000, 1),
      ...(bytesPerConn !== undefined ? { bytesPerConn, heapBytesPerConn } : {}),
      saturation, ...(fixed ? { fixed } : {}), ...(half ? { half } : {}),
    };
  } finally {
    await pop?.close();
    await d.stop();
  }
}

function num(args: string[], name: string): number | undefined {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  if (!a) return undefined;
  const v = Number(a.slice(name.length + 3));
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`--${name} must be a positive number`);
  return v;
}

/** Runs the fan-out comparison; returns the figures (and prints tables). */
export async function run(args: string[]): Promise<Record<string, unknown>> {
  // --no-query-side: Chorus nodes start without the query side (projections of the log into SQL; on by default in the embedded profile)
  if (args.includes('--no-query-side')) process.env.BENCH_QUERY_SIDE = '0';
  const quick = args.includes('--quick');
  const clients = num(args, 'clients') ?? (quick ? 2000 : 10_000);
  if (clients % 10 !== 0) throw new RangeError('--clients must be a multiple of 10');
  // the 2-node pair sets up its domain over JetStream (slower), so it runs a smaller shape A by default
  const twoNodeClients = num(args, 'two-node-clients') ?? Math.min(clients, 4000);
  if (twoNodeClients % 10 !== 0) throw new RangeError('--two-node-clients must be a multiple of 10');
  const systemsArg = args.find((a) => a.startsWith('--systems='))?.slice(10).split(',') as Kind[] | undefined;
  const profileDir = args.find((a) => a.startsWith('--profile='))?.slice(10);
  const plan: Plan = { quick, measureMs: quick ? 1500 : 2500, warmupMs: quick ? 500 : 1000, generators: clients > 4000 ? 2 : 1, profileDir };
  const shapeA: Shape = { clients, channelSize: 10 };
  const shapeB: Shape = { clients: 2000, channelSize: 100 };
  const want = (k: Kind) => !systemsArg || systemsArg.includes(k);
  const doB = !quick && !args.includes('--no-shape-b');
  const doTwo = !quick && !args.includes('--no-two-node');
  const fixedDeliveries = 20_000;

  console.log(`fanout: shape A ${clients} clients in ${clients / 10} channels x 10${doB ? `; shape B ${shapeB.clients} clients in 20 channels x 100` : ''}${doTwo ? `; 2 nodes: ${twoNodeClients} clients x 10` : ''}; ${plan.generators} load generator(s); measured windows ${plan.measureMs / 1000} s`);
  console.log(`Chorus edge limits for the bench (StartOptions.edge): ${JSON.stringify(BENCH_EDGE)}; query side ${process.env.BENCH_QUERY_SIDE === '0' ? 'off' : 'as the profile defaults (on in embedded)'}`);
  const results: SystemFigures[] = [];
  const t0 = Date.now();
  const note = (r: SystemFigures) => {
    if (r.saturation) console.log(`  ${r.system} ${r.shape}: ${r.connections} connected in ${r.connectSec} s, saturation ${r.saturation.deliveredPerSec}/s (${Math.round((Date.now() - t0) / 1000)} s elapsed)`);
  };
  const go = async (k: Kind, shape: Shape, o: Parameters<typeof measure>[3]) => {
    if (!want(k)) return;
    const r = await measure(k, shape, plan, o);
    results.push(r);
    note(r);
  };
  for (const k of ['ws', 'sio', 'chorus'] as const) await go(k, shapeA, { fixedDeliveries, half: k === 'chorus', memory: true });
  // only when asked for (--systems=...,floor): the same node with in-memory ports and no query side, the design's floor
  if (systemsArg?.includes('floor')) await go('floor', shapeA, { fixedDeliveries });
  if (doB) for (const k of ['ws', 'sio', 'chorus'] as const) await go(k, shapeB, {});
  const twoShape: Shape = { clients: twoNodeClients, channelSize: 10 };
  if (doTwo) for (const k of ['chorus2', 'sio2'] as const) await go(k, twoShape, { fixedDeliveries });

  const table: Record<string, Record<string, unknown>> = {};
  for (const r of results) {
    const sat = r.saturation;
    table[`${r.system} ${r.shape}`] = r.error ? { conns: 'failed (see error)' } : {
      conns: r.connections,
      'connect s': r.connectSec,
      'B/conn': r.bytesPerConn ?? '',
      'sat deliv/s': sat?.deliveredPerSec,
      'sat window': sat?.window,
      'sat CPU-s/M': sat?.cpuSecPerMillion,
      'sat settle s': sat?.settleSec,
      'sat p99 ms': sat?.p99Ms,
      'fixed deliv/s': r.fixed?.deliveredPerSec ?? '',
      'fixed p50 ms': r.fixed?.p50Ms ?? '',
      'fixed p99 ms': r.fixed?.p99Ms ?? '',
      'fixed CPU-s/M': r.fixed?.cpuSecPerMillion ?? '',
      'other load': sat?.foreignCores,
    };
  }
  console.table(table);
  for (const r of results) if (r.error) console.log(`${r.system} ${r.shape}: ${r.error}`);
  if (results.some((r) => (r.saturation?.foreignCores ?? 0) > 0.3 || (r.fixed?.foreignCores ?? 0) > 0.3)) {
    console.log('note: other processes used over 0.3 core during some phases ("other load", in cores): figures of those rows are skewed; rerun when the machine is quiet');
  }
  const find = (label: string, shape: string) => results.find((r) => r.system === label && r.shape === shape && !r.error);
  const a = `${clients / 10}x10`;
  const a2 = `${twoNodeClients / 10}x10`;
  const ch = find('Chorus', a);
  const ws = find('raw ws', a);
  const sio = find('Socket.IO', a);
  const floor = find(LABELS.floor, a);
  const ch2 = find('Chorus x2 + NATS', a2);
  const sio2 = find('Socket.IO x2 + redis', a2);
  const ratio = (x?: number, y?: number) => (x !== undefined && y ? round(x / y, 2) : undefined);
  const ratios = {
    deliveredVsSocketio: ratio(ch?.saturation?.deliveredPerSec, sio?.saturation?.deliveredPerSec),
    deliveredVsWs: ratio(ch?.saturation?.deliveredPerSec, ws?.saturation?.deliveredPerSec),
    cpuVsWs: ratio(ch?.saturation?.cpuSecPerMillion, ws?.saturation?.cpuSecPerMillion),
    cpuVsSocketio: ratio(ch?.saturation?.cpuSecPerMillion, sio?.saturation?.cpuSecPerMillion),
    bytesPerConnVsWs: ratio(ch?.bytesPerConn, ws?.bytesPerConn),
    heapPerConnVsWs: ratio(ch?.heapBytesPerConn, ws?.heapBytesPerConn),
    shapeBDeliveredVsWs: ratio(find('Chorus', '20x100')?.saturation?.deliveredPerSec, find('raw ws', '20x100')?.saturation?.deliveredPerSec),
    shapeBCpuVsWs: ratio(find('Chorus', '20x100')?.saturation?.cpuSecPerMillion, find('raw ws', '20x100')?.saturation?.cpuSecPerMillion),
    twoNodeDeliveredVsSocketioRedis: ratio(ch2?.saturation?.deliveredPerSec, sio2?.saturation?.deliveredPerSec),
    twoNodeCpuVsSocketioRedis: ratio(ch2?.saturation?.cpuSecPerMillion, sio2?.saturation?.cpuSecPerMillion),
    floorDeliveredVsWs: ratio(floor?.saturation?.deliveredPerSec, ws?.saturation?.deliveredPerSec),
    floorCpuVsWs: ratio(floor?.saturation?.cpuSecPerMillion, ws?.saturation?.cpuSecPerMillion),
  };
  const check = (v: number | undefined, ok: (x: number) => boolean) => (v === undefined || Number.isNaN(v) ? undefined : ok(v));
  const targets = {
    'delivered >= 1.3x Socket.IO': check(ratios.deliveredVsSocketio, (x) => x >= 1.3),
    'delivered >= 0.9x raw ws': check(ratios.deliveredVsWs, (x) => x >= 0.9),
    'CPU/M <= 1.1x raw ws': check(ratios.cpuVsWs, (x) => x <= 1.1),
    'p99 < 50 ms at half saturation': check(ch?.half?.p99Ms, (x) => x < 50),
    // (not judged below 5,000 connections: the RSS deltas are noise there). Judged on RSS and on the JS heap: an
    // RSS delta can come out under the heap delta when the objects fill pages the baseline had committed but free
    // (Chorus's node, restarted on its data, has such a heap), which a larger count would not find.
    'memory/conn <= 1.2x raw ws': clients >= 5000 ? check(Math.max(ratios.bytesPerConnVsWs ?? NaN, ratios.heapPerConnVsWs ?? NaN), (x) => x <= 1.2) : undefined,
  };
  if (clients < 5000) console.log(`note: with ${clients} connections the RSS deltas (B/conn) are within the allocator's noise (they can even come out negative); use the default 10,000 or bench/connections.ts for memory figures`);
  console.log('ratios (Chorus / peer):', JSON.stringify(ratios));
  console.log('targets (shape A):', JSON.stringify(targets));
  if (ch?.half) console.log(`Chorus at half saturation (${ch.half.deliveredPerSec} deliveries/s): p50 ${ch.half.p50Ms} ms, p99 ${ch.half.p99Ms} ms`);
  return {
    bench: 'fanout',
    connections: ch?.connections ?? clients,
    deliveredPerSec: ch?.saturation?.deliveredPerSec,
    p50Ms: ch?.fixed?.p50Ms,
    p99Ms: ch?.fixed?.p99Ms,
    cpuSecPerMillion: ch?.saturation?.cpuSecPerMillion,
    wsDeliveredPerSec: ws?.saturation?.deliveredPerSec,
    wsCpuSecPerMillion: ws?.saturation?.cpuSecPerMillion,
    socketioDeliveredPerSec: sio?.saturation?.deliveredPerSec,
    socketioCpuSecPerMillion: sio?.saturation?.cpuSecPerMillion,
    bytesPerConn: ch?.bytesPerConn,
    wsBytesPerConn: ws?.bytesPerConn,
    socketioBytesPerConn: sio?.bytesPerConn,
    fixedDeliveriesPerSec: fixedDeliveries,
    halfSaturationP50Ms: ch?.half?.p50Ms,
    halfSaturationP99Ms: ch?.half?.p99Ms,
    ...(floor ? { floorDeliveredPerSec: floor.saturation?.deliveredPerSec, floorCpuSecPerMillion: floor.saturation?.cpuSecPerMillion } : {}),
    twoNodeDeliveredPerSec: ch2?.saturation?.deliveredPerSec,
    twoNodeCpuSecPerMillion: ch2?.saturation?.cpuSecPerMillion,
    socketioRedisDeliveredPerSec: sio2?.saturation?.deliveredPerSec,
    socketioRedisCpuSecPerMillion: sio2?.saturation?.cpuSecPerMillion,
    ratios,
    targets,
    edgeLimits: BENCH_EDGE,
    querySide: process.env.BENCH_QUERY_SIDE === '0' ? 'off' : 'default',
    elapsedSec: Math.round((Date.now() - t0) / 1000),
    systems: results,
  };
}
