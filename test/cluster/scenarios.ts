import { startChorusCluster, waitStable, type ChorusCluster } from '../helpers/chorus-cluster.ts';
import { connectUser, setupChat, startLoad, timeUntilAllAnswer, verifyChannels, watchSingleActivation } from './load.ts';

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
}

/**
 * kill -9 one Chorus node (one that hosts channel actors) while clients post
 * a steady stream to many channels; then measure how long until every
 * channel answers, keep posting, and account for every acknowledged write.
 */
export async function killNodeUnderLoad(opts: { nodes?: number; channels?: number; users?: number; beforeMs?: number; afterMs?: number; cluster?: ChorusCluster } = {}): Promise<FailoverFigures> {
  const c = opts.cluster ?? (await startChorusCluster({ nodes: opts.nodes ?? 3 }));
  try {
    const f = await setupChat(c, { channels: opts.channels ?? 24, users: opts.users ?? 6 });
    const watch = watchSingleActivation(c);
    const load = startLoad(f);
    await new Promise((r) => setTimeout(r, opts.beforeMs ?? 2000));
    // the victim: the node hosting the most channel actors
    const hosts = await Promise.all(c.nodes.filter((n) => n.running()).map(async (n) => ({ n, count: (await c.admin<{ actors: string[] }>(n, '/admin/actors')).actors.filter((a) => a.startsWith('channel/')).length })));
    const victim = hosts.sort((a, b) => b.count - a.count)[0]!.n;
    const ackedBeforeKill = load.acked.length;
    const killedAt = Date.now();
    victim.kill();
    await victim.exited();
    const probe = await connectUser(c, 'owner', f.ws);
    const recoverMs = await timeUntilAllAnswer(probe.client, f, killedAt);
    await new Promise((r) => setTimeout(r, opts.afterMs ?? 2000));
    await load.stop();
    await watch.stop();
    await waitStable(c);
    const v = await verifyChannels(probe.client, f, load.acked);
    probe.client.close();
    f.close();
    return {
      nodes: opts.nodes ?? 3, natsServers: c.nats.servers.length, channels: f.channels.length, recoverMs,
      ackedWrites: load.acked.length, ackedBeforeKill, stored: v.stored, ackedLost: v.lost, duplicates: v.duplicates, gaps: v.gaps,
      doubleActivations: watch.violations.length, activationSweeps: watch.sweeps, retriedErrors: Object.fromEntries(load.errors), killed: victim.id,
    };
  } finally {
    if (!opts.cluster) await c.stop();
  }
}
