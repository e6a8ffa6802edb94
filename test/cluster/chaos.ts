import { startChorusCluster, waitStable, type ChorusCluster, type NodeProc } from '../helpers/chorus-cluster.ts';
import { seededRandom } from '../harness/rng.ts';
import { connectUser, setupChat, startLoad, verifyChannels, watchSingleActivation, type ChatFixture } from './load.ts';
import type { ChorusClient } from '../../client/sdk.ts';
import { createNetNs, NetNsUnavailable, type NetNs } from '../helpers/netns.ts';

/** The accounting of a chaos run (the last line of `npm run chaos`). */
export interface ChaosFigures {
  seed: number;
  seconds: number;
  faults: Record<string, number>;
  acked: number;
  stored: number;
  delivered: number;
  expectedDeliveries: number;
  lost: number;
  duplicates: number;
  gaps: number;
  deliveryLost: number;
  deliveryDuplicates: number;
  doubleActivations: number;
  retriedErrors: Record<string, number>;
  /** `subscription_error` events the subscribers got (a subscription ended for good). */
  subscriptionErrors: number;
  /** Where deliveries are missing: subscriber, channel, how many, the first and last missing seq. */
  missing: Array<{ sub: number; ch: string; count: number; first: number; last: number }>;
}

/** Subscribers that stay connected (reconnecting as needed) and record every seq they receive per channel. */
async function subscribers(c: ChorusCluster, f: ChatFixture, count: number, log: (s: string) => void) {
  const seen: Array<Map<string, number[]>> = [];
  const clients: ChorusClient[] = [];
  const errors = { count: 0 };
  for (let i = 0; i < count; i++) {
    const { client } = await connectUser(c, f.users[i % f.users.length]!, f.ws);
    client.onEvent((e) => {
      if (e.type === 'disconnected' || e.type === 'reconnected') log(`subscriber ${i} ${e.type}${e.type === 'disconnected' ? ` (${String((e as { code?: number }).code)} ${String((e as { reason?: string }).reason)})` : ''}`);
    });
    const m = new Map<string, number[]>();
    for (const ch of f.channels) {
      m.set(ch, []);
      await client.subscribe(f.ws, ch, (e) => {
        if (e.type === 'message') m.get(ch)!.push(e.seq!);
        else if (e.type === 'subscription_error') errors.count++;
      });
    }
    seen.push(m);
    clients.push(client);
  }
  return { seen, errors, clients, close: () => clients.forEach((x) => x.close()) };
}

/**
 * Chaos under load: posting clients on many channels and connected
 * subscribers, while a seeded scheduler kill -9s and restarts Chorus nodes,
 * kill -9s and restarts nats-servers, pauses nodes (SIGSTOP/SIGCONT) and,
 * where the machine allows network namespaces, cuts a node off the network
 * (one node runs inside a namespace; its veth goes down, then up).
 * Afterwards every write is accounted for: acknowledged = stored = delivered
 * to every subscriber, no duplicates, no gaps, single activation held.
 */
