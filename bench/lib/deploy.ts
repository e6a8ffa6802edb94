/**
 * Starting the systems under test as separate processes, each measured from
 * outside (/proc): Chorus nodes (embedded, or cluster profile over one local
 * nats-server), the raw ws relay, Socket.IO (alone, or several nodes on a
 * redis-server with @socket.io/redis-adapter). A Deployment knows its node
 * ports, the pids whose CPU counts (servers plus any broker) and the pids
 * whose memory counts (the server processes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EdgeOptions } from '../../cluster/edge/chat-edge.ts';
import { NODE_FLAGS } from '../../cluster/node-flags.ts';
import { startNats, type NatsCluster } from '../../test/helpers/nats.ts';
import { freePort } from '../../test/helpers/ports.ts';
import type { SetupPlan } from './chorus-server.ts';
import type { Dialect } from './loadgen.ts';
import { Child } from './rpc.ts';
import { cpuOf, rssBytes } from './stats.ts';

/** The token secret the bench servers and generators share. */
export const BENCH_SECRET = 'chorus-bench-secret-0123456789';

/** A running system under test. */
export interface Deployment {
  readonly label: string;
  readonly dialect: Dialect;
  /** One port per node, on 127.0.0.1. */
  readonly ports: number[];
  readonly secret?: string;
  /** Processes whose CPU counts: the nodes, and the broker if any. */
  readonly cpuPids: number[];
  /** Processes whose memory counts: the nodes. */
  readonly memPids: number[];
  /** Node children (for setup, stats, gc). */
  readonly nodes: Child[];
  /** Why a node or the broker is down, if one is (for reporting a failed run). */
  health(): string | undefined;
  /** Full GC in every node, then the summed RSS of the nodes. */
  settledRss(): Promise<number>;
  /** Full GC, then the summed V8 heap in use of the nodes. */
  settledHeap(): Promise<number>;
  /**
   * Chorus: restarts every node process on its data (same port), so memory
   * is measured from a fresh process holding the data set, with no actor
   * active and no garbage from the setup. Others: nothing.
   */
  restart(): Promise<void>;
  /** Waits (at most `timeoutMs`, default 30 s) until the nodes are idle (see `quiesce`); resolves with the time waited. */
  quiesce(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Idle time before an RSS reading, between two full GCs. V8 gives free pages
 * back to the system from its memory reducer, which runs once a process has
 * allocated little for a few seconds; read sooner, RSS carries whatever the
 * last burst left committed (a Chorus node with 10,000 connected members:
 * 3.8-12.9 KB per connection across runs of one build read 0.6 s after the
 * GCs, 4.6-4.9 KB with this wait). Every system gets the same wait.
 */
const RSS_IDLE_MS = 10_000;

async function settledRss(nodes: Child[]): Promise<number> {
  for (const wait of [RSS_IDLE_MS, 300]) {
    await Promise.all(nodes.map((n) => n.call('gc')));
    await new Promise((r) => setTimeout(r, wait));
  }
  return nodes.reduce((s, n) => s + rssBytes(n.pid), 0);
}

async function settledHeap(nodes: Child[]): Promise<number> {
  await Promise.all(nodes.map((n) => n.call('gc')));
  const s = await Promise.all(nodes.map((n) => n.call<{ heapUsed: number }>('stats')));
  return s.reduce((a, b) => a + b.heapUsed, 0);
}

/**
 * Waits until the nodes are idle: their live actor and connection counts have
 * not changed and they used under 0.1 core, both for 1 s (at most
 * `timeoutMs`). Background work left by the setup (the query side catching
 * up on the log, actors persisting) would otherwise be billed to the next
 * measurement.
 */
async function quiesce(nodes: Child[], timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  const deadline = t0 + timeoutMs;
  let last = '';
  let since = Date.now();
  let cpu = cpuOf(nodes.map((n) => n.pid));
  let at = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const s = await Promise.all(nodes.map((n) => n.call<{ actors?: number; connections?: number }>('stats')));
    const now = JSON.stringify(s.map((x) => [x.actors, x.connections]));
    const c = cpuOf(nodes.map((n) => n.pid));
    const cores = (c - cpu) / ((Date.now() - at) / 1000);
    cpu = c;
    at = Date.now();
    if (now !== last || cores > 0.1) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= 1000) break;
  }
  return Date.now() - t0;
}

