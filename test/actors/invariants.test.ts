// The chat invariants at the actor level: idempotent writes (4), a gapless
// per-channel sequence under concurrency and across a crash of the channel's
// node (2, 3), and bad input that is refused without harm (6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channelKey, userKey } from '../../actors/index.ts';
import { chatCluster, cmid, workspace } from './helpers.ts';

const ws = 'w';

test('idempotency: the same clientMsgId stores once and answers the same (G5)', async () => {
  const f = await chatCluster({ faults: { minDelayMs: 0, maxDelayMs: 3 } });
  try {
    await workspace(f, ws, 'ann', ['bob']);
    const chId = cmid();
    const ch = await f.send({ op: 'createChannel', by: 'ann', ws, name: 'g', kind: 'public', clientMsgId: chId });
    assert.deepEqual(await f.send({ op: 'createChannel', by: 'ann', ws, name: 'g', kind: 'public', clientMsgId: chId }), ch);
    await f.send({ op: 'joinChannel', by: 'bob', ws, ch: ch.ch, clientMsgId: cmid() });
    const id = cmid();
    const post = { op: 'post' as const, by: 'bob', ws, ch: ch.ch, text: 'once', clientMsgId: id };
    const [a, b] = await Promise.all([f.send(post, 'n1'), f.send(post, 'n2')]); // concurrent duplicates
    const c = await f.send(post, 'n3'); // a late retry
    assert.deepEqual(a, b);
    assert.deepEqual(a, c);
    assert.equal(a.seq, 1);
    // the same id from another user is another message
    const other = await f.send({ ...post, by: 'ann' });
    assert.equal(other.seq, 2);
    const reactId = cmid();
    const react = { op: 'react' as const, by: 'bob', ws, ch: ch.ch, seq: 1, emoji: 'eyes', clientMsgId: reactId };
    await f.send(react);
    await f.send(react);
    await f.fails({ op: 'pin', by: 'bob', ws, ch: ch.ch, seq: 1, clientMsgId: reactId }, 'CHAT_CONFLICT'); // one id, one write
    await f.fails({ ...post, clientMsgId: reactId }, 'CHAT_CONFLICT');
    const all = await f.send({ op: 'since', by: 'ann', ws, ch: ch.ch, seq: 0 });
    assert.deepEqual(all.messages.map((m: any) => [m.seq, m.user, m.text]), [[1, 'bob', 'once'], [2, 'ann', 'once']]);
    assert.deepEqual(all.messages[0].reactions, { eyes: ['bob'] });
    // a retried post is published again (its first publish may have been lost with its node); every publication of a seq is the same message
    const pubs = f.on(`chorus.chan.${ws}.${ch.ch}`, 'message') as Array<{ seq: number; message: { text: string; user: string } }>;
    assert.deepEqual([...new Set(pubs.map((p) => p.seq))].sort(), [1, 2], 'only stored messages are published');
    for (const p of pubs) assert.deepEqual([p.message.user, p.message.text], p.seq === 1 ? ['bob', 'once'] : ['ann', 'once']);
    // the log holds exactly one record per stored write
    const records = f.cluster.logServer.streams.get(`channel.${channelKey(ws, ch.ch)}`)!.entries;
    assert.equal(records.length, 1 + 1 + 2 + 1); // created, joined, 2 posts, 1 reaction
  } finally {
    await f.stop();
  }
});

test('gapless sequence: 50 concurrent posts from 50 users get seqs exactly 1..50 (G2)', async () => {
  const f = await chatCluster({ faults: { minDelayMs: 0, maxDelayMs: 5 } });
  try {
    const users = Array.from({ length: 50 }, (_, i) => `u${i}`);
    await workspace(f, ws, 'ann', users);
    const { ch } = await f.send({ op: 'createChannel', by: 'ann', ws, name: 'busy', kind: 'public', clientMsgId: cmid() });
    await f.cluster.run(Promise.all(users.map((u, i) => f.send({ op: 'joinChannel', by: u, ws, ch, clientMsgId: cmid() }, `n${(i % 3) + 1}`))));
    const acks = await f.cluster.run(Promise.all(users.map((u, i) => f.send({ op: 'post', by: u, ws, ch, text: `from ${u}`, clientMsgId: cmid() }, `n${(i % 3) + 1}`))));
    assert.deepEqual(acks.map((a: any) => a.seq).sort((x: number, y: number) => x - y), Array.from({ length: 50 }, (_, i) => i + 1));
    const all = await f.send({ op: 'since', by: 'ann', ws, ch, seq: 0 });
    assert.deepEqual(all.messages.map((m: any) => m.seq), Array.from({ length: 50 }, (_, i) => i + 1));
    // each ack names the message that author stored
    for (const [i, a] of acks.entries()) assert.equal(all.messages[a.seq - 1].user, users[i]);
    // and the live stream carried each seq once
    await f.cluster.eventually(() => assert.equal(f.on(`chorus.chan.${ws}.${ch}`, 'message').length, 50));
    assert.deepEqual(f.on(`chorus.chan.${ws}.${ch}`, 'message').map((e) => e.seq).sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1));
  } finally {
    await f.stop();
  }
});

