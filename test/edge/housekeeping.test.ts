import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { embeddedNode } from './fixture.ts';

/**
 * The session refresh asks one user actor per user; local asks resolve in
 * microtasks, so a refresh that only awaited its slices ran them all in one
 * macrotask and held every socket still for its length (10,000 users: about
 * 300 ms every 30 s, the fan-out bench's worst p99). It must give the event
 * loop a turn between slices.
 */
test('the periodic session refresh yields to the event loop between slices of users', async () => {
  await using node = await embeddedNode({}, { edge: { sessionRefreshMs: 3_600_000, housekeepingSlice: 50 } });
  const users = 120; // three slices of 50
  const ask = (msg: Record<string, unknown>) => node.node.ref('workspace', 'hk').ask<{ code: string }>({ ws: 'hk', ...msg });
  await ask({ op: 'createWorkspace', by: 'hk-0', clientMsgId: 'c', name: 'Housekeeping' });
  const { code } = await ask({ op: 'createInvite', by: 'hk-0', clientMsgId: 'i', role: 'member', maxUses: users });
  await Promise.all(Array.from({ length: users - 1 }, (_, i) => ask({ op: 'joinWorkspace', by: `hk-${i + 1}`, clientMsgId: 'j', code })));
  const sockets: WebSocket[] = [];
  try {
    for (let i = 0; i < users; i += 60) {
      await Promise.all(Array.from({ length: Math.min(60, users - i) }, (_, j) => new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(`${node.url.replace('http', 'ws')}/ws`, { headers: { authorization: `Bearer ${node.signer.sign({ sub: `hk-${i + j}`, ws: ['hk'] })}` } });
        sockets.push(ws);
        ws.once('message', () => resolve()); // hello
        ws.once('error', reject);
      })));
    }
    assert.equal(node.edge.connectionCount, users);
    let done = false;
    let turns = 0;
    const tick = () => {
      if (done) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    await (node.edge as unknown as { refreshSessions(): Promise<void> }).refreshSessions();
    done = true;
    assert.ok(turns >= 2, `the event loop turned ${turns} time(s) during a refresh of ${users} users in three slices`);
  } finally {
    for (const ws of sockets) ws.terminate();
  }
});
