import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEventLog, MemoryLogServer, MemoryNetwork, MemorySnapshotStore, MemoryMetrics } from '../../adapters/memory/index.ts';
import { ActorNode, EventSourcedActor, ChorusError, type ActorType, type MessageMeta } from '../../runtime/index.ts';

class Counter extends EventSourcedActor<{ n: number; seen: string[] }, { add: number; by?: string }> {
  protected initialState() { return { n: 0, seen: [] }; }
  protected apply(s: { n: number; seen: string[] }, e: { add: number; by?: string }) { s.n += e.add; if (e.by) s.seen.push(e.by); return s; }
  protected async handle(msg: any, _meta: MessageMeta) {
    switch (msg.op) {
      case 'add': await this.persist([{ add: msg.by, by: msg.from }], msg.id); return this.state.n;
      case 'get': return this.state.n;
      case 'slow': await new Promise((r) => setTimeout(r, msg.ms)); this.state.seen.push(msg.tag); return this.state.seen.slice();
      case 'seen': return this.state.seen.slice();
      case 'boom': throw new Error('kaboom');
      case 'deny': throw new ChorusError('FORBIDDEN', 'not a member');
      default: throw new ChorusError('CHORUS_BAD_MESSAGE', `unknown op ${msg.op}`);
    }
  }
}
const counterType: ActorType = { name: 'counter', create: () => new Counter() };

function single(opts: { idleTimeoutMs?: number } = {}) {
  const net = new MemoryNetwork();
  const server = new MemoryLogServer();
  const metrics = new MemoryMetrics();
  const node = new ActorNode({
    nodeId: 'n1', transport: net.transport('n1'), log: new MemoryEventLog(server), snapshots: new MemorySnapshotStore(server),
    types: [counterType], metrics, strictSerialization: true, ...opts,
  });
  node.setTable({ epoch: 1, members: [{ id: 'n1', weight: 1 }], overrides: {} });
  return { node, server, metrics };
}

describe('ActorNode on one node', () => {
  test('a ref activates nothing until a message arrives', async () => {
    const { node } = single();
    await node.start();
    const ref = node.ref('counter', 'a');
    assert.equal(node.activeCount(), 0);
    assert.equal(await ref.ask({ op: 'add', by: 2 }), 2);
    assert.equal(node.activeCount(), 1);
    await node.stop();
  });

  test('turns do not interleave: a slow turn finishes before the next starts', async () => {
    const { node } = single();
    await node.start();
    const ref = node.ref('counter', 'b');
    const [a, b] = await Promise.all([ref.ask({ op: 'slow', ms: 20, tag: 'first' }), ref.ask({ op: 'slow', ms: 1, tag: 'second' })]);
    assert.deepEqual(a, ['first']);
    assert.deepEqual(b, ['first', 'second']);
    await node.stop();
  });

  test('a throwing turn answers with a typed error and the actor keeps working', async () => {
    const { node, metrics } = single();
    await node.start();
    const ref = node.ref('counter', 'c');
    await assert.rejects(ref.ask({ op: 'boom' }), (e: ChorusError) => e.code === 'CHORUS_ACTOR_FAILED' && /kaboom/.test(e.message));
    await assert.rejects(ref.ask({ op: 'deny' }), (e: ChorusError) => e.code === 'FORBIDDEN');
    assert.equal(await ref.ask({ op: 'add', by: 1 }), 1);
    assert.equal(metrics.value('chorus_actor_turn_failures_total', { type: 'counter', code: 'CHORUS_ACTOR_FAILED' }), 1);
    await node.stop();
  });

  test('state survives passivation and a dedup id is applied once', async () => {
    const { node } = single({ idleTimeoutMs: 40 });
    await node.start();
    const ref = node.ref('counter', 'd');
    await ref.ask({ op: 'add', by: 5, id: 'm1' });
    await ref.ask({ op: 'add', by: 5, id: 'm1' });
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(node.activeCount(), 0, 'idle actor was passivated');
    assert.equal(await ref.ask({ op: 'get' }), 5);
    await node.stop();
  });

  test('unknown type and unencodable message are typed errors', async () => {
    const { node } = single();
    await node.start();
    assert.throws(() => node.ref('nope', 'x'), (e: ChorusError) => e.code === 'CHORUS_UNKNOWN_ACTOR_TYPE');
    await assert.rejects(node.ref('counter', 'e').ask({ op: 'get', s: Symbol('x') }), (e: ChorusError) => e.code === 'CHORUS_BAD_MESSAGE');
    await node.stop();
  });
});

