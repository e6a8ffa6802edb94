import { perWorkspace } from '../../adapters/nats/jetstream-event-log.ts';
import { startChorusCluster, waitStable, type ChorusCluster } from '../helpers/chorus-cluster.ts';
import { waitFor } from '../helpers/ports.ts';
import { jetStreamProbe } from './jetstream-info.ts';
import { connectUser, longestAckGap, setupChat, startLoad, timeUntilAllAnswer, verifyChannels, watchSingleActivation } from './load.ts';

/** Things to undo when a scenario ends, also after a failure (an open client reconnects forever and keeps the process alive). */
class Cleanup {
  private readonly fns: Array<() => unknown> = [];
  add(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) await Promise.resolve().then(fn).catch(() => {});
  }
}

/** Figures of a failover run (the failover bench prints them). */
export interface FailoverFigures {
  nodes: number;
  natsServers: number;
  channels: number;
  recoverMs: number;
  ackedWrites: number;
  ackedBeforeKill: number;
  stored: number;
  ackedLost: number;
  duplicates: number;
  gaps: number;
  doubleActivations: number;
  activationSweeps: number;
  retriedErrors: Record<string, number>;
  killed: string;
  /** Kill until the stable table without the dead node was seen everywhere. */
  tableMs: number;
  /** Longest stretch without any ack from the kill until every channel answered again. */
  longestAckGapMs: number;
}

/**
 * kill -9 one Chorus node (one that hosts channel actors) while clients post
 * a steady stream to many channels; then measure how long until every
 * channel answers, keep posting, and account for every acknowledged write.
 */
export async function killNodeUnderLoad(opts: { nodes?: number; natsServers?: number; channels?: number; users?: number; beforeMs?: number; afterMs?: number; cluster?: ChorusCluster } = {}): Promise<FailoverFigures> {
  const c = opts.cluster ?? (await startChorusCluster({ nodes: opts.nodes ?? 3, natsServers: opts.natsServers ?? 3 }));
  const cleanup = new Cleanup();
  if (!opts.cluster) cleanup.add(() => c.stop());
  try {
    const f = await setupChat(c, { channels: opts.channels ?? 24, users: opts.users ?? 6 });
    cleanup.add(() => f.close());
    const watch = watchSingleActivation(c);
    cleanup.add(() => watch.stop());
    const load = startLoad(f);
    cleanup.add(() => load.abort());
    await new Promise((r) => setTimeout(r, opts.beforeMs ?? 2000));
    // the victim: the node hosting the most channel actors
    const hosts = await Promise.all(c.nodes.filter((n) => n.running()).map(async (n) => ({ n, count: (await c.admin<{ actors: string[] }>(n, '/admin/actors')).actors.filter((a) => a.startsWith('channel/')).length })));
    const victim = hosts.sort((a, b) => b.count - a.count)[0]!.n;
    const ackedBeforeKill = load.acked.length;
    const killedAt = Date.now();
    victim.kill();
    await victim.exited();
    const probe = await connectUser(c, 'owner', f.ws);
    cleanup.add(() => probe.client.close());
    const recoverMs = await timeUntilAllAnswer(probe.client, f, killedAt);
    const gap = longestAckGap(load.acked, killedAt, killedAt + recoverMs);
    await waitStable(c, 30_000);
    const tableMs = Date.now() - killedAt;
    await new Promise((r) => setTimeout(r, opts.afterMs ?? 2000));
    await load.stop();
    await watch.stop();
    await waitStable(c);
    const v = await verifyChannels(probe.client, f, load.acked);
    return {
      nodes: opts.nodes ?? 3, natsServers: c.nats.servers.length, channels: f.channels.length, recoverMs,
      ackedWrites: load.acked.length, ackedBeforeKill, stored: v.stored, ackedLost: v.lost, duplicates: v.duplicates, gaps: v.gaps,
      doubleActivations: watch.violations.length, activationSweeps: watch.sweeps, retriedErrors: Object.fromEntries(load.errors), killed: victim.id,
      tableMs, longestAckGapMs: gap.ms,
    };
  } finally {
    await cleanup.run();
  }
}

/** Figures of a NATS-server kill run. */
export interface NatsKillFigures {
  natsServers: number;
  nodes: number;
  channels: number;
  killedServer: string;
  /** Why that server was chosen. */
  killedRole: string;
  /** Every JetStream stream (log streams and KV buckets) the killed server led. */
  ledStreams: string[];
  logStream: string;
  ackedWrites: number;
  ackedBeforeKill: number;
  ackedAfterKill: number;
  /** The longest stretch without any ack, from the kill until acks had resumed. */
  longestAckGapMs: number;
  /** Kill until `afterAcks` posts had been acked after it (the condition the run waited for). */
  resumedMs: number;
  stored: number;
  ackedLost: number;
  duplicates: number;
  gaps: number;
  doubleActivations: number;
  activationSweeps: number;
  retriedErrors: Record<string, number>;
  /** Placement epoch before the kill and after the run (equal: no node was declared dead). */
  epochBefore: number;
  epochAfter: number;
  /** The server leading the log stream after the kill. */
  newLeader: string | undefined;
  /** Restart of the killed server until it was a current replica of the log stream again (-1: not tried). */
  rejoinMs: number;
}