function deployment(d: Omit<Deployment, 'settledRss' | 'settledHeap' | 'restart' | 'quiesce' | 'health'> & { restart?: () => Promise<void>; broker?: () => string | undefined }): Deployment {
  return {
    restart: async () => {}, ...d,
    health: () => {
      const b = d.broker?.();
      if (b) return b;
      const dead = d.nodes.find((n) => n.proc.exitCode !== null || n.proc.signalCode !== null);
      return dead ? `${dead.name} exited (${dead.proc.exitCode ?? dead.proc.signalCode})` : undefined;
    },
    settledRss: () => settledRss(d.nodes), settledHeap: () => settledHeap(d.nodes), quiesce: (t = 30_000) => quiesce(d.nodes, t),
  };
}

/** Extra node flags, e.g. BENCH_SERVER_ARGS="--cpu-prof --cpu-prof-dir=.tmp/prof". */
function serverArgs(): string[] {
  return ['--expose-gc', ...(process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean)];
}

/** The raw ws relay: one process, or `nodes` independent ones (for more sockets than one process may hold). */
export async function startWs(nodes = 1): Promise<Deployment> {
  const children = Array.from({ length: nodes }, (_, i) => new Child(`ws-server-${i + 1}`, './ws-server.ts', {}, serverArgs()));
  try {
    const ports = await Promise.all(children.map(async (c) => (await c.waitReady<{ port: number }>()).port));
    const pids = children.map((c) => c.pid);
    return deployment({
      label: nodes > 1 ? `raw ws x${nodes}` : 'raw ws', dialect: 'ws', ports, cpuPids: pids, memPids: pids, nodes: children,
      stop: async () => { await Promise.all(children.map((c) => c.stop())); },
    });
  } catch (err) {
    for (const c of children) c.kill();
    throw err;
  }
}