describe('EventSourcedActor snapshots', () => {
  test('a growing state is snapshotted less often (about constant snapshot bytes per record), and reactivation from the snapshot replays the rest', async () => {
    const { node, server } = single();
    const saves: Array<{ pos: number; bytes: number }> = [];
    const orig = server.snapshots.set.bind(server.snapshots);
    server.snapshots.set = (k: string, v: { pos: number; data: Uint8Array }) => { if (k === 'counter.big') saves.push({ pos: v.pos, bytes: v.data.byteLength }); return orig(k, v); };
    const ref = node.ref('counter', 'big');
    const who = 'x'.repeat(200); // each record adds about 200 bytes of state
    for (let i = 1; i <= 3000; i++) await ref.ask({ op: 'add', by: 1, from: `${who}${i}`, id: `a${i}` });
    // fixed every-100 would have saved 30 snapshots; the adaptive interval grows with the state
    assert.ok(saves.length >= 4 && saves.length <= 15, `snapshots: ${JSON.stringify(saves.map((s) => s.pos))}`);
    for (let i = 1; i < saves.length; i++) {
      const gap = saves[i]!.pos - saves[i - 1]!.pos;
      assert.ok(gap >= 100 && gap >= Math.ceil(saves[i - 1]!.bytes / 1024) - 1, `gap ${gap} after a ${saves[i - 1]!.bytes}-byte snapshot`);
    }
    const written = saves.reduce((a, s) => a + s.bytes, 0);
    const finalBytes = saves[saves.length - 1]!.bytes;
    assert.ok(written < 8 * finalBytes, `snapshot bytes written ${written} stay a small multiple of the state (${finalBytes}), not quadratic`);
    await node.stop(); // persists a last snapshot
    const again = single();
    for (const [k, v] of server.snapshots) again.server.snapshots.set(k, v);
    for (const [k, v] of server.streams) again.server.streams.set(k, v);
    assert.equal(await again.node.ref('counter', 'big').ask({ op: 'get' }), 3000);
    await again.node.stop();
  });
});

describe('ActorNode handoff', () => {
  test('an activation waiting for the previous owner to release is pending, not live: only one node ever lists the actor as active', async () => {
    const net = new MemoryNetwork();
    const server = new MemoryLogServer();
    const mk = (id: string) => new ActorNode({
      nodeId: id, transport: net.transport(id), log: new MemoryEventLog(server), snapshots: new MemorySnapshotStore(server),
      types: [counterType], strictSerialization: true, isDraining: (n) => n === 'n1',
    });
    const n1 = mk('n1');
    const n2 = mk('n2');
    await n1.start();
    await n2.start();
    const t1 = { epoch: 1, members: [{ id: 'n1', weight: 1 }], overrides: {} };
    n1.setTable(t1);
    await n1.ref('counter', 'a').ask({ op: 'add', by: 1 });
    // n1 is busy with a slow turn when it drains; n2 gets the new table first (n1 lags behind)
    const slow = n1.ref('counter', 'a').ask({ op: 'slow', ms: 300, tag: 'x' });
    n2.setTable({ epoch: 2, members: [{ id: 'n2', weight: 1 }], overrides: {}, prev: t1 });
    const moved = n2.ref('counter', 'a').ask({ op: 'get' });
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(n1.activeKeys(), ['counter/a'], 'the previous owner still runs the actor (finishing its turn)');
    assert.deepEqual(n2.activeKeys(), [], 'the new owner does not list an activation that waits for the release');
    assert.deepEqual(n2.pendingKeys(), ['counter/a']);
    await slow;
    assert.equal(await moved, 1, 'the new owner loads the state the old one persisted');
    assert.deepEqual(n1.activeKeys(), []);
    assert.deepEqual(n2.activeKeys(), ['counter/a']);
    assert.deepEqual(n2.pendingKeys(), []);
    await n2.stop();
    await n1.stop();
  });
});
