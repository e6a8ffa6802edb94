/**
 * A node joins a running cluster: only the actors the ring gives to the new
 * node move (about 1/4 with 3 -> 4 equal members), none moves between the
 * old nodes, and nothing is lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HashRing, type PlacementTable } from '../../runtime/placement/index.ts';
import { startChorusCluster, waitStable, type ChorusCluster } from '../helpers/chorus-cluster.ts';
import type { ChorusClient } from '../../client/sdk.ts';
import { actorLocations, connectUser, readAll, requestRetrying } from './load.ts';

async function table(c: ChorusCluster): Promise<PlacementTable> {
  const running = c.nodes.filter((n) => n.running());
  return (await c.admin<{ table: PlacementTable }>(running[0]!, '/admin/placement')).table;
}

/** Runs `fn` over `items` with at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

test('a 4th node joins: about a quarter of the actors move, all of them to it, and none is lost', async (t) => {
  const c = await startChorusCluster({ nodes: 3, natsServers: 3 });
  const clients: Array<{ close(): void }> = [];
  try {
    const ws = 'w1';
    const USERS = 40;
    const CHANNELS_PER_USER = 4;
    const started = Date.now();
    // ~200 actors: 1 workspace, 41 users, 160 channels with one post each.
    // The work is spread over one connection per user, each well under the edge's frame burst.
    const owner = await connectUser(c, 'owner', ws);
    clients.push(owner.client);
    await requestRetrying(owner.client, 'createWorkspace', { ws, name: 'Join', clientMsgId: 'create' });
    const users = Array.from({ length: USERS }, (_, i) => `u${i}`);
    const codes = new Map<string, string>();
    for (const u of users) codes.set(u, (await requestRetrying<{ code: string }>(owner.client, 'createInvite', { ws, role: 'member', clientMsgId: `inv-${u}` })).code);
    const posts = new Map<string, { cmid: string; by: string }>(); // channel -> its post
    const userClients = new Map<string, ChorusClient>([['owner', owner.client]]);
    await pool(users, 6, async (u) => {
      const { client } = await connectUser(c, u, ws);
      clients.push(client);
      userClients.set(u, client);
      await requestRetrying(client, 'joinWorkspace', { ws, code: codes.get(u), clientMsgId: 'join' });
      for (let k = 0; k < CHANNELS_PER_USER; k++) {
        const { ch } = await requestRetrying<{ ch: string }>(client, 'createChannel', { ws, name: `${u}-c${k}`, kind: 'public', clientMsgId: `ch-${k}` });
        const cmid = `post-${u}-${k}`;
        await requestRetrying(client, 'post', { ws, ch, text: `first post in ${u}-c${k}`, clientMsgId: cmid });
        posts.set(ch, { cmid, by: u });
      }
    });
    const before = await actorLocations(c);
    const oldTable = await table(c);
    t.diagnostic(`setup: ${before.size} live actors in ${Date.now() - started} ms, table epoch ${oldTable.epoch}`);
    assert.ok(before.size >= 190, `about 200 actors are live (${before.size})`);
    const oldRing = HashRing.fromSnapshot(oldTable);
    for (const [a, n] of before) assert.equal(n, oldRing.owner(a), `${a} lives where the ring puts it`);

    const joinAt = Date.now();
    const n4 = await c.addNode('n4');
    const epoch = await waitStable(c, 30_000);
    const stableMs = Date.now() - joinAt;
    const newTable = await table(c);
    assert.equal(newTable.epoch, epoch);
    assert.deepEqual(newTable.members.map((m) => m.id).sort(), ['n1', 'n2', 'n3', 'n4']);
    const newRing = HashRing.fromSnapshot(newTable);
    const ringMoved = [...before.keys()].filter((a) => newRing.owner(a) !== oldRing.owner(a));
    for (const a of ringMoved) assert.equal(newRing.owner(a), n4.id, `by the ring, ${a} moves only to the new node`);

    // touch every previously active actor again (each through the connection of the user it belongs to,
    // so no connection goes over the edge's frame rate), then see where each one lives
    await pool([...before.keys()], 8, async (a) => {
      const [type, key] = [a.slice(0, a.indexOf('/')), a.slice(a.indexOf('/') + 1)];
      const local = key.slice(ws.length + 1);
      if (type === 'channel') await requestRetrying(userClients.get(posts.get(local)!.by)!, 'channelInfo', { ws, ch: local });
      else if (type === 'user') await requestRetrying(userClients.get(local)!, 'getProfile', { ws });
      else if (type === 'workspace') await requestRetrying(owner.client, 'workspaceInfo', { ws: key });
      else throw new Error(`unexpected actor ${a}`);
    });
    const after = await actorLocations(c);
    const missing = [...before.keys()].filter((a) => !after.has(a));
    assert.deepEqual(missing, [], 'every previously active actor is live again after being touched');
    const moved = [...before.keys()].filter((a) => after.get(a) !== before.get(a));
    const betweenOld = moved.filter((a) => after.get(a) !== n4.id);
    assert.deepEqual(betweenOld, [], 'no actor moved between the old nodes');
    for (const a of before.keys()) assert.equal(after.get(a), newRing.owner(a), `${a} lives where the new ring puts it`);
    const share = moved.length / before.size;
    t.diagnostic(JSON.stringify({
      actors: before.size, movedObserved: moved.length, movedByRing: ringMoved.length, share: Number(share.toFixed(3)),
      ringShare: Number((ringMoved.length / before.size).toFixed(3)), stableMs, epochBefore: oldTable.epoch, epochAfter: epoch,
      onN4: [...after.values()].filter((n) => n === n4.id).length,
    }));
    assert.equal(moved.length, ringMoved.length, 'observed moves are exactly the ring moves');
    assert.ok(share >= 0.12 && share <= 0.40, `moved share ${share.toFixed(3)} is about 1/4`);

    // nothing lost: every channel answers with its one post
    let checked = 0;
    await pool([...posts.keys()], 8, async (ch) => {
      const { cmid, by } = posts.get(ch)!;
      const msgs = await readAll(userClients.get(by)!, ws, ch);
      assert.deepEqual(msgs.map((m) => [m.seq, m.clientMsgId, m.user]), [[1, cmid, by]], `channel ${ch} has its post`);
      checked++;
    });
    assert.equal(checked, USERS * CHANNELS_PER_USER);
  } finally {
    for (const cl of clients) cl.close(); // a client left open reconnects forever and keeps the test process alive
    await c.stop();
  }
});