export async function runChaos(opts: { seconds: number; seed: number; log?: (s: string) => void; netns?: boolean }): Promise<ChaosFigures> {
  const log = opts.log ?? (() => {});
  const rnd = seededRandom(opts.seed);
  let ns: NetNs | undefined;
  if (opts.netns !== false) {
    const made = await createNetNs().catch((err: unknown) => (err instanceof NetNsUnavailable ? err : Promise.reject(err)));
    if (made instanceof NetNsUnavailable) log(`no network-namespace cuts: ${made.reason}`);
    else ns = made;
  }
  // with a namespace: the nats-servers take clients on the veth's host side, and one node runs inside
  const c = await startChorusCluster({ nodes: ns ? 2 : 3, natsServers: 3, ...(ns ? { natsHost: ns.hostIp } : {}) });
  const faults: Record<string, number> = {};
  const count = (k: string) => { faults[k] = (faults[k] ?? 0) + 1; };
  let f: ChatFixture | undefined;
  let subs: Awaited<ReturnType<typeof subscribers>> | undefined;
  let load: ReturnType<typeof startLoad> | undefined;
  let inside: NodeProc | undefined;
  try {
    f = await setupChat(c, { channels: 8, users: 4 });
    subs = await subscribers(c, f, 2, log);
    if (ns) {
      inside = await c.addNode('n3', {}, { prefix: ns.exec, host: ns.nsIp });
      await waitStable(c, 30_000);
    }
    // The watch skips a cut node (unreachable) and gives up on a poll after 1 s, so a reply held up by a cut cannot
    // come back later as a stale view that seems to overlap the new owner's.
    const watched: ChorusCluster = Object.create(c, {
      nodes: { get: () => (ns?.isCut ? c.nodes.filter((n) => n !== inside) : c.nodes) },
      admin: {
        value: <T>(node: NodeProc, path: string) => Promise.race([
          c.admin<T>(node, path),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('poll timed out')), 1000).unref()),
        ]),
      },
    });
    const watch = watchSingleActivation(watched);
    load = startLoad(f);
    const end = Date.now() + opts.seconds * 1000;
    let nextId = 10;
    let nth = 0;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 2500 + rnd() * 3500));
      if (Date.now() >= end) break;
      const running = c.nodes.filter((n) => n.running());
      // the first faults are one of each kind (node kill, nats-server kill, pause, network cut), so even a short run has them all
      const roll = nth < 4 ? [0.1, 0.4, 0.6, 0.9][nth]! : rnd();
      nth++;
      if (roll < 0.3 && running.length > 2) {
        const victim = running[Math.floor(rnd() * running.length)]!;
        log(`kill -9 node ${victim.id}`);
        victim.kill();
        await victim.exited();
        count('nodeKill');
        await new Promise((r) => setTimeout(r, 1500 + rnd() * 2000));
        const id = `n${nextId++}`;
        // the namespace keeps a node: the one replacing a killed namespace node starts inside it
        const intoNs = ns !== undefined && victim === inside;
        log(`start node ${id}${intoNs ? ' (in the namespace)' : ''}`);
        const started = await c.addNode(id, {}, intoNs ? { prefix: ns!.exec, host: ns!.nsIp } : undefined);
        if (intoNs) inside = started;
        count('nodeStart');
      } else if (roll >= 0.8 && ns && inside?.running()) {
        const ms = 1500 + Math.floor(rnd() * 3000);
        log(`cut node ${inside.id} off the network for ${ms} ms`);
        await ns.cut();
        count('netCut');
        await new Promise((r) => setTimeout(r, ms));
        await ns.heal();
        log(`heal node ${inside.id}`);
      } else if (roll < 0.5) {
        const s = c.nats.servers[Math.floor(rnd() * c.nats.servers.length)]!;
        log(`kill -9 nats ${s.name}`);
        s.kill();
        count('natsKill');
        await new Promise((r) => setTimeout(r, 2000 + rnd() * 3000));
        log(`restart nats ${s.name}`);
        await s.restart();
        count('natsRestart');
      } else if (running.length > 0) {
        const victim: NodeProc = running[Math.floor(rnd() * running.length)]!;
        const ms = 300 + Math.floor(rnd() * 2500);
        log(`pause node ${victim.id} for ${ms} ms`);
        victim.proc.kill('SIGSTOP');
        await new Promise((r) => setTimeout(r, ms));
        victim.proc.kill('SIGCONT');
        count('nodePause');
      }
    }
    await load.stop(60_000);
    await watch.stop();
    await waitStable(c, 60_000);
    // let subscribers catch up (gap fill, reconnect resume)
    const probe = await connectUser(c, 'owner', f.ws);
    const v = await verifyChannels(probe.client, f, load.acked);
    const deadline = Date.now() + 30_000;
    let delivered = 0, deliveryLost = 0, deliveryDuplicates = 0;
    let missing: ChaosFigures['missing'] = [];
    for (;;) {
      delivered = 0; deliveryLost = 0; deliveryDuplicates = 0;
      missing = [];
      subs.seen.forEach((m, sub) => {
        for (const ch of f!.channels) {
          const got = m.get(ch)!;
          const acked = load!.acked.filter((a) => a.ch === ch).map((a) => a.seq);
          const set = new Set(got);
          deliveryDuplicates += got.length - set.size;
          const miss = acked.filter((s) => !set.has(s)).sort((a, b) => a - b);
          delivered += acked.length - miss.length;
          deliveryLost += miss.length;
          if (miss.length) missing.push({ sub, ch, count: miss.length, first: miss[0]!, last: miss[miss.length - 1]! });
        }
      });
      if (deliveryLost === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    probe.client.close();
    if (deliveryLost) log(`subscribers connected at the end: ${subs.clients.map((x) => x.connected).join(', ')}`);
    return {
      seed: opts.seed, seconds: opts.seconds, faults, acked: load.acked.length, stored: v.stored, delivered, expectedDeliveries: load.acked.length * subs.seen.length,
      lost: v.lost, duplicates: v.duplicates, gaps: v.gaps, deliveryLost, deliveryDuplicates, doubleActivations: watch.violations.length, retriedErrors: Object.fromEntries(load.errors),
      subscriptionErrors: subs.errors.count, missing,
    };
  } finally {
    load?.abort();
    subs?.close();
    f?.close();
    if (ns?.isCut) await ns.heal().catch(() => {});
    await c.stop();
    await ns?.[Symbol.asyncDispose]();
  }
}
