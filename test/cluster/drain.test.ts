/**
 * Draining nodes under load (POST /admin/drain with the operator token),
 * first the supervisor leader, then another node: each one's actors move to
 * the others before it exits, the process exits 0, the table excludes it,
 * clients see nothing but retried asks, and everything acked is stored once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChorusCluster, waitStable, type ChorusCluster, type NodeProc } from '../helpers/chorus-cluster.ts';
import { waitFor } from '../helpers/ports.ts';
import { actorLocations, connectUser, setupChat, startLoad, verifyChannels, watchSingleActivation, type Acked } from './load.ts';

/** What a client may see while a node drains: asks redirected or timed out, then retried with the same clientMsgId. */
const RETRIED = new Set(['CLIENT_TIMEOUT', 'CHORUS_ASK_TIMEOUT', 'CHORUS_NODE_UNAVAILABLE', 'CHORUS_NOT_OWNER', 'CHORUS_NO_OWNER']);

/** Drains `victim` and watches its /admin/actors as closely as it can until the process is gone. */
async function drain(c: ChorusCluster, victim: NodeProc, acked: readonly Acked[]) {
  const where = await actorLocations(c);
  const hosted = [...where].filter(([, n]) => n === victim.id).map(([a]) => a);
  const wasLeader = (await c.admin<{ leader?: string }>(victim, '/admin/placement')).leader === victim.id;
  const counts: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling && victim.running()) {
      const r = await c.admin<{ actors: string[] }>(victim, '/admin/actors').catch(() => undefined);
      if (r) counts.push(r.actors.length);
      await new Promise((res) => setTimeout(res, 5));
    }
  })();
  const at = Date.now();
  const accepted = await c.admin<{ draining: string; actors: number }>(victim, '/admin/drain', 'POST');
  assert.equal(accepted.draining, victim.id);
  await waitFor(() => !victim.running(), { timeoutMs: 40_000, intervalMs: 20, what: `${victim.id} to exit after the drain` });
  const drainMs = Date.now() - at;
  polling = false;
  await poller;
  assert.equal(victim.proc.exitCode, 0, `the drained process exits 0 (signal ${victim.proc.signalCode})\n${victim.output.slice(-20).join('\n')}`);
  assert.ok(counts.length > 0, 'its /admin/actors answered during the drain');
  assert.equal(counts.at(-1), 0, `its last /admin/actors answer before exiting listed no actors (counts: ${counts.slice(-10).join(',')})`);
  // the others keep taking posts
  await waitFor(() => acked.filter((a) => a.at > at + drainMs).length >= 30, { timeoutMs: 30_000, what: `acks after draining ${victim.id}` });
  await waitStable(c, 30_000);
  const table = (await c.admin<{ table: { members: Array<{ id: string }> } }>(c.nodes.find((n) => n.running())!, '/admin/placement')).table;
  assert.ok(!table.members.some((m) => m.id === victim.id), `the table excludes the drained ${victim.id}`);
  return { drained: victim.id, wasLeader, hostedActors: hosted.length, hosted, drainMs, actorCounts: counts.filter((n, i) => i === 0 || counts[i - 1] !== n) };
}

test('drain the leader, then another node, under load: actors move before each exits 0, clients only retry, nothing acked is lost (G14)', async (t) => {
  const c = await startChorusCluster({ nodes: 3, natsServers: 3 });
  const undo: Array<() => unknown> = [];
  try {
    const f = await setupChat(c, { channels: 18, users: 6 });
    undo.push(() => f.close());
    const watch = watchSingleActivation(c, 50);
    undo.push(() => watch.stop());
    const load = startLoad(f);
    undo.push(() => load.abort());
    await waitFor(() => load.acked.length >= 60, { timeoutMs: 30_000, what: 'the load to get going' });

    // first the supervisor leader (it publishes the table without itself, then hands its lease over)
    const leaderId = (await c.admin<{ leader?: string }>(c.nodes[0]!, '/admin/placement')).leader;
    const first = await drain(c, c.nodes.find((n) => n.id === leaderId)!, load.acked);
    assert.ok(first.wasLeader, 'the first drained node was the leader');
    // then the node hosting the most actors, under a leader that took over
    const where = await actorLocations(c);
    const count = (id: string) => [...where.values()].filter((n) => n === id).length;
    const second = await drain(c, c.nodes.filter((n) => n.running()).sort((a, b) => count(b.id) - count(a.id))[0]!, load.acked);

    await load.stop();
    await watch.stop();
    const reader = await connectUser(c, 'owner', f.ws);
    undo.push(() => reader.client.close());
    const v = await verifyChannels(reader.client, f, load.acked); // reads (so activates) every channel
    const after = await actorLocations(c);
    for (const a of [...first.hosted, ...second.hosted].filter((x) => x.startsWith('channel/'))) assert.ok(after.has(a), `${a} lives on the remaining node now`);
    const figures = {
      drains: [first, second].map(({ hosted: _, ...d }) => d), ackedWrites: load.acked.length,
      ...v, errors: Object.fromEntries(load.errors), doubleActivations: watch.violations, sweeps: watch.sweeps,
    };
    t.diagnostic(JSON.stringify(figures));
    assert.ok(first.hostedActors + second.hostedActors > 0, 'the drained nodes hosted actors');
    assert.equal(v.lost, 0, 'no acknowledged post lost');
    assert.equal(v.duplicates, 0, 'no post stored twice');
    assert.equal(v.gaps, 0, 'every channel seq is gapless');
    assert.equal(v.stored, load.acked.length, 'everything stored was acknowledged');
    assert.deepEqual(watch.violations, [], 'no actor live on two nodes');
    const unexpected = Object.keys(figures.errors).filter((code) => !RETRIED.has(code));
    assert.deepEqual(unexpected, [], `clients saw only retried asks: ${JSON.stringify(figures.errors)}`);
  } finally {
    for (const fn of undo.reverse()) await Promise.resolve().then(fn).catch(() => {});
    await c.stop();
  }
});
