/**
 * Failover of a real cluster: 3 Chorus node processes on a 3-server NATS
 * cluster (JetStream R3), a steady stream of posts from 6 clients to 24
 * channels, then kill -9 of the node hosting the most channel actors.
 *
 * Figures: `recoverMs` (kill until every channel answers again, through a
 * client of the surviving nodes), `tableMs` (kill until every survivor
 * follows the table without the dead node), the longest stretch without any
 * acked post, and the accounting of every acknowledged post afterwards (lost,
 * duplicates, seq gaps) plus double activations seen by a watcher polling
 * every node's /admin/actors every 100 ms. With the default timing
 * (heartbeat 250 ms, fence 1000 ms, failure 2000 ms) recovery is bounded by
 * failure detection (2 s) plus a table write and reactivation from the log.
 *
 * Usage: `npm run bench -- failover [--quick] [--nodes=N] [--nats=N]`.
 * `--quick`: 12 channels, 1 s of load before and after the kill.
 * Method: one run per invocation (each spawns its own cluster on free
 * ports); run it several times and report each figure. The machine is
 * shared, so recoverMs varies by a few hundred ms between runs.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killNodeUnderLoad } from '../test/cluster/scenarios.ts';

/** Runs one failover and returns its figures (also printed as a table). */
export async function run(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes('--quick');
  const int = (name: string, dflt: number) => {
    const a = args.find((x) => x.startsWith(`--${name}=`));
    const v = a ? Number(a.slice(name.length + 3)) : dflt;
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`--${name} must be a positive integer`);
    return v;
  };
  const nodes = int('nodes', 3);
  const natsServers = int('nats', 3);
  if (nodes < 2) throw new RangeError('--nodes must be at least 2 (one is killed)');
  const channels = quick ? 12 : 24;
  const users = 6;
  const t0 = Date.now();
  const f = await killNodeUnderLoad({ nodes, natsServers, channels, users, beforeMs: quick ? 1000 : 2000, afterMs: quick ? 1000 : 2000 });
  const retried = Object.values(f.retriedErrors).reduce((a, b) => a + b, 0);
  const figures = {
    bench: 'failover',
    nodes: f.nodes,
    natsServers: f.natsServers,
    channels: f.channels,
    clients: users,
    killed: f.killed,
    recoverMs: f.recoverMs,
    tableMs: f.tableMs,
    longestAckGapMs: f.longestAckGapMs,
    ackedWrites: f.ackedWrites,
    ackedBeforeKill: f.ackedBeforeKill,
    stored: f.stored,
    ackedLost: f.ackedLost,
    duplicates: f.duplicates,
    gaps: f.gaps,
    doubleActivations: f.doubleActivations,
    activationSweeps: f.activationSweeps,
    retriedErrors: f.retriedErrors,
    retried,
    timing: { heartbeatMs: 250, fenceAfterMs: 1000, failureTimeoutMs: 2000, leaseMs: 1500 },
    quick,
    runMs: Date.now() - t0,
  };
  console.log(`failover: ${f.nodes} Chorus nodes on ${f.natsServers} nats-servers (R${f.natsServers >= 3 ? 3 : 1}), ${channels} channels, ${users} clients posting; kill -9 ${f.killed}`);
  console.table({
    'kill -> every channel answers (ms)': { value: f.recoverMs, target: '< 3000' },
    'kill -> table without the dead node (ms)': { value: f.tableMs, target: '' },
    'longest stretch without an ack (ms)': { value: f.longestAckGapMs, target: '' },
    'acked posts (before kill)': { value: `${f.ackedWrites} (${f.ackedBeforeKill})`, target: '' },
    'acked but lost': { value: f.ackedLost, target: 0 },
    'stored twice': { value: f.duplicates, target: 0 },
    'seq gaps': { value: f.gaps, target: 0 },
    'double activations seen': { value: `${f.doubleActivations} in ${f.activationSweeps} sweeps`, target: 0 },
    'client retries': { value: `${retried} ${JSON.stringify(f.retriedErrors)}`, target: '' },
  });
  return figures;
}

// Run on its own: print the table, then the figures as the very last line.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const figures = await run(process.argv.slice(2));
  console.log(JSON.stringify(figures));
  process.exit(0);
}
