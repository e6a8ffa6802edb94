/**
 * kill -9 the placement supervisor's leader: another node takes the lease
 * over within about the lease time, publishes the table without the dead
 * node, and still publishes later membership changes (a node added).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChorusCluster, waitStable, type ChorusCluster, type NodeProc } from '../helpers/chorus-cluster.ts';
import { waitFor } from '../helpers/ports.ts';

interface PlacementView {
  node: string;
  leader?: string;
  table: { epoch: number; members: Array<{ id: string }> };
  history: Array<{ epoch: number; by: string; reason: string }>;
}

const view = (c: ChorusCluster, n: NodeProc) => c.admin<PlacementView>(n, '/admin/placement');

/** The leader every running node agrees on, or undefined while they disagree. */
async function agreedLeader(c: ChorusCluster): Promise<string | undefined> {
  const views = await Promise.all(c.nodes.filter((n) => n.running()).map((n) => view(c, n)));
  const leaders = new Set(views.map((v) => v.leader));
  return leaders.size === 1 ? views[0]!.leader : undefined;
}

test('kill -9 the supervisor leader: another node takes over within the lease, and later changes are still published (G15)', async (t) => {
  const c = await startChorusCluster({ nodes: 3, natsServers: 3 });
  try {
    const leaderId = await waitFor(() => agreedLeader(c), { timeoutMs: 15_000, what: 'one leader' });
    const leader = c.nodes.find((n) => n.id === leaderId)!;
    assert.ok(leader, `the leader ${leaderId} is one of our nodes`);
    const epochBefore = (await view(c, leader)).table.epoch;

    const killedAt = Date.now();
    leader.kill();
    await leader.exited();
    const newLeader = await waitFor(async () => {
      const l = await agreedLeader(c);
      return l && l !== leaderId ? l : undefined;
    }, { timeoutMs: 20_000, intervalMs: 25, what: 'a new leader' });
    const takeoverMs = Date.now() - killedAt;
    assert.ok(c.nodes.some((n) => n.id === newLeader && n.running()), `the new leader ${newLeader} is a live node`);

    // the new leader publishes the table without the dead node
    const epochAfterCrash = await waitStable(c, 30_000);
    const removedMs = Date.now() - killedAt;
    assert.ok(epochAfterCrash > epochBefore, 'a new table was published');
    const survivor = c.nodes.find((n) => n.id === newLeader)!;
    const hist = (await view(c, survivor)).history;
    assert.ok(hist.some((h) => h.by === newLeader && h.reason.includes(`crash ${leaderId}`)), `the new leader recorded the crash: ${JSON.stringify(hist)}`);

    // a later membership change is still published
    const joinAt = Date.now();
    const n4 = await c.addNode('n4');
    const epochAfterJoin = await waitStable(c, 30_000);
    const joinMs = Date.now() - joinAt;
    const v = await view(c, n4);
    assert.ok(epochAfterJoin > epochAfterCrash, 'the join was published as a newer table');
    assert.deepEqual(v.table.members.map((m) => m.id).sort(), c.nodes.filter((n) => n.running()).map((n) => n.id).sort());
    const hist2 = (await view(c, survivor)).history;
    const joinedBy = hist2.find((h) => h.reason.includes('join n4'))?.by ?? (await agreedLeader(c));
    t.diagnostic(JSON.stringify({ killedLeader: leaderId, newLeader, takeoverMs, removedMs, joinMs, epochBefore, epochAfterCrash, epochAfterJoin, joinPublishedBy: joinedBy }));
    assert.ok(takeoverMs < 5000, `takeover took ${takeoverMs} ms (lease 1500 ms)`);
  } finally {
    await c.stop();
  }
});
