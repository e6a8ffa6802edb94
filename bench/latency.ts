/**
 * End-to-end latency of Chorus (one embedded-profile node) against load:
 * p50/p99/p999 from post send to receipt at every member, at fixed post
 * rates from 10 % to 90 % of the saturation rate measured first in the same
 * run, so the knee of the curve shows.
 *
 * Usage: `npm run bench -- latency [--quick] [--clients=N] [--no-query-side]
 * [--profile=dir]`.
 * Workload as in bench/fanout.ts shape A: C clients (default 10,000;
 * `--quick` 2,000) in channels of 10 over load-generator processes; the
 * edge limits of bench/fanout.ts (BENCH_EDGE). Latency includes the load
 * generator's own event-loop delay (it shares the 2 cores), which is why its
 * CPU is reported next to each row.
 */
import { BENCH_EDGE } from './fanout.ts';
import { startChorus } from './lib/deploy.ts';
import { round } from './lib/stats.ts';
import { populate, runPhase, type Shape } from './lib/workload.ts';

/** Runs the latency curve; returns the rows (and prints a table). */
export async function run(args: string[]): Promise<Record<string, unknown>> {
  // --no-query-side: Chorus nodes start without the query side (projections of the log into SQL; on by default in the embedded profile)
  if (args.includes('--no-query-side')) process.env.BENCH_QUERY_SIDE = '0';
  const quick = args.includes('--quick');
  const clientsArg = args.find((a) => a.startsWith('--clients='));
  const clients = clientsArg ? Number(clientsArg.slice(10)) : quick ? 2000 : 10_000;
  if (!Number.isInteger(clients) || clients < 10 || clients % 10 !== 0) throw new RangeError('--clients must be a multiple of 10');
  const profileDir = args.find((a) => a.startsWith('--profile='))?.slice(10);
  const shape: Shape = { clients, channelSize: 10 };
  const steps = quick ? [10, 30, 50, 70, 90] : [10, 20, 30, 40, 50, 60, 70, 80, 90];
  const measureMs = quick ? 1500 : 2500;
  const warmupMs = quick ? 500 : 700;
  const t0 = Date.now();
  const d = await startChorus({ edge: BENCH_EDGE });
  let pop: Awaited<ReturnType<typeof populate>> | undefined;
  try {
    pop = await populate(d, shape, { generators: clients > 4000 ? 2 : 1 });
    if (pop.connected === 0) throw new Error(`no client connected: ${pop.firstFailure}`);
    console.log(`latency: Chorus (embedded), ${pop.connected} clients in ${clients / 10} channels x 10; setup ${round(pop.setupMs / 1000, 1)} s, connect ${round(pop.connectMs / 1000, 1)} s`);
    console.log(`edge limits (StartOptions.edge): ${JSON.stringify(BENCH_EDGE)}; query side ${process.env.BENCH_QUERY_SIDE === '0' ? 'off' : 'on (embedded default)'}`);
    // saturation: the better of a small and a large number of posts in flight (see bench/fanout.ts satWindows)
    let sat = await runPhase(d, pop, { mode: 'window', window: 200, warmupMs: warmupMs + 800, measureMs, drainMs: 3000 });
    let satWindow = 200;
    const big = await runPhase(d, pop, { mode: 'window', window: 1200, warmupMs: warmupMs + 800, measureMs, drainMs: 3000 });
    if (big.deliveredPerSec > sat.deliveredPerSec) {
      sat = big;
      satWindow = 1200;
    }
    const satPosts = sat.postsPerSec;
    if (!satPosts) throw new Error(`saturation phase delivered nothing: ${sat.sampleError ?? ''}`);
    const rows = [];
    for (const pct of steps) {
      const rate = (satPosts * pct) / 100;
      if (profileDir) await d.nodes[0]!.call('profileStart');
      const r = await runPhase(d, pop, { mode: 'rate', rate, warmupMs, measureMs, drainMs: 3000 }, {
        beforeSettle: async () => {
          if (profileDir) await d.nodes[0]!.call('profileStop', { file: `${profileDir}/latency-${pct}.cpuprofile` });
        },
      });
      rows.push({
        loadPct: pct, targetDeliveredPerSec: Math.round(rate * 10), deliveredPerSec: r.deliveredPerSec,
        p50Ms: r.p50Ms, p99Ms: r.p99Ms, p999Ms: r.p999Ms, maxMs: r.maxMs, cpuSecPerMillion: r.cpuSecPerMillion,
        serverCores: r.serverCores, genCores: r.genCores, foreignCores: r.foreignCores, lost: r.lost, errors: r.errors,
        windowCpuSecPerMillion: r.windowCpuSecPerMillion, settleSec: r.settleSec, settleCpuSec: r.settleCpuSec,
      });
    }
    console.log(`saturation: ${sat.deliveredPerSec} deliveries/s (${satPosts} posts/s), p50 ${sat.p50Ms} ms, p99 ${sat.p99Ms} ms with ${satWindow} posts in flight`);
    console.table(Object.fromEntries(rows.map((r) => [`${r.loadPct} %`, {
      'target/s': r.targetDeliveredPerSec, 'delivered/s': r.deliveredPerSec, 'p50 ms': r.p50Ms, 'p99 ms': r.p99Ms, 'p999 ms': r.p999Ms,
      'CPU-s/M': r.cpuSecPerMillion, 'server cores': r.serverCores, 'settle s': r.settleSec, 'gen cores': r.genCores, 'other load': r.foreignCores,
    }])));
    const knee = rows.find((r) => r.p99Ms >= 50);
    const half = rows.find((r) => r.loadPct === 50);
    if (rows.some((r) => r.foreignCores > 0.3)) console.log('note: other processes used over 0.3 core during some rows (column "other load"): those rows are skewed');
    return {
      bench: 'latency',
      connections: pop.connected,
      saturationDeliveredPerSec: sat.deliveredPerSec,
      saturationPostsPerSec: satPosts,
      saturationWindow: satWindow,
      halfSaturationP99Ms: half?.p99Ms,
      kneeLoadPct: knee?.loadPct ?? null,
      rows,
      edgeLimits: BENCH_EDGE,
      querySide: process.env.BENCH_QUERY_SIDE === '0' ? 'off' : 'default',
      elapsedSec: Math.round((Date.now() - t0) / 1000),
    };
  } finally {
    await pop?.close();
    await d.stop();
  }
}
