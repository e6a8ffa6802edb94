/**
 * `chorus`: the cluster inspector. Talks to any node's authenticated admin
 * endpoints (an embedded node, or any node of a cluster: each knows the
 * placement table and the members' URLs). Every command takes --json.
 *
 *   chorus nodes | ring | where <type/key> | actors [--node N] [--type T]
 *          streams | placement | drain <node> | rebalance --dry-run | scale --explain
 *          top [--iterations N] | costs
 *
 * Settings: --url (or CHORUS_URL, default http://127.0.0.1:8080) and
 * --token (or CHORUS_ADMIN_TOKEN): an operator token; a chat user's token is refused.
 */
import { parseArgs } from 'node:util';
import { HashRing, planBoundedLoad } from '../../runtime/index.ts';
import { AdminClient, InspectorError, type ActorsView, type PlacementView } from './admin-client.ts';
import { progressBar, table } from './format.ts';

const USAGE = `usage: chorus <command> [options]
commands:
  nodes                    members, state, load
  ring                     members, weights, virtual nodes, key share
  where <type/key>         owner, epoch, active or not
  actors [--node N] [--type T]
  streams                  durable log streams and consumers, with lag
  placement                placement table and its history
  drain <node>             hand every actor off, then the node exits (progress bar)
  rebalance --dry-run      what the bounded-load planner would move and why
  scale --explain          the current scale decision and forecast
  top [--iterations N]     live view of nodes (refreshes every second)
  costs                    right-sizing recommendations from measured utilisation
options: --url URL  --token TOKEN  --json`;

interface Ctx { admin: AdminClient; json: boolean; out: (s: string) => void }

async function placement(c: Ctx): Promise<PlacementView> {
  return c.admin.get<PlacementView>('/admin/placement');
}

async function allActors(c: Ctx, p: PlacementView): Promise<ActorsView[]> {
  const urls = p.members.filter((m) => m.url).map((m) => m.url!);
  if (!urls.length) urls.push(c.admin.baseUrl);
  const views = await Promise.all(urls.map((u) => c.admin.get<ActorsView>('/admin/actors', u).catch(() => undefined)));
  return views.filter((v): v is ActorsView => !!v);
}

