/**
 * Reconnect and resume over real WebSockets on the embedded profile: a
 * reader whose network drops again and again while two others post gets
 * every message exactly once, in seq order; its own posts made across the
 * drops are stored once; edits and reactions made while it was away reach it
 * in the catch-up.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { embeddedNode } from '../edge/fixture.ts';
import { readAll } from '../cluster/load.ts';
import { closeAll, connectWith, newClientMsgId, person, rawSocket, record, tcpProxy, waitFor, WS } from './helpers.ts';

type Node = Awaited<ReturnType<typeof embeddedNode>>;

describe('reconnect and resume (embedded profile)', () => {
  let node: Node;
  before(async () => { node = await embeddedNode(); });
  after(async () => {
    closeAll();
    await node[Symbol.asyncDispose]();
  });

  test('a reader whose connection drops repeatedly under concurrent posting sees every message once, in order (G3)', async (t) => {
    const ada = await person(node, 'rs-ada');
    const bob = await person(node, 'rs-bob');
    const cat = await person(node, 'rs-cat');
    const { ch } = await ada.client.request<{ ch: string }>('createChannel', { ws: WS, name: 'resume-1', kind: 'public', clientMsgId: 'r1' });
    for (const p of [bob, cat]) await p.client.request('joinChannel', { ws: WS, ch, clientMsgId: `join-${ch}` });
    cat.client.close();
    // cat reads through a proxy that drops the connection (no close frame) every ~400 ms
    const proxy = await tcpProxy(node.url);
    const reader = await connectWith(node.url, cat.token, { edgeUrl: proxy.wsUrl, device: 'flaky' });
    const onCat = await record(reader, ch);
    const acked: number[] = [];
    const catPosts: string[] = [];
    let running = true;
    const poster = (p: typeof ada) => (async () => {
      while (running) {
        acked.push((await p.client.post(WS, ch, `${p.user} ${acked.length}`)).seq);
        await new Promise((r) => setTimeout(r, 70)); // ~14/s each, under the edge's 20 frames/s
      }
    })();
    const loops = [poster(ada), poster(bob)];
    // cat posts too, through the flaky link: retried with the same clientMsgId across drops
    const catLoop = (async () => {
      while (running) {
        const id = newClientMsgId();
        catPosts.push(id);
        await reader.post(WS, ch, 'cat says hi', { clientMsgId: id });
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 400));
      proxy.cut();
    }
    await new Promise((r) => setTimeout(r, 400));
    // a busy machine posts slower: go on (bounded) until the stream is long enough to mean something
    await waitFor(() => acked.length + catPosts.length >= 45, { timeoutMs: 20_000, intervalMs: 50, what: 'at least 45 posts' });
    running = false;
    await Promise.all([...loops, catLoop]);
    const latest = (await ada.client.request<{ latestSeq: number }>('channelInfo', { ws: WS, ch })).latestSeq;
    await waitFor(() => onCat.sub.lastSeq === latest, { timeoutMs: 15_000, what: `cat to reach seq ${latest} (at ${onCat.sub.lastSeq})` });
    const seqs = onCat.seqs();
    t.diagnostic(`${proxy.cuts} drops, ${latest} messages, ${acked.length + catPosts.length} posts acknowledged`);
    assert.ok(latest >= 40, `a real stream (${latest} messages)`);
    assert.deepEqual(seqs, Array.from({ length: latest }, (_, i) => i + 1), 'every seq exactly once, in order');
    for (const s of acked) assert.ok(seqs.includes(s));
    // cat's own posts: each stored exactly once despite the drops
    const stored = await readAll(ada.client, WS, ch);
    const catStored = stored.filter((m) => m.user === 'rs-cat').map((m) => m.clientMsgId);
    assert.deepEqual([...catStored].sort(), [...catPosts].sort(), 'each of cat\'s posts stored once');
  });

  test('edits, deletes and reactions made while a reader was away reach it in the catch-up (G4)', async () => {
    const ada = await person(node, 'rs2-ada');
    const bob = await person(node, 'rs2-bob');
    const ch = ada.channels[1]!;
    const first = await record(bob.client, ch);
    const m1 = await ada.client.post(WS, ch, 'will be edited');
    const m2 = await ada.client.post(WS, ch, 'will be deleted');
    await waitFor(() => first.seqs().includes(m2.seq));
    const last = first.sub.lastSeq;
    bob.client.close();
    await ada.client.request('edit', { ws: WS, ch, seq: m1.seq, text: 'edited while bob was away', clientMsgId: 'e' });
    await ada.client.request('delete', { ws: WS, ch, seq: m2.seq, clientMsgId: 'd' });
    await ada.client.request('react', { ws: WS, ch, seq: m1.seq, emoji: 'tada', clientMsgId: 'r' });
    const m3 = await ada.client.post(WS, ch, 'new while away');
    const back = await connectWith(node.url, bob.token);
    const again = await record(back, ch, { seq: last });
    await waitFor(() => again.seqs().includes(m3.seq));
    assert.deepEqual(again.seqs(), [m3.seq]);
    assert.equal(again.of('message_edited').find((e) => e.seq === m1.seq)?.text, 'edited while bob was away');
    assert.ok(again.of('message_deleted').some((e) => e.seq === m2.seq));
    assert.deepEqual(again.of('reaction').find((e) => e.seq === m1.seq)?.users, ['rs2-ada']);
  });

  /** Bob saw one message of a fresh channel, then left; 210 posts land while he is away. Returns what he needs to resume. */
  async function awayWhile210Posts(tag: string) {
    const ada = await person(node, `${tag}-ada`);
    const bob = await person(node, `${tag}-bob`);
    const { ch } = await ada.client.request<{ ch: string }>('createChannel', { ws: WS, name: `resume-${tag}`, kind: 'public', clientMsgId: tag });
    await bob.client.request('joinChannel', { ws: WS, ch, clientMsgId: 'j' });
    const first = await record(bob.client, ch);
    await ada.client.post(WS, ch, 'seen');
    await waitFor(() => first.seqs().length === 1);
    bob.client.close();
    // straight to the channel actor: through the edge, 210 posts would take 10 s at its 20 frames/s
    const channel = node.node.ref('channel', `${WS}.${ch}`);
    for (let i = 0; i < 210; i++) await channel.ask({ op: 'post', by: `${tag}-ada`, ws: WS, ch, text: `missed ${i}`, clientMsgId: `m${i}` });
    const latest = (await ada.client.request<{ latestSeq: number }>('channelInfo', { ws: WS, ch })).latestSeq;
    return { ch, token: bob.token, last: first.sub.lastSeq, latest };
  }

  test('the SDK resumes a reader that missed more than one page (200) of messages with all of them, without waiting for a new post', async () => {
    const { ch, token, last, latest } = await awayWhile210Posts('rs3');
    const again = await record(await connectWith(node.url, token), ch, { seq: last });
    await waitFor(() => again.sub.lastSeq === latest, { timeoutMs: 5000, what: `every missed message (got ${again.seqs().length})` });
    assert.deepEqual(again.seqs(), Array.from({ length: latest - last }, (_, i) => last + 1 + i));
    assert.ok(latest - last >= 210);
  });

  test('the edge\'s subscribe reply carries every missed message, past one page (200)', async () => {
    const { ch, token, last, latest } = await awayWhile210Posts('rs4');
    const raw = await rawSocket(node.url, token);
    const reply = await raw.ask('subscribe', { ws: WS, ch, seq: last });
    await new Promise((r) => setTimeout(r, 500)); // a catchup frame would do too
    const got = [...reply.result.messages, ...raw.frames.filter((f) => f.type === 'catchup').flatMap((f) => f.messages)].length;
    assert.equal(got, latest - last, `the edge sent ${got} of the ${latest - last} missed messages`);
  });
});