/** Socket.IO: one node, or `nodes` nodes sharing rooms through a fresh redis-server. */
export async function startSio(nodes = 1): Promise<Deployment> {
  let redis: ChildProcess | undefined;
  const env: Record<string, string> = {};
  if (nodes > 1) {
    const rport = await freePort();
    redis = spawn('redis-server', ['--port', String(rport), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
    await waitPort(rport);
    env.BENCH_REDIS_URL = `redis://127.0.0.1:${rport}`;
  }
  const children: Child[] = [];
  try {
    for (let i = 0; i < nodes; i++) children.push(new Child(`sio-${i + 1}`, './sio-server.ts', env, serverArgs()));
    const ports = await Promise.all(children.map(async (c) => (await c.waitReady<{ port: number }>()).port));
    const pids = children.map((c) => c.pid);
    return deployment({
      label: nodes > 1 ? `Socket.IO x${nodes} + redis` : 'Socket.IO', dialect: 'sio', ports, nodes: children,
      cpuPids: redis ? [...pids, redis.pid!] : pids, memPids: pids,
      broker: () => (redis && (redis.exitCode !== null || redis.signalCode !== null) ? `redis-server exited (${redis.exitCode ?? redis.signalCode})` : undefined),
      stop: async () => {
        await Promise.all(children.map((c) => c.stop()));
        if (redis) await killWait(redis);
      },
    });
  } catch (err) {
    for (const c of children) c.kill();
    if (redis) await killWait(redis);
    throw err;
  }
}

/**
 * Chorus: one embedded-profile node, or `nodes` cluster-profile nodes on a
 * fresh nats-server (JetStream log and KV, NATS core transport). Waits until
 * every node sees all of them in its placement table. `memoryPorts` (one
 * node): in-memory ports, no durable log; such a node cannot be restarted on
 * its data (`restart` does nothing).
 */
export async function startChorus(opts: { nodes?: number; edge: EdgeOptions; label?: string; querySide?: boolean; memoryPorts?: boolean }): Promise<Deployment> {
  const count = opts.nodes ?? 1;
  const dir = await mkdtemp(join(tmpdir(), 'chorus-bench-'));
  let nats: NatsCluster | undefined;
  const children: Child[] = [];
  const cleanup = async () => {
    await Promise.all(children.map((c) => c.stop()));
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    if (count > 1) nats = await startNats({ size: 1 });
    const settings = Array.from({ length: count }, (_, i) => ({
      profile: count > 1 ? 'cluster' : 'embedded', nodeId: `b${i + 1}`, dataDir: join(dir, `b${i + 1}`), authSecret: BENCH_SECRET, edge: opts.edge, port: 0,
      ...(opts.querySide === false || process.env.BENCH_QUERY_SIDE === '0' ? { querySide: false } : {}),
      ...(opts.memoryPorts ? { memoryPorts: true } : {}),
      ...(nats ? { natsUrls: nats.urls } : {}),
    }));
    const launch = (i: number) => new Child(`chorus-${i + 1}`, './chorus-server.ts', { BENCH_CHORUS: JSON.stringify(settings[i]) }, [...NODE_FLAGS, ...serverArgs()]);
    for (let i = 0; i < count; i++) children.push(launch(i));
    const ports = await Promise.all(children.map(async (c) => (await c.waitReady<{ port: number }>(90_000)).port));
    ports.forEach((p, i) => { settings[i]!.port = p; });
    if (count > 1) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const seen = await Promise.all(children.map((c) => c.call<{ members: number }>('stats')));
        if (seen.every((s) => s.members === count)) break;
        if (Date.now() > deadline) throw new Error(`chorus nodes did not agree on ${count} members: ${seen.map((s) => s.members).join(',')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const pids = children.map((c) => c.pid);
    const brokerPids = nats ? nats.servers.map((s) => s.proc.pid!) : [];
    const d: Deployment = deployment({
      label: opts.label ?? (count > 1 ? `Chorus x${count} + NATS` : 'Chorus'), dialect: 'chorus', ports, secret: BENCH_SECRET, nodes: children,
      cpuPids: [...pids, ...brokerPids], memPids: pids, stop: cleanup,
      broker: () => {
        const s = nats?.servers.find((x) => x.proc.exitCode !== null || x.proc.signalCode !== null);
        return s ? `nats-server ${s.name} exited (${s.proc.exitCode ?? s.proc.signalCode}); nats-server 2.9.10 is known here to crash with a nil dereference in jsMsgGetRequest when a MSG.GET races the creation of its stream` : undefined;
      },
      restart: async () => {
        if (opts.memoryPorts) return;
        for (let i = 0; i < count; i++) {
          await children[i]!.stop();
          children[i] = launch(i);
          await children[i]!.waitReady(90_000);
          pids[i] = children[i]!.pid;
        }
        d.cpuPids.splice(0, pids.length, ...pids);
        d.memPids.splice(0, pids.length, ...pids);
      },
    });
    return d;
  } catch (err) {
    for (const c of children) c.kill();
    await nats?.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Runs the bench-only setup on the first node; returns the channel ids per workspace. */
export async function chorusSetup(d: Deployment, plan: SetupPlan): Promise<{ workspaces: Array<{ ws: string; channels: string[] }>; ms: number }> {
  return d.nodes[0]!.call('setup', plan, 170_000);
}

function waitPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(); });
      s.once('error', () => {
        if (Date.now() > deadline) reject(new Error(`nothing listening on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function killWait(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}
