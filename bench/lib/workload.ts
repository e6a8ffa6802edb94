/**
 * The chat workload shared by the fan-out and latency benches: C clients,
 * each a distinct user and a member of exactly one channel of S members;
 * channels are grouped into workspaces of about 100 users (one channel per
 * workspace when S >= 100) so that workspace-wide events (presence on
 * connect) stay bounded; each channel lives whole in one load generator
 * (sender and receivers share a clock), and with several server nodes the
 * members of a channel alternate between nodes, so every message crosses
 * nodes. Phases are measured on the generators (deliveries, latency) and on
 * the servers from /proc (CPU over exactly the measured window).
 */
import type { Deployment } from './deploy.ts';
import { chorusSetup } from './deploy.ts';
import type { ClientPlan, PhaseResult, PhaseSpec } from './loadgen.ts';
import { Child } from './rpc.ts';
import { Histogram, cpuOf, machineCpu, round } from './stats.ts';

/** A workload shape. */
export interface Shape {
  readonly clients: number;
  readonly channelSize: number;
}

/** Users per workspace (channels are grouped up to this many members). */
export const WORKSPACE_USERS = 100;

/** Clients connected to a deployment through a set of generator processes. */
export interface Population {
  readonly gens: Child[];
  readonly connected: number;
  readonly failed: number;
  readonly firstFailure?: string;
  /** Wall time to open (and, for Chorus, subscribe) every client. */
  readonly connectMs: number;
  /** Chorus: time of the actor setup (workspaces, channels, memberships). */
  readonly setupMs: number;
  /** Time spent waiting for the servers to go idle after the setup and after connecting. */
  readonly settleMs: number;
  close(): Promise<void>;
}

/** What one phase measured, summed over generators. */
export interface PhaseFigures {
  deliveredPerSec: number;
  postsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Server-side CPU seconds (nodes + broker) in the window. */
  serverCpuSec: number;
  /**
   * Server CPU per million deliveries, the work the phase left behind
   * included: the window's CPU plus its share (measured / (warm-up +
   * measured)) of the CPU the servers spent settling after the phase (Chorus:
   * the query side catching up on a burst). `windowCpuSecPerMillion` is the
   * window's alone.
   */
  cpuSecPerMillion: number;
  windowCpuSecPerMillion: number;
  /** Time and server CPU from the end of the phase (after its drain) until the servers were idle again (`Deployment.quiesce`). */
  settleSec: number;
  settleCpuSec: number;
  /** Share of one core the servers used. */
  serverCores: number;
  genCores: number;
  /** Cores busy on the whole machine in the window, and how much of it was softirq (loopback TCP). */
  machineCores: number;
  softirqCores: number;
  /** Cores busy with other work on the machine (machine - servers - generators - softirq): other people's jobs skew a figure when this is high. */
  foreignCores: number;
  lost: number;
  errors: number;
  closed: number;
  sampleError?: string;
  /** Saturation phases: posts in flight. */
  window?: number;
  /** A Chorus node logged that it fenced itself (lost its membership lease) during the phase. */
  fenced?: boolean;
}

/**
 * Starts `generators` load-generator processes, sets up the Chorus domain
 * if the deployment is Chorus, and connects every client. Generator g binds
 * to source address 127.0.0.(2+g) (plus more if it holds over 25,000).
 */
export async function populate(d: Deployment, shape: Shape, opts: {
  generators: number; subscribe?: boolean; tokenWs?: 'own' | 'none';
  /** Runs after the setup, right before the clients connect (baseline memory readings). */
  beforeConnect?: () => Promise<void>;
}): Promise<Population> {
  const { clients, channelSize } = shape;
  if (clients % channelSize !== 0) throw new RangeError(`clients (${clients}) must be a multiple of the channel size (${channelSize})`);
  const channelCount = clients / channelSize;
  const chansPerWs = Math.max(1, Math.floor(WORKSPACE_USERS / channelSize));
  const wsOf = (k: number) => `w${Math.floor(k / chansPerWs)}`;
  const user = (i: number) => `u${i}`;
  // Chorus: create the domain through the actors; channel ids come back
  let chIds: string[] = Array.from({ length: channelCount }, (_, k) => `c${k}`);
  let setupMs = 0;
  let settleMs = 0;
  if (d.dialect === 'chorus') {
    const byWs = new Map<string, { ws: string; owner: string; members: string[]; channels: Array<{ name: string; members: string[] }> }>();
    for (let k = 0; k < channelCount; k++) {
      const ws = wsOf(k);
      let w = byWs.get(ws);
      if (!w) byWs.set(ws, (w = { ws, owner: `owner-${ws}`, members: [], channels: [] }));
      const members = Array.from({ length: channelSize }, (_, j) => user(k * channelSize + j));
      w.members.push(...members);
      w.channels.push({ name: `bench-${k}`, members });
    }
    const r = await chorusSetup(d, { workspaces: [...byWs.values()], ...(d.ports.length > 1 ? { parallel: { workspaces: 8, perWorkspace: 8 } } : {}) });
    setupMs = r.ms;
    chIds = r.workspaces.flatMap((w) => w.channels);
    settleMs += await d.quiesce();
  }
  const nodes = d.ports.length;
  const gens: Child[] = [];
  try {
    for (let g = 0; g < opts.generators; g++) gens.push(new Child(`gen-${g + 1}`, './loadgen.ts'));
    await Promise.all(gens.map((g) => g.waitReady()));
    const plans: ClientPlan[] = gens.map((_, g) => {
      const from = Math.floor((channelCount * g) / gens.length);
      const to = Math.floor((channelCount * (g + 1)) / gens.length);
      const p: ClientPlan = {
        dialect: d.dialect, host: '127.0.0.1', ports: d.ports, node: [], index: [], user: [], ws: [], ch: [],
        localAddresses: [], ...(d.secret ? { secret: d.secret } : {}), subscribe: opts.subscribe ?? true, tokenWs: opts.tokenWs ?? 'own',
      };
      for (let k = from; k < to; k++) {
        for (let j = 0; j < channelSize; j++) {
          const i = k * channelSize + j;
          p.node.push(j % nodes);
          p.index.push(i);
          p.user.push(user(i));
          p.ws.push(wsOf(k));
          p.ch.push(chIds[k]!);
        }
      }
      const addrs = Math.max(1, Math.ceil(p.user.length / 25_000));
      p.localAddresses = Array.from({ length: addrs }, (_, a) => `127.0.${a}.${2 + g}`);
      return p;
    });
    await opts.beforeConnect?.();
    const t1 = Date.now();
    const results = await Promise.all(gens.map((g, i) => g.call<{ connected: number; failed: number; firstFailure?: string }>('connect', plans[i], 170_000)));
    const connectMs = Date.now() - t1;
    settleMs += await d.quiesce();
    const firstFailure = results.find((r) => r.firstFailure)?.firstFailure;
    return {
      gens, connectMs, setupMs, settleMs,
      connected: results.reduce((s, r) => s + r.connected, 0),
      failed: results.reduce((s, r) => s + r.failed, 0),
      ...(firstFailure ? { firstFailure } : {}),
      close: async () => { await Promise.all(gens.map((g) => g.stop())); },
    };
  } catch (err) {
    for (const g of gens) g.kill();
    throw err;
  }
}