const commands: Record<string, (c: Ctx, args: string[], opts: Record<string, unknown>) => Promise<unknown>> = {
  async nodes(c) {
    const p = await placement(c);
    const now = Date.now();
    const rows = p.members.map((m) => ({
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
    const url = p.members.find((m) => m.id === owner)?.url;
    const view = url ? await c.admin.get<ActorsView>('/admin/actors', url).catch(() => undefined) : undefined;
    const r = { actor: id, owner: owner ?? null, epoch: p.table.epoch, active: view ? view.actors.includes(id) : null, override: p.table.overrides[id] ?? null };
    if (!c.json) c.out(`${id}: owner ${r.owner ?? '(none)'} at epoch ${r.epoch}, ${r.active === null ? 'activation unknown (owner unreachable)' : r.active ? 'active' : 'not active (activates on its next message)'}${r.override ? ` (override -> ${r.override})` : ''}`);
    return r;
  },
  async actors(c, _args, opts) {
    const p = await placement(c);
    const views = await allActors(c, p);
    const rows = views.filter((v) => !opts.node || v.node === opts.node).flatMap((v) => v.actors.filter((a) => !opts.type || a.startsWith(`${opts.type}/`)).map((a) => ({ node: v.node, actor: a })));
    if (!c.json) c.out(rows.length ? table(rows) : '(no live actors)');
    return { actors: rows };
  },
  async streams(c) {
    const r = await c.admin.get<{ streams: Array<{ name: string; messages: number; bytes: number; replicas: number; consumers: Array<{ name: string; pending: number; ackPending: number }> }> }>('/admin/streams');
    const rows = r.streams.map((s) => ({ stream: s.name, messages: s.messages, bytes: s.bytes, replicas: s.replicas, consumers: s.consumers.length, maxLag: Math.max(0, ...s.consumers.map((x) => x.pending)) }));
    if (!c.json) c.out(rows.length ? table(rows) : '(no streams yet)');
    return r;
  },
  async placement(c) {
    const p = await placement(c);
    if (!c.json) {
      c.out(`epoch ${p.table.epoch}, leader ${p.leader ?? '?'}: ${p.table.members.map((m) => `${m.id}(${m.weight})`).join(' ')}`);
      c.out(p.history.length ? table(p.history.map((h) => ({ epoch: h.epoch, at: new Date(h.at).toISOString(), by: h.by, reason: h.reason, members: h.members.map((m) => m.id).join(' ') }))) : '(history is kept by the leader that made the changes; ask the leader with --url)');
    }
    return { table: p.table, history: p.history };
  },
  async drain(c, args) {
    const target = args[0];
    if (!target) throw new InspectorError('usage: chorus drain <node>');
    const p = await placement(c);
    const m = p.members.find((x) => x.id === target);
    if (!m?.url) throw new InspectorError(`no live member ${target} with a URL`);
    const start = await c.admin.post<{ actors: number }>('/admin/drain', m.url);
    const total = Math.max(1, start.actors);
    for (let i = 0; i < 600; i++) {
      const v = await c.admin.get<ActorsView>('/admin/actors', m.url).catch(() => undefined);
      const left = v ? v.actors.length : 0;
      if (!c.json) process.stderr.write(`\r${progressBar(1 - left / total)} ${left} actors left on ${target}   `);
      if (!v || left === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    if (!c.json) process.stderr.write('\n');
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
    const leaderUrl = p.members.find((m) => m.id === p.leader)?.url ?? c.admin.baseUrl;
    const s = await c.admin.get<{ explanation: null | { target: number; reactive: { reason: string; current: number; needed: unknown }; predictive?: { reason: string; peak: { value: number; confidence: number } } } }>('/admin/scale', leaderUrl);
    const e = s.explanation;
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
    const p = await placement(c);
    const recs: Array<Record<string, unknown>> = [];
    for (const m of p.members) {
      const cpu = m.load.cpuPct;
      if (typeof cpu === 'number' && cpu < 30) recs.push({ type: 'downsize', node: m.id, cpuPct: cpu, why: 'average CPU under 30% (the seed\'s right-sizing rule)', estimatedSavings: '~40% of its cost' });
    }
    const total = p.members.reduce((s, m) => s + (m.load.connections ?? 0), 0);
    if (p.members.length > 1 && total < 0.3 * 50_000 * p.members.length) recs.push({ type: 'fewer-nodes', nodes: p.members.length, connections: total, why: 'connections under 30% of the fleet\'s capacity' });
    if (!c.json) c.out(recs.length ? table(recs) : 'no recommendation: utilisation is within bounds (storage tiering needs the file store)');
    return { recommendations: recs };
  },
};

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n')): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: {
      url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' }, node: { type: 'string' }, type: { type: 'string' },
      'dry-run': { type: 'boolean' }, explain: { type: 'boolean' }, iterations: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    } });
  } catch (err) {
    process.stderr.write(`chorus: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const [cmd, ...rest] = parsed.positionals;
  if (!cmd || parsed.values.help) {
    out(USAGE);
    return cmd ? 0 : 2;
  }
  const fn = commands[cmd];
  if (!fn) {
    process.stderr.write(`chorus: unknown command ${cmd}\n${USAGE}\n`);
    return 2;
  }
  const token = parsed.values.token ?? process.env.CHORUS_ADMIN_TOKEN;
  if (!token) {
    process.stderr.write('chorus: an operator token is required (--token or CHORUS_ADMIN_TOKEN)\n');
    return 2;
  }
  const ctx: Ctx = { admin: new AdminClient(parsed.values.url ?? process.env.CHORUS_URL ?? 'http://127.0.0.1:8080', token), json: !!parsed.values.json, out };
  try {
    const result = await fn(ctx, rest, parsed.values as Record<string, unknown>);
    if (ctx.json) out(JSON.stringify(result));
    return 0;
  } catch (err) {
    process.stderr.write(`chorus ${cmd}: ${(err as Error).message}\n`);
    return 1;
  }
}