test('per-channel order survives a crash of the channel\'s node: acked posts kept, seqs gapless, no duplicates (G2)', async () => {
  const f = await chatCluster({ faults: { minDelayMs: 0, maxDelayMs: 3 } });
  try {
    const users = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'];
    await workspace(f, ws, 'ann', users);
    const { ch } = await f.send({ op: 'createChannel', by: 'ann', ws, name: 'ops', kind: 'public', clientMsgId: cmid() });
    for (const u of users) await f.send({ op: 'joinChannel', by: u, ws, ch, clientMsgId: cmid() });
    await f.send({ op: 'post', by: 'ann', ws, ch, text: 'start', clientMsgId: cmid() });
    const owner = f.cluster.liveActivations().get(`channel/${channelKey(ws, ch)}`)![0]!;
    const survivors = f.cluster.nodeIds.filter((n) => n !== owner);
    const acked = new Map<string, number>();
    const errors: string[] = [];
    let attempts = 0;
    // six clients post 12 messages each, one after another, retrying a failed post with the
    // same clientMsgId (as a real client does) until it is acknowledged
    const client = async (by: string, c: number) => {
      for (let i = 0; i < 12; i++) {
        const id = `${by}-${i}`;
        for (;;) {
          attempts++;
          try {
            const via = survivors[(c + i) % survivors.length]!;
            const r = await f.cluster.ref('channel', channelKey(ws, ch), via).ask<{ seq: number }>({ op: 'post', by, ws, ch, text: `${by} ${i}`, clientMsgId: id });
            acked.set(`${by}:${id}`, r.seq);
            if (acked.size === 24) f.cluster.crash(owner); // mid-stream: other clients' posts are in flight
            break;
          } catch (e: any) {
            errors.push(e.code);
          }
        }
      }
    };
    await f.cluster.run(Promise.all(users.map((u, c) => client(u, c))));
    assert.ok(!f.cluster.nodeIds.includes(owner), 'the owner crashed while posts were flowing');
    assert.ok(acked.size === 72);
    const all = await f.send({ op: 'since', by: 'ann', ws, ch, seq: 0, limit: 200 });
    const seqs = all.messages.map((m: any) => m.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'gapless');
    const keys = all.messages.map((m: any) => `${m.user}:${m.clientMsgId}`);
    assert.equal(new Set(keys).size, keys.length, 'no duplicates');
    for (const [k, seq] of acked) assert.equal(keys[seq - 1], k, `acked ${k} is at seq ${seq}`);
    assert.equal(seqs.length, 1 + 72, 'every post stored exactly once');
    assert.ok(attempts > 72 && errors.length > 0, 'some posts were caught by the crash and retried');
    assert.ok(errors.every((c) => c === 'CHORUS_ASK_TIMEOUT' || c === 'CHORUS_NODE_UNAVAILABLE'), `unexpected errors: ${errors.join()}`);
    f.cluster.checkInvariants();
  } finally {
    await f.stop();
  }
});