/**
 * Runs one phase on every generator at once; `rate`/`window` are totals,
 * split evenly. Then waits for the servers to settle (see
 * PhaseFigures.cpuSecPerMillion). `beforeSettle` runs after the phase's
 * drain, before that wait: a CPU profile stopped there covers the phase only
 * (a running profiler keeps the servers above the idle threshold).
 */
export async function runPhase(d: Deployment, pop: Population, spec: PhaseSpec, hooks: { beforeSettle?: () => Promise<unknown> } = {}): Promise<PhaseFigures> {
  const n = pop.gens.length;
  const per: PhaseSpec = { ...spec, ...(spec.rate ? { rate: spec.rate / n } : {}), ...(spec.window ? { window: Math.max(1, Math.round(spec.window / n)) } : {}) };
  let cpuFrom = 0;
  let cpuTo = 0;
  let mFrom = { busy: 0, softirq: 0 };
  let mTo = { busy: 0, softirq: 0 };
  const t1 = setTimeout(() => { cpuFrom = cpuOf(d.cpuPids); mFrom = machineCpu(); }, spec.warmupMs);
  const t2 = setTimeout(() => { cpuTo = cpuOf(d.cpuPids); mTo = machineCpu(); }, spec.warmupMs + spec.measureMs);
  const results = await Promise.all(pop.gens.map((g) => g.call<PhaseResult>('phase', per, spec.warmupMs + spec.measureMs + 30_000)));
  clearTimeout(t1);
  clearTimeout(t2);
  // the next phase starts from idle servers, and what this one left to do is billed to it (see PhaseFigures.cpuSecPerMillion)
  await hooks.beforeSettle?.();
  const settleFrom = cpuOf(d.cpuPids);
  const settleMs = await d.quiesce();
  const settleCpuSec = cpuOf(d.cpuPids) - settleFrom;
  const h = new Histogram();
  for (const r of results) h.merge(r.hist);
  const deliveries = results.reduce((s, r) => s + r.deliveries, 0);
  const completed = results.reduce((s, r) => s + r.completed, 0);
  const sec = spec.measureMs / 1000;
  const serverCpuSec = cpuTo - cpuFrom;
  const sampleError = results.find((r) => r.sampleError)?.sampleError;
  return {
    deliveredPerSec: Math.round(deliveries / sec),
    postsPerSec: Math.round(completed / sec),
    p50Ms: h.ms(0.5), p99Ms: h.ms(0.99), p999Ms: h.ms(0.999), maxMs: round(h.max / 1000, 1),
    serverCpuSec: round(serverCpuSec, 2),
    cpuSecPerMillion: deliveries ? round(((serverCpuSec + settleCpuSec * spec.measureMs / (spec.warmupMs + spec.measureMs)) / deliveries) * 1e6, 2) : NaN,
    windowCpuSecPerMillion: deliveries ? round((serverCpuSec / deliveries) * 1e6, 2) : NaN,
    settleSec: round(settleMs / 1000, 1),
    settleCpuSec: round(settleCpuSec, 2),
    serverCores: round(serverCpuSec / sec, 2),
    genCores: round(results.reduce((s, r) => s + r.cpuSec, 0) / sec, 2),
    machineCores: round((mTo.busy - mFrom.busy) / sec, 2),
    softirqCores: round((mTo.softirq - mFrom.softirq) / sec, 2),
    foreignCores: round(Math.max(0, (mTo.busy - mFrom.busy - (mTo.softirq - mFrom.softirq) - serverCpuSec) / sec - results.reduce((s, r) => s + r.cpuSec, 0) / sec), 2),
    lost: results.reduce((s, r) => s + r.lost, 0),
    errors: results.reduce((s, r) => s + r.errors, 0),
    closed: results.reduce((s, r) => s + r.closed, 0),
    ...(sampleError ? { sampleError } : {}),
  };
}
