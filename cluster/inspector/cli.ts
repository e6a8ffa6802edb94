/**
 * `chorus`: the cluster inspector. It reaches the admin operations
 * (cluster/admin) through either front door, with the same commands and the
 * same output:
 *
 * - `--nats nats://...` (or CHORUS_NATS_URL): a cluster, through NATS; any
 *   node answers cluster-wide questions, node-local ones go to the node;
 * - `--url http://...` (or CHORUS_URL, default http://127.0.0.1:8080): one
 *   node's authenticated /admin endpoints (an embedded node, or any node of a
 *   cluster: each knows the placement table and the members' URLs).
 *
 *   chorus nodes | ring | where <type/key> | actors [--node N] [--type T]
 *          streams | placement | drain <node> | rebalance --dry-run | scale --explain
 *          top [--iterations N] | costs
 *
 * Every command takes --json. --token (or CHORUS_ADMIN_TOKEN): an operator
 * token; a chat user's token is refused (AUTH_FORBIDDEN) by every node.
 */
import { parseArgs } from 'node:util';
import { HashRing, planBoundedLoad } from '../../runtime/index.ts';
import {
  HttpAdminChannel, InspectorError,
  type ActorsView, type AdminChannel, type CostsView, type DrainView, type PlacementView, type ScaleView, type StreamsView,
} from './admin-client.ts';
import { progressBar, table } from './format.ts';
import { NatsAdminChannel } from './nats-admin-client.ts';

const USAGE = `usage: chorus <command> [options]
commands:
  nodes                    members, state, load
  ring                     members, weights, virtual nodes, key share
  where <type/key>         owner, epoch, active or not
  actors [--node N] [--type T]
  streams                  durable log streams and consumers, with lag
  placement                placement table and its history (from the leader)
  drain <node>             hand every actor off, then the node exits (progress bar)
  rebalance --dry-run      what the bounded-load planner would move and why
  scale --explain          the current scale decision and forecast
  top [--iterations N]     live view of nodes (refreshes every second)
  costs                    right-sizing and storage-tier recommendations
options:
  --nats URLS              a cluster through NATS (or CHORUS_NATS_URL); comma-separated servers
  --url URL                one node's admin endpoints (or CHORUS_URL; default http://127.0.0.1:8080)
  --token TOKEN            operator token (or CHORUS_ADMIN_TOKEN)
  --json                   machine-readable output`;

interface Ctx { admin: AdminChannel; json: boolean; out: (s: string) => void; err: (s: string) => void }

async function placement(c: Ctx): Promise<PlacementView> {
  return c.admin.call<PlacementView>('placement');
}

/** Live actors of node `only` (which must answer), else of every member (a member that does not answer is left out). */
async function allActors(c: Ctx, p: PlacementView, only?: string): Promise<ActorsView[]> {
  if (only) return [await c.admin.call<ActorsView>('actors', { node: only })];
  const ids = p.members.length ? p.members.map((m) => m.id) : [p.node];
  const views = await Promise.all(ids.map((id) => c.admin.call<ActorsView>('actors', { node: id }).catch(() => undefined)));
  return views.filter((v): v is ActorsView => !!v);
}