test('garbage commands get CHORUS_BAD_MESSAGE and leave the actors working', async () => {
  const f = await chatCluster();
  try {
    await workspace(f, ws, 'ann', ['bob']);
    const { ch } = await f.send({ op: 'createChannel', by: 'ann', ws, name: 'g', kind: 'public', clientMsgId: cmid() });
    await f.send({ op: 'post', by: 'ann', ws, ch, text: 'before', clientMsgId: cmid() });
    const chan = f.cluster.ref('channel', channelKey(ws, ch));
    const wsRef = f.cluster.ref('workspace', ws);
    const user = f.cluster.ref('user', userKey(ws, 'bob'));
    const base = { by: 'ann', ws, ch };
    const garbage: Array<[typeof chan, unknown]> = [
      [chan, 'hello'], [chan, 42], [chan, null], [chan, []], [chan, {}], [chan, { op: 7 }],
      [chan, { op: 'explode', ...base }], [chan, { op: 'constructor', ...base }], [chan, { op: '__proto__', ...base }], [chan, { op: 'toString', ...base }],
      [chan, { op: 'post', ...base, text: 42, clientMsgId: 'x' }],
      [chan, { op: 'post', ...base, text: 'x'.repeat(4001), clientMsgId: 'x' }],
      [chan, { op: 'post', ...base, text: 'x'.repeat(1 << 20), clientMsgId: 'x' }],
      [chan, { op: 'post', ...base, text: '', clientMsgId: 'x' }],
      [chan, { op: 'post', ...base, text: 'hi' }],
      [chan, { op: 'post', ...base, text: 'hi', clientMsgId: 'x'.repeat(65) }],
      [chan, { op: 'post', ...base, text: 'hi', clientMsgId: 'x', parent: 0 }],
      [chan, { op: 'post', ...base, text: 'hi', clientMsgId: 'x', parent: 1.5 }],
      [chan, { op: 'post', ws, ch, text: 'no by', clientMsgId: 'x' }],
      [chan, { op: 'post', ...base, by: 'bad.id', text: 'hi', clientMsgId: 'x' }],
      [chan, { op: 'post', ...base, by: '__proto__', text: 'hi', clientMsgId: 'x' }],
      [chan, { op: 'edit', ...base, seq: '1', text: 'x', clientMsgId: 'x' }],
      [chan, { op: 'react', ...base, seq: 1, emoji: 'NOT OK', clientMsgId: 'x' }],
      [chan, { op: 'react', ...base, seq: 1, emoji: '__proto__', clientMsgId: 'x' }],
      [chan, { op: 'setTopic', ...base, topic: 't'.repeat(251), clientMsgId: 'x' }],
      [chan, { op: 'history', ...base, limit: 0 }], [chan, { op: 'history', ...base, limit: 201 }], [chan, { op: 'history', ...base, order: 'random' }],
      [chan, { op: 'since', ...base, seq: -1 }], [chan, { op: 'since', ...base, seq: Number.NaN }],
      [chan, { op: 'history', by: 'ann', ws, ch: 'other' }], // addressed to another channel
      [chan, { op: 'init', spec: { ws: 'x' } }], [chan, { op: 'memberChanged', ws, user: 7 }],
      [wsRef, { op: 'createChannel', by: 'ann', ws, name: 'n'.repeat(81), kind: 'public', clientMsgId: 'x' }],
      [wsRef, { op: 'createChannel', by: 'ann', ws, name: '   ', kind: 'public', clientMsgId: 'x' }],
      [wsRef, { op: 'createChannel', by: 'ann', ws, name: 'ok', kind: 'secret', clientMsgId: 'x' }],
      [wsRef, { op: 'openDm', by: 'ann', ws, users: Array.from({ length: 100 }, (_, i) => `u${i}`), clientMsgId: 'x' }],
      [wsRef, { op: 'openDm', by: 'ann', ws, users: [], clientMsgId: 'x' }],
      [wsRef, { op: 'createInvite', by: 'ann', ws, role: 'owner', clientMsgId: 'x' }],
      [wsRef, { op: 'mirrorMember', ws, ch, user: 'bob', joined: 'yes', version: 1 }],
      [user, { op: 'markRead', by: 'bob', ws, ch, seq: -5, clientMsgId: 'x' }],
      [user, { op: 'updateProfile', by: 'bob', ws, avatarUrl: 'javascript:alert(1)', clientMsgId: 'x' }],
      [user, { op: 'notify', ws, user: 'bob', ch, seq: 'one' }],
      [user, { op: 'sessionsRefresh', by: 'bob', ws, node: 'n1', sessionIds: Array.from({ length: 1001 }, (_, i) => `s${i}`) }],
    ];
    for (const [ref, msg] of garbage) {
      await assert.rejects(f.cluster.run(ref.ask(msg)), (e: any) => {
        assert.equal(e.code, 'CHORUS_BAD_MESSAGE', `${JSON.stringify(msg)?.slice(0, 100)} -> ${e.code}: ${e.message}`);
        assert.ok(e.message.length < 1000, 'the error is a summary, not an echo');
        return true;
      });
    }
    // everything still works, and nothing was stored
    assert.equal((await f.send({ op: 'post', by: 'ann', ws, ch, text: 'after', clientMsgId: cmid() })).seq, 2);
    const h = await f.send({ op: 'history', by: 'ann', ws, ch });
    assert.deepEqual(h.messages.map((m: any) => m.text), ['after', 'before']);
    assert.equal((await f.send({ op: 'channelInfo', by: 'ann', ws, ch })).topic, '');
    assert.equal((await f.send<any[]>({ op: 'listChannels', by: 'ann', ws })).length, 1);
    assert.equal((await f.send({ op: 'me', by: 'bob', ws })).avatarUrl, null);
    f.cluster.checkInvariants();
  } finally {
    await f.stop();
  }
});
