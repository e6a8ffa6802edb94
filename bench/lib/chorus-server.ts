/**
 * One Chorus node for the benches, as its own process (so its CPU and memory
 * are measured apart from the load generator): `startNode` from
 * cluster/bootstrap.ts with the edge limits the bench chooses, plus a
 * bench-only setup path that creates workspaces, channels and memberships by
 * asking the domain actors directly (the same commands a client would send:
 * createWorkspace, createInvite, joinWorkspace, createChannel, joinChannel).
 *
 * Environment: BENCH_CHORUS = JSON `{ profile, nodeId, dataDir, natsUrls?,
 * authSecret, edge, querySide?, memoryPorts? }` (`edge` is passed as StartOptions.edge). Driven over
 * IPC (bench/lib/rpc.ts): `setup`, `stats`, `gc`, `stop`.
 */
import { MemoryEventLog, MemoryKv, MemoryNetwork, MemorySnapshotStore } from '../../adapters/memory/index.ts';
import { startNode, type StartOptions } from '../../cluster/bootstrap.ts';
import type { NodePorts } from '../../cluster/container.ts';
import { makeConfig } from '../../cluster/config.ts';
import type { EdgeOptions } from '../../cluster/edge/chat-edge.ts';
import { ChorusError } from '../../runtime/index.ts';
import { profileHandlers } from './profiler.ts';
import { serve } from './rpc.ts';

interface Settings {
  profile: 'embedded' | 'cluster'; nodeId: string; dataDir: string; natsUrls?: string[]; authSecret: string; edge: EdgeOptions; port?: number;
  /** false: start without the query side (projections of the log into SQL); default: the node's own default. */
  querySide?: boolean;
  /**
   * true: the node's ports are the in-memory ones (transport, KV, log and
   * snapshots of adapters/memory): no durable append, nothing on disk. The
   * fan-out bench's `floor` system: what the actor turns and the edge cost alone.
   */
  memoryPorts?: boolean;
}

/** What `setup` builds: per workspace, its members and its channels' members. */
export interface SetupPlan {
  workspaces: Array<{ ws: string; owner: string; members: string[]; channels: Array<{ name: string; members: string[] }> }>;
  /** Workspaces set up at once, and asks at once within one. Default 32 and 32. */
  parallel?: { workspaces: number; perWorkspace: number };
}

const s = JSON.parse(process.env.BENCH_CHORUS ?? '{}') as Settings;
/** Pause after the first write of each kind in a workspace (see poolAfterFirst): only the cluster profile needs it. */
const settleMs = s.profile === 'cluster' ? 250 : 0;
const config = makeConfig({
  profile: s.profile, nodeId: s.nodeId, port: s.port ?? 0, host: '127.0.0.1', dataDir: s.dataDir, logLevel: 'warn',
  authSecret: s.authSecret, devSignIn: false, ...(s.natsUrls ? { natsUrls: s.natsUrls } : {}),
});
function memoryPorts(): NodePorts {
  const net = new MemoryNetwork();
  return { transport: net.transport(config.nodeId), kv: new MemoryKv(), log: new MemoryEventLog(), snapshots: new MemorySnapshotStore(), close: async () => {} };
}
// (querySide passed only when set, so this compiles against a bootstrap without that option too)
const running = await startNode(config, {
  edge: s.edge, ...(s.querySide === false ? { querySide: false } : {}), ...(s.memoryPorts ? { ports: memoryPorts() } : {}),
} as StartOptions);

/** Runs `fn` over `items` with at most `n` in flight. */
async function pool<T, R>(items: readonly T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

/**
 * Like `pool`, but the first item alone, then a pause before the rest. In
 * the cluster profile the first write of an actor type in a workspace
 * creates its JetStream stream, and nats-server 2.9.10 crashes (nil
 * dereference in jsMsgGetRequest) when a MSG.GET reaches a stream still
 * being created: an actor activated on the other node reads it at once. The
 * pause lets the creations the first write set off (tells to other actors
 * included) finish before the rest of the workspace's actors wake up.
 */
async function poolAfterFirst<T, R>(items: readonly T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  if (items.length === 0) return [];
  const first = await fn(items[0]!);
  if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
  return [first, ...(await pool(items.slice(1), n, fn))];
}

/** An ask retried on timeouts and moved actors (a cluster may still be settling placement). */
async function ask<T>(type: string, key: string, msg: Record<string, unknown>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await running.node.ref(type, key).ask<T>(msg);
    } catch (err) {
      const code = err instanceof ChorusError ? err.code : '';
      if (code === 'CHAT_CONFLICT') return undefined as T;
      if (attempt >= 8 || !/TIMEOUT|NO_OWNER|NOT_OWNER|UNAVAILABLE|CONFLICT/.test(code)) throw err;
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }
}

async function setup(plan: SetupPlan): Promise<{ workspaces: Array<{ ws: string; channels: string[] }>; ms: number }> {
  const t0 = Date.now();
  const par = plan.parallel ?? { workspaces: 32, perWorkspace: 32 };
  const result = await pool(plan.workspaces, par.workspaces, async (w) => {
    await ask('workspace', w.ws, { op: 'createWorkspace', by: w.owner, ws: w.ws, clientMsgId: 'bench-ws', name: `Bench ${w.ws}` });
    const codes: string[] = [];
    for (let k = 0; k * 1000 < w.members.length; k++) {
      const r = await ask<{ code: string }>('workspace', w.ws, { op: 'createInvite', by: w.owner, ws: w.ws, clientMsgId: `bench-inv-${k}`, role: 'member', maxUses: Math.min(1000, w.members.length - k * 1000) });
      codes.push(r.code);
    }
    await poolAfterFirst(w.members.map((u, i) => ({ u, code: codes[Math.floor(i / 1000)] })), par.perWorkspace, (j) =>
      ask('workspace', w.ws, { op: 'joinWorkspace', by: j.u, ws: w.ws, clientMsgId: 'bench-join', code: j.code }));
    const chans = await poolAfterFirst(w.channels, 8, (c) => ask<{ ch: string }>('workspace', w.ws, { op: 'createChannel', by: w.owner, ws: w.ws, clientMsgId: `bench-ch-${c.name}`, name: c.name, kind: 'public' }));
    const joins = w.channels.flatMap((c, k) => c.members.map((u) => ({ u, ch: chans[k]!.ch })));
    await poolAfterFirst(joins, par.perWorkspace, (j) => ask('channel', `${w.ws}.${j.ch}`, { op: 'joinChannel', by: j.u, ws: w.ws, ch: j.ch, clientMsgId: 'bench-join' }));
    return { ws: w.ws, channels: chans.map((c) => c.ch) };
  });
  return { workspaces: result, ms: Date.now() - t0 };
}

function stats() {
  const m = process.memoryUsage();
  return {
    rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers,
    connections: running.edge.connectionCount, subjects: running.edge.subjectCount,
    members: running.node.actors.table.members.length, actors: running.node.actors.activeCount(), cpu: process.cpuUsage(),
  };
}

serve({
  setup: (plan: SetupPlan) => setup(plan),
  ...profileHandlers,
  stats,
  gc: () => { (globalThis as { gc?: () => void }).gc?.(); return true; },
  stop: () => running.stop(),
}, { port: running.port, url: running.url });
