/**
 * A paused node (SIGSTOP, as a long GC pause or a frozen VM would) under
 * load on a 3-node cluster: paused past the failure timeout (2 s), its
 * actors move to the others; woken (SIGCONT), it has fenced itself and
 * refuses the work it lost, so nothing acknowledged is lost, nothing is
 * stored twice, seqs stay gapless and no actor is live on two nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChorusCluster, waitStable } from '../helpers/chorus-cluster.ts';
import { waitFor } from '../helpers/ports.ts';
import { connectUser, setupChat, startLoad, verifyChannels, watchSingleActivation } from '../cluster/load.ts';

const PAUSE_MS = 3000;

test('G9 SIGSTOP a Chorus node for 3 s under load, then SIGCONT: nothing acked is lost or stored twice, seqs stay gapless, single activation holds', { timeout: 120_000 }, async (t) => {
  await using c = await startChorusCluster({ nodes: 3, natsServers: 1 });
  const f = await setupChat(c, { channels: 12, users: 4 });
  const watch = watchSingleActivation(c);
  const load = startLoad(f);
  try {
    await waitFor(() => load.acked.length >= 30, { timeoutMs: 30_000, what: '30 acknowledged posts' });
    const hosts = await Promise.all(c.nodes.map(async (n) => ({ n, count: (await c.admin<{ actors: string[] }>(n, '/admin/actors')).actors.filter((a) => a.startsWith('channel/')).length })));
    const victim = hosts.sort((a, b) => b.count - a.count)[0]!.n;
    const pausedAt = Date.now();
    victim.proc.kill('SIGSTOP');
    let resumed = false;
    try {
      // the others take the victim's actors over while it sleeps: acks go on during the pause
      await waitFor(() => load.acked.filter((a) => a.at > pausedAt + 2500).length >= 10 || Date.now() - pausedAt >= PAUSE_MS + 20_000, { timeoutMs: 30_000, what: 'acks during the pause' });
      await waitFor(() => Date.now() - pausedAt >= PAUSE_MS, { what: 'the pause to last' });
    } finally {
      victim.proc.kill('SIGCONT');
      resumed = true;
    }
    const wokeAt = Date.now();
    await waitStable(c, 30_000);
    await waitFor(() => load.acked.filter((a) => a.at > wokeAt).length >= 30, { timeoutMs: 30_000, what: 'acks after the wake-up' });
    await load.stop();
    await watch.stop();
    const probe = await connectUser(c, 'owner', f.ws);
    const v = await verifyChannels(probe.client, f, load.acked);
    probe.client.close();
    const duringPause = load.acked.filter((a) => a.at > pausedAt && a.at < wokeAt).length;
    t.diagnostic(JSON.stringify({ victim: victim.id, resumed, pausedMs: wokeAt - pausedAt, acked: load.acked.length, duringPause, ...v, doubleActivations: watch.violations.length, sweeps: watch.sweeps, errors: Object.fromEntries(load.errors) }));
    assert.ok(duringPause > 0, 'posts were acknowledged while the victim was paused');
    assert.equal(v.lost, 0, 'no acknowledged post lost');
    assert.equal(v.duplicates, 0, 'no post stored twice');
    assert.equal(v.gaps, 0, 'every channel seq is gapless');
    assert.deepEqual(watch.violations, [], 'no actor live on two nodes');
  } finally {
    load.abort();
    await watch.stop();
    await f.close();
  }
});