const commands: Record<string, (c: Ctx, args: string[], opts: Record<string, unknown>) => Promise<unknown>> = {
  async nodes(c) {
    const p = await placement(c);
    const now = Date.now();
    // by id: the same order whichever node (or front door) answered
    const rows = [...p.members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((m) => ({
      node: m.id, leader: m.id === p.leader ? 'yes' : '', inTable: p.table.members.some((x) => x.id === m.id) ? 'yes' : 'no', state: m.state,
      region: m.region, weight: m.weight, seenMsAgo: now - m.lastSeen, actors: m.load.actors ?? 0, connections: m.load.connections ?? 0,
      msgPerSec: +(m.load.messagesPerSec ?? 0).toFixed(1), cpuPct: m.load.cpuPct ?? '', url: m.url ?? '',
    }));
    if (!c.json) c.out(table(rows));
    return { epoch: p.table.epoch, leader: p.leader, nodes: rows };
  },
  async ring(c) {
    const p = await placement(c);
    const ring = HashRing.fromSnapshot(p.table);
    const share = ring.keyShare();
    const rows = p.table.members.map((m) => ({ node: m.id, weight: m.weight, vnodes: ring.vnodeCount(m.id), keyShare: `${((share.get(m.id) ?? 0) * 100).toFixed(2)}%` }));
    if (!c.json) c.out(`epoch ${p.table.epoch}, ${Object.keys(p.table.overrides).length} overrides\n${table(rows)}`);
    return { epoch: p.table.epoch, members: rows, overrides: p.table.overrides };
  },
  async where(c, args) {
    const id = args[0];
    if (!id || !id.includes('/')) throw new InspectorError('usage: chorus where <type/key>, e.g. channel/w1.c9');
    const p = await placement(c);
    const owner = HashRing.fromSnapshot(p.table).owner(id);
    const view = owner ? await c.admin.call<ActorsView>('actors', { node: owner }).catch(() => undefined) : undefined;
    const r = { actor: id, owner: owner ?? null, epoch: p.table.epoch, active: view ? view.actors.includes(id) : null, override: p.table.overrides[id] ?? null };
    if (!c.json) c.out(`${id}: owner ${r.owner ?? '(none)'} at epoch ${r.epoch}, ${r.active === null ? 'activation unknown (owner unreachable)' : r.active ? 'active' : 'not active (activates on its next message)'}${r.override ? ` (override -> ${r.override})` : ''}`);
    return r;
  },
  async actors(c, _args, opts) {
    const p = await placement(c);
    const views = await allActors(c, p, typeof opts.node === 'string' ? opts.node : undefined);
    const rows = views.flatMap((v) => v.actors.filter((a) => !opts.type || a.startsWith(`${opts.type}/`)).map((a) => ({ node: v.node, actor: a })));
    if (!c.json) c.out(rows.length ? table(rows) : '(no live actors)');
    return { actors: rows };
  },
  async streams(c) {
    const r = await c.admin.call<StreamsView>('streams');
    const rows = r.streams.map((s) => ({ stream: s.name, messages: s.messages, bytes: s.bytes, replicas: s.replicas, consumers: s.consumers.length, maxLag: Math.max(0, ...s.consumers.map((x) => x.pending)) }));
    if (!c.json) c.out(rows.length ? table(rows) : '(no streams yet)');
    return r;
  },
  async placement(c) {
    const p = await placement(c);
    // the history is kept by the leader that made the changes: ask it
    const fromLeader = p.leader && p.leader !== p.node ? await c.admin.call<PlacementView>('placement', { node: p.leader }).catch(() => undefined) : undefined;
    const history = fromLeader?.history ?? p.history;
    if (!c.json) {
      c.out(`epoch ${p.table.epoch}, leader ${p.leader ?? '?'}: ${p.table.members.map((m) => `${m.id}(${m.weight})`).join(' ')}`);
      c.out(history.length ? table(history.map((h) => ({ epoch: h.epoch, at: new Date(h.at).toISOString(), by: h.by, reason: h.reason, members: h.members.map((m) => m.id).join(' ') }))) : '(no changes recorded by the current leader)');
    }
    return { table: p.table, history };
  },
  async drain(c, args) {
    const target = args[0];
    if (!target) throw new InspectorError('usage: chorus drain <node>');
    const p = await placement(c);
    if (!p.members.some((x) => x.id === target)) throw new InspectorError(`no live member ${target}`);
    const start = await c.admin.call<DrainView>('drain', { node: target });
    const total = Math.max(1, start.actors);
    // until the node has no actors left or is gone (it exits once drained)
    for (let i = 0; i < 600; i++) {
      const v = await c.admin.call<ActorsView>('actors', { node: target }).catch(() => undefined);
      const left = v ? v.actors.length : 0;
      if (!c.json) c.err(`\r${progressBar(1 - left / total)} ${left} actors left on ${target}   `);
      if (!v || left === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    if (!c.json) c.err('\n');
    if (!c.json) c.out(`${target} drained`);
    return { drained: target, actorsBefore: start.actors };
  },
  async rebalance(c, _args, opts) {
    if (!opts['dry-run']) throw new InspectorError('only `chorus rebalance --dry-run` is supported: the supervisor applies moves itself');
    const p = await placement(c);
    const views = await allActors(c, p);
    const loads = new Map<string, number>();
    for (const v of views) for (const a of v.actors) loads.set(a, 1);
    const ring = HashRing.fromSnapshot(p.table);
    const plan = planBoundedLoad(ring, loads, { currentOverrides: p.table.overrides });
    const rows = plan.moves.map((mv) => ({ actor: mv.key, from: mv.from, to: mv.to, load: mv.load }));
    if (!c.json) c.out(`${loads.size} live actors; max/avg after plan ${plan.maxOverAvg.toFixed(2)} (bound 1.25)\n${rows.length ? table(rows) : 'nothing to move: every node is within the bound'}`);
    return { actors: loads.size, moves: rows, maxOverAvg: plan.maxOverAvg };
  },
  async scale(c, _args, opts) {
    if (!opts.explain) throw new InspectorError('usage: chorus scale --explain');
    const p = await placement(c);
    // only the leader decides: its explanation is the current one
    const s = await c.admin.call<ScaleView>('scale', p.leader ? { node: p.leader } : {});
    const e = s.explanation as null | { target: number; reactive: { reason: string; current: number }; predictive?: { reason: string } };
    if (!c.json) c.out(e ? `current ${e.reactive.current}, target ${e.target}\n  rule:     ${e.reactive.reason}\n  forecast: ${e.predictive ? `${e.predictive.reason}` : 'no history yet'}` : 'no decision yet (the leader decides every 10 s)');
    return s;
  },
  async top(c, _args, opts) {
    const n = Number(opts.iterations ?? 10);
    let last: unknown;
    for (let i = 0; i < n; i++) {
      const saved = c.out;
      let buf = '';
      c.out = (s) => (buf += s + '\n');
      last = await commands.nodes!(c, [], opts);
      c.out = saved;
      if (!c.json) c.out(`\x1b[2J\x1b[H chorus top  ${new Date().toISOString()}  (${i + 1}/${n})\n${buf}`);
      if (i + 1 < n) await new Promise((r) => setTimeout(r, 1000));
    }
    return last;
  },
  async costs(c) {
    const r = await c.admin.call<CostsView>('costs');
    if (!c.json) {
      c.out(`compute (right-sizing from measured utilisation):\n${r.recommendations.length ? table(r.recommendations.map((x) => ({ ...x }))) : '  no recommendation: utilisation is within bounds'}`);
      const st = r.storage;
      if (!st.configured) c.out('storage tiering: not configured (no tiering plan is wired into this node)');
      else if ('error' in st) c.out(`storage tiering: the tiering plan failed: ${st.error}`);
      else {
        const rows = st.recommendations.map((x) => ({ target: x.target, currentTier: x.currentTier, recommendedTier: x.recommendedTier, objects: x.objects ?? '', bytes: x.bytes ?? '', monthlySavings: x.monthlySavings ?? '', why: x.why }));
        c.out(`storage tiering (${st.store}${st.objects !== undefined ? `, ${st.objects} objects` : ''}${st.bytes !== undefined ? `, ${st.bytes} bytes` : ''}):\n${rows.length ? table(rows) : '  no recommendation: every object is in the right tier'}`);
      }
    }
    return r;
  },
};

/**
 * Where the CLI talks to: --nats or --url, else CHORUS_NATS_URL or CHORUS_URL,
 * else http://127.0.0.1:8080. Both of a pair is a usage error (which one was meant?).
 */
export function chooseTarget(flags: { url?: string | undefined; nats?: string | undefined }, env: Record<string, string | undefined>): { kind: 'http' | 'nats'; target: string } | { error: string } {
  if (flags.url && flags.nats) return { error: 'give --url or --nats, not both' };
  if (flags.nats) return { kind: 'nats', target: flags.nats };
  if (flags.url) return { kind: 'http', target: flags.url };
  if (env.CHORUS_URL && env.CHORUS_NATS_URL) return { error: 'both CHORUS_URL and CHORUS_NATS_URL are set: pass --url or --nats' };
  if (env.CHORUS_NATS_URL) return { kind: 'nats', target: env.CHORUS_NATS_URL };
  return { kind: 'http', target: env.CHORUS_URL ?? 'http://127.0.0.1:8080' };
}

/**
 * Runs the CLI with `argv` (without node and script); returns the exit code:
 * 0 done, 1 the command failed (unreachable, refused, not found), 2 usage.
 * `out` gets result lines, `err` progress and error text (default stdout and stderr).
 */
export async function main(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s + '\n'),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: {
      url: { type: 'string' }, nats: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' }, node: { type: 'string' }, type: { type: 'string' },
      'dry-run': { type: 'boolean' }, explain: { type: 'boolean' }, iterations: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    } });
  } catch (e) {
    err(`chorus: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const [cmd, ...rest] = parsed.positionals;
  if (!cmd || parsed.values.help) {
    out(USAGE);
    return cmd ? 0 : 2;
  }
  const fn = commands[cmd];
  if (!fn) {
    err(`chorus: unknown command ${cmd}\n${USAGE}\n`);
    return 2;
  }
  const token = parsed.values.token ?? process.env.CHORUS_ADMIN_TOKEN;
  if (!token) {
    err('chorus: an operator token is required (--token or CHORUS_ADMIN_TOKEN)\n');
    return 2;
  }
  const target = chooseTarget(parsed.values, process.env);
  if ('error' in target) {
    err(`chorus: ${target.error}\n`);
    return 2;
  }
  let admin: AdminChannel | undefined;
  try {
    admin = target.kind === 'nats' ? await NatsAdminChannel.connect(target.target, token) : new HttpAdminChannel(target.target, token);
    const ctx: Ctx = { admin, json: !!parsed.values.json, out, err };
    const result = await fn(ctx, rest, parsed.values as Record<string, unknown>);
    if (ctx.json) out(JSON.stringify(result));
    return 0;
  } catch (e) {
    err(`chorus ${cmd}: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await admin?.close();
  }
}