/**
 * kill -9 the nats-server that leads the chat log's JetStream stream while
 * clients post a steady stream, so that every append waits for a new stream
 * leader (4-8 s on nats-server 2.9): the posts are retried with the same
 * clientMsgId until acked. Then account for every acknowledged post, and
 * restart the server and wait until it is a current replica again.
 */
export async function killNatsUnderLoad(opts: { channels?: number; users?: number; afterAcks?: number; afterMs?: number; rejoin?: boolean; cluster?: ChorusCluster } = {}): Promise<NatsKillFigures> {
  const c = opts.cluster ?? (await startChorusCluster({ nodes: 3, natsServers: 3 }));
  const cleanup = new Cleanup();
  if (!opts.cluster) cleanup.add(() => c.stop());
  try {
    const probe = await jetStreamProbe(c.nats);
    cleanup.add(() => probe.close());
    const f = await setupChat(c, { channels: opts.channels ?? 12, users: opts.users ?? 6 });
    cleanup.add(() => f.close());
    const logStream = perWorkspace()(`channel.${f.ws}.x`).name;
    const watch = watchSingleActivation(c);
    cleanup.add(() => watch.stop());
    const load = startLoad(f);
    cleanup.add(() => load.abort());
    await waitFor(() => load.acked.length >= 60, { timeoutMs: 30_000, what: 'the load to get going' });
    // the victim: the leader of the stream every post appends to, so the kill stalls every write
    const group = await probe.group(logStream);
    const victim = c.nats.servers.find((s) => s.name === group.leader) ?? c.nats.servers[0]!;
    const killedRole = group.leader === victim.name ? `leader of ${logStream}` : 'servers[0] (no leader found)';
    // every stream (log streams, KV buckets) whose leader dies with it
    const ledStreams: string[] = [];
    for (const name of await probe.streams()) if ((await probe.group(name).catch(() => undefined))?.leader === victim.name) ledStreams.push(name);
    const epochBefore = await waitStable(c);
    const ackedBeforeKill = load.acked.length;
    const killedAt = Date.now();
    victim.kill();
    const afterAcks = opts.afterAcks ?? 60;
    // bounded: acks must resume after the stream's leader election, not never
    await waitFor(() => load.acked.filter((a) => a.at > killedAt).length >= afterAcks, { timeoutMs: 45_000, intervalMs: 50, what: `${afterAcks} acks after the nats-server kill` });
    const resumedAt = Date.now();
    await new Promise((r) => setTimeout(r, opts.afterMs ?? 1500));
    await load.stop();
    await watch.stop();
    const gap = longestAckGap(load.acked, killedAt, resumedAt);
    const epochAfter = await waitStable(c, 30_000);
    const newLeader = (await probe.group(logStream).catch(() => undefined))?.leader;
    const reader = await connectUser(c, 'owner', f.ws);
    cleanup.add(() => reader.client.close());
    const v = await verifyChannels(reader.client, f, load.acked);
    let rejoinMs = -1;
    if (opts.rejoin !== false) {
      const restartAt = Date.now();
      await victim.restart();
      await waitFor(async () => {
        const g = await probe.group(logStream);
        return g.leader !== undefined && (g.leader === victim.name || g.replicas.some((r) => r.name === victim.name && r.current && !r.offline));
      }, { timeoutMs: 30_000, intervalMs: 200, what: `${victim.name} to be a current replica of ${logStream} again` });
      rejoinMs = Date.now() - restartAt;
    }
    return {
      natsServers: c.nats.servers.length, nodes: c.nodes.filter((n) => n.running()).length, channels: f.channels.length,
      killedServer: victim.name, killedRole, ledStreams, logStream,
      ackedWrites: load.acked.length, ackedBeforeKill, ackedAfterKill: load.acked.filter((a) => a.at > killedAt).length,
      longestAckGapMs: gap.ms, resumedMs: resumedAt - killedAt,
      stored: v.stored, ackedLost: v.lost, duplicates: v.duplicates, gaps: v.gaps,
      doubleActivations: watch.violations.length, activationSweeps: watch.sweeps, retriedErrors: Object.fromEntries(load.errors),
      epochBefore, epochAfter, newLeader, rejoinMs,
    };
  } finally {
    await cleanup.run();
  }
}
