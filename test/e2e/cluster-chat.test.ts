/**
 * The core chat scenario on a real 3-node cluster (three Chorus processes,
 * NATS with JetStream): clients spread over two edges chat across channels
 * and a DM and see each other's messages through the NATS fan-out, a reader
 * resumes on a third edge without gaps while posting goes on, and the
 * permission boundaries hold from any edge.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { ChorusClient } from '../../client/sdk.ts';
import { startChorusCluster, type NodeProc } from '../helpers/chorus-cluster.ts';
import { closeAll, connectWith, record, refused, waitFor } from './helpers.ts';

const NATS = process.env.NATS_SERVER_BIN ?? 'nats-server';
const W = 'w1';

test('chat on a 3-node cluster with clients on different edges: fan-out, DM, resume, permissions', { timeout: 120_000 }, async (t) => {
  if (spawnSync(NATS, ['--version']).status !== 0) {
    t.skip(`no ${NATS} on PATH: install Debian's nats-server to run the cluster test`);
    return;
  }
  const c = await startChorusCluster({ nodes: 3, natsServers: 1 });
  let finished = false;
  t.after(async () => {
    // on a failure, what the nodes logged (warnings and up) says which turn or backend was slow
    if (!finished) for (const n of c.nodes) t.diagnostic(`${n.id} logged:\n${n.output.slice(-40).join('\n')}`);
    closeAll();
    await c.stop();
  });
  const [n1, n2, n3] = c.nodes as [NodeProc, NodeProc, NodeProc];
  const edgeOf = (n: NodeProc) => `ws://127.0.0.1:${n.port}/ws`;
  const token = (user: string, ws = [W]) => c.signer.sign({ sub: user, ws });
  /** A client pinned to node `n`'s edge (no connect call), checked to have landed there. */
  const on = async (n: NodeProc, user: string, ws = [W]): Promise<ChorusClient> => {
    const client = await connectWith(c.urls(), token(user, ws), { edgeUrl: edgeOf(n) });
    assert.equal(client.hello?.node, n.id, `${user} is on ${n.id}`);
    return client;
  };

  // the workspace, made through the protocol on n1
  const owner = await on(n1, 'owner');
  await owner.request('createWorkspace', { ws: W, name: 'Cluster', clientMsgId: 'w' }, { retry: true });
  const chans: string[] = [];
  for (const name of ['general', 'random']) chans.push((await owner.request<{ ch: string }>('createChannel', { ws: W, name, kind: 'public', clientMsgId: name }, { retry: true })).ch);
  const secret = (await owner.request<{ ch: string }>('createChannel', { ws: W, name: 'secret', kind: 'private', clientMsgId: 'secret' }, { retry: true })).ch;
  await owner.post(W, secret, 'SECRET on the cluster');
  const members = ['ada', 'bob', 'eve'];
  for (const u of members) {
    const { code } = await owner.request<{ code: string }>('createInvite', { ws: W, role: 'member', clientMsgId: `inv-${u}` }, { retry: true });
    const cl = await on(n3, u);
    await cl.request('joinWorkspace', { ws: W, code, clientMsgId: 'join' }, { retry: true });
    for (const ch of chans) await cl.request('joinChannel', { ws: W, ch, clientMsgId: `join-${ch}` }, { retry: true });
    cl.close();
  }

  // ada on n1, bob on n2: both channels, posting concurrently, each sees everything once and in order
  const ada = await on(n1, 'ada');
  const bob = await on(n2, 'bob');
  const adaEvents: Array<Record<string, unknown>> = [];
  const bobEvents: Array<Record<string, unknown>> = [];
  ada.onEvent((e) => adaEvents.push(e));
  bob.onEvent((e) => bobEvents.push(e));
  const seenBy = { ada: await Promise.all(chans.map((ch) => record(ada, ch, { ws: W }))), bob: await Promise.all(chans.map((ch) => record(bob, ch, { ws: W }))) };
  const posted: Array<{ ch: string; seq: number }> = [];
  const talk = (client: ChorusClient, who: string) => (async () => {
    for (let i = 0; i < 16; i++) {
      const ch = chans[i % 2]!;
      posted.push({ ch, seq: (await client.post(W, ch, `${who} ${i}${i === 5 ? ` hey <@${who === 'ada' ? 'bob' : 'ada'}>` : ''}`)).seq });
      await new Promise((r) => setTimeout(r, 40));
    }
  })();
  await Promise.all([talk(ada, 'ada'), talk(bob, 'bob')]);
  for (const [i, ch] of chans.entries()) {
    const mine = posted.filter((p) => p.ch === ch).map((p) => p.seq).sort((a, b) => a - b);
    for (const who of ['ada', 'bob'] as const) {
      const r = seenBy[who][i]!;
      await waitFor(() => r.seqs().length >= mine.length, { timeoutMs: 10_000, what: `${who} to see ${ch}` });
      assert.deepEqual(r.seqs(), mine, `${who} sees every message of ${ch} once, in order`);
    }
  }
  // user events cross edges too: mentions, and the presence of a user watched from the other edge
  await waitFor(() => bobEvents.some((e) => e.type === 'mention' && e.from === 'ada'), { what: 'ada\'s mention at bob (n2)' });
  await waitFor(() => adaEvents.some((e) => e.type === 'mention' && e.from === 'bob'), { what: 'bob\'s mention at ada (n1)' });
  assert.equal((await ada.request<{ presence: string }>('getPresence', { ws: W, user: 'bob' }, { retry: true })).presence, 'online');
  assert.deepEqual(await ada.presenceSub(W, ['bob']), [{ user: 'bob', presence: 'online' }]);
  await bob.request('setAway', { ws: W, away: true, clientMsgId: 'away' }, { retry: true });
  await waitFor(() => adaEvents.some((e) => e.type === 'presence' && e.user === 'bob' && e.presence === 'away'), { what: 'bob away, seen at ada (n1)' });

  // a DM across edges
  const dm = (await ada.request<{ ch: string }>('openDm', { ws: W, users: ['bob'], clientMsgId: 'dm' }, { retry: true })).ch;
  const dmAda = await record(ada, dm, { ws: W });
  const dmBob = await record(bob, dm, { ws: W });
  const d1 = await ada.post(W, dm, 'psst');
  const d2 = await bob.post(W, dm, 'yes?');
  await waitFor(() => dmAda.seqs().length === 2 && dmBob.seqs().length === 2);
  assert.deepEqual(dmBob.seqs(), [d1.seq, d2.seq]);

  // bob leaves n2; ada keeps posting; bob resumes on n3 from his last seq: the missed, then live, no gaps
  const general = chans[0]!;
  const lastSeen = seenBy.bob[0]!.sub.lastSeq;
  bob.close();
  let posting = true;
  const more: number[] = [];
  const load = (async () => {
    while (posting) {
      more.push((await ada.post(W, general, `while bob moves ${more.length}`)).seq);
      await new Promise((r) => setTimeout(r, 60));
    }
  })();
  await waitFor(() => more.length >= 5);
  const bob3 = await on(n3, 'bob');
  const resumed = await record(bob3, general, { ws: W, seq: lastSeen });
  await waitFor(() => more.length >= 15);
  posting = false;
  await load;
  const latest = more.at(-1)!;
  await waitFor(() => resumed.sub.lastSeq === latest, { timeoutMs: 10_000, what: 'bob on n3 to catch up' });
  assert.deepEqual(resumed.seqs(), Array.from({ length: latest - lastSeen }, (_, i) => lastSeen + 1 + i), 'missed then live, each once, in order');

  // permission boundaries, from the third edge
  const eve = await on(n3, 'eve');
  const outside = ['CHAT_NOT_MEMBER', 'CHAT_FORBIDDEN'];
  await refused(eve.request('history', { ws: W, ch: secret }), outside, 'private history');
  await refused(eve.request('since', { ws: W, ch: secret, seq: 0 }), outside, 'private since');
  await refused(eve.request('thread', { ws: W, ch: dm, parent: d1.seq }), outside, 'DM thread');
  await refused(eve.subscribe(W, secret, () => {}), outside, 'private subscribe');
  await refused(eve.subscribe(W, dm, () => {}, { seq: 0 }), outside, 'DM subscribe');
  await refused(eve.post(W, dm, 'me too'), outside, 'DM post');
  const stranger = await on(n2, 'stranger'); // a token for w1, but not a member
  await refused(stranger.request('history', { ws: W, ch: general }), ['CHAT_NOT_MEMBER'], 'non-member history');
  await refused(stranger.subscribe(W, general, () => {}, { seq: 0 }), ['CHAT_NOT_MEMBER'], 'non-member subscribe');
  const elsewhere = await on(n1, 'ada', ['w2']); // a token for another workspace
  await refused(elsewhere.request('history', { ws: W, ch: general }), ['AUTH_FORBIDDEN'], 'other-workspace token');
  // and the connect call on any node hands out one of the cluster's edges
  const r = await fetch(`${n2.url}/api/connect`, { method: 'POST', headers: { authorization: `Bearer ${token('ada')}` } });
  const body = (await r.json()) as { url: string; node: string };
  assert.ok([n1, n2, n3].some((n) => body.url === edgeOf(n) && body.node === n.id), `connect answered ${JSON.stringify(body)}`);
  finished = true;
});
