// A channel's snapshot carries its messages in chunks, unchanged ones reused
// as bytes (actors/lib/message-chunks.ts): what is reused must be what a full
// encoding would give, whatever events came in between, and a channel
// reactivated from such a snapshot (or from one written before chunks) must
// hold the same messages.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHAT_DEFAULTS, ChannelActor, RecordingNotifier } from '../../actors/index.ts';
import { applyChannel, initialChannel, type ChannelEventRec, type ChannelState } from '../../actors/lib/channel-state.ts';
import { MESSAGE_CHUNK, MessageChunks } from '../../actors/lib/message-chunks.ts';
import { codec } from '../../runtime/index.ts';
import { seededRandom } from '../harness/rng.ts';
import { chatCluster, cmid, workspace } from './helpers.ts';

const created: ChannelEventRec = { type: 'created', facts: { ws: 'w', ch: 'c', name: 'general', kind: 'public', createdBy: 'u0', createdAt: 1 }, topic: '', members: ['u0', 'u1'] };

/** A channel state folded from `created` and `n` posts, with its chunk cache fed the same events. */
function channel(n: number): { s: ChannelState; chunks: MessageChunks; apply(e: ChannelEventRec): void } {
  const chunks = new MessageChunks(codec);
  let s = initialChannel();
  const apply = (e: ChannelEventRec) => {
    chunks.applied(e);
    s = applyChannel(s, e);
  };
  apply(created);
  for (let i = 0; i < n; i++) apply(post(s.messages.length + 1));
  return { get s() { return s; }, chunks, apply };
}

function post(seq: number, parent?: number): ChannelEventRec {
  return { type: 'posted', msg: { seq, user: `u${seq % 2}`, ts: 1000 + seq, text: `message ${seq}`, cmid: `c${seq}`, ...(parent !== undefined ? { parent } : {}) } };
}

/** What a snapshot reader gets back from `chunks`. */
function readBack(chunks: Uint8Array[]) {
  return new MessageChunks(codec).decode(chunks);
}

describe('message chunks in channel snapshots', () => {
  it('a snapshot encodes only the chunks whose messages changed, and reads back the same messages', () => {
    const c = channel(3 * MESSAGE_CHUNK + 100);
    assert.deepEqual(readBack(c.chunks.encode(c.s.messages)), c.s.messages);
    assert.equal(c.chunks.encodedCount, 4);

    c.apply(post(c.s.messages.length + 1)); // lands in the last, partial chunk
    c.chunks.encode(c.s.messages);
    assert.equal(c.chunks.encodedCount, 5, 'only the last chunk again');

    c.apply({ type: 'edited', seq: 5, text: 'edited', mentions: [], channelMention: false, by: 'u1', at: 9 });
    c.apply({ type: 'reaction', seq: MESSAGE_CHUNK + 10, emoji: '+1', user: 'u0', add: true });
    const snap = c.chunks.encode(c.s.messages);
    assert.equal(c.chunks.encodedCount, 8, 'chunks 0 and 1 (changed) and the last');
    assert.deepEqual(readBack(snap), c.s.messages);

    c.apply(post(c.s.messages.length + 1, 10)); // a reply changes its parent's reply list (chunk 0)
    const snap2 = c.chunks.encode(c.s.messages);
    assert.equal(c.chunks.encodedCount, 10);
    assert.deepEqual(readBack(snap2)[9]!.replies, [c.s.messages.length]);

    // nothing changed: nothing encoded but the partial last chunk
    c.chunks.encode(c.s.messages);
    assert.equal(c.chunks.encodedCount, 11);
  });

  it('under random edits, deletes, reactions, pins and replies to old messages every snapshot reads back as the state', () => {
    const rnd = seededRandom(Number(process.env.CHORUS_SEED ?? 7));
    // many chunks, few events between snapshots: a chunk changed by one kind of event alone is common, so an event
    // that did not mark its chunk leaves a stale chunk behind
    const c = channel(12 * MESSAGE_CHUNK);
    const any = () => 1 + Math.floor(rnd() * c.s.messages.length);
    for (let round = 0; round < 60; round++) {
      for (let i = 0; i < 8; i++) {
        const r = rnd();
        const seq = any();
        if (r < 0.3) c.apply(post(c.s.messages.length + 1));
        else if (r < 0.45) {
          const parent = c.s.messages[seq - 1]!;
          c.apply(post(c.s.messages.length + 1, parent.parent ?? parent.seq));
        } else if (r < 0.6) c.apply({ type: 'edited', seq, text: `edit ${i}`, mentions: rnd() < 0.5 ? ['u1'] : [], channelMention: rnd() < 0.2, by: 'u0', at: i });
        else if (r < 0.65) c.apply({ type: 'deleted', seq, by: 'u0', at: i });
        else if (r < 0.85) c.apply({ type: 'reaction', seq, emoji: rnd() < 0.5 ? '+1' : 'eyes', user: rnd() < 0.5 ? 'u0' : 'u1', add: rnd() < 0.6 });
        else c.apply({ type: 'pinned', seq, pinned: rnd() < 0.6, by: 'u0' });
      }
      const before = c.chunks.encodedCount;
      const snap = c.chunks.encode(c.s.messages);
      assert.deepEqual(readBack(snap), c.s.messages, `round ${round}`);
      // and byte for byte what encoding every chunk afresh gives
      const fresh = new MessageChunks(codec).encode(c.s.messages);
      assert.deepEqual(snap.map((b) => Buffer.from(b).toString('hex')), fresh.map((b) => Buffer.from(b).toString('hex')), `round ${round}: reused chunks match a fresh encoding`);
      assert.ok(c.chunks.encodedCount - before <= snap.length);
    }
  });

  it('the channel actor reads both its chunked snapshots and the plain ones written before chunks', () => {
    class Probe extends ChannelActor {
      enc(s: ChannelState) { return this.encodeState(s); }
      dec(b: Uint8Array) { return this.decodeState(b); }
    }
    const opts = { ...CHAT_DEFAULTS, notifier: new RecordingNotifier() };
    const c = channel(MESSAGE_CHUNK + 5);
    c.apply({ type: 'reaction', seq: 3, emoji: '+1', user: 'u1', add: true });
    const writer = new Probe(opts);
    const chunked = writer.enc(c.s);
    const raw = codec.decode(chunked) as Record<string, unknown>;
    assert.equal(raw.messages, undefined, 'a chunked snapshot has no plain `messages` (a build before chunks fails on it instead of renumbering)');
    assert.equal((raw.messageChunks as unknown[]).length, 2);
    assert.equal(raw.byClient, undefined, 'the clientMsgId index is rebuilt from the messages, not stored');
    assert.deepEqual(new Probe(opts).dec(chunked), c.s);
    assert.deepEqual(new Probe(opts).dec(codec.encode(c.s)), c.s, 'a plain snapshot');
    // a reader of a chunked snapshot keeps its full chunks: the next snapshot encodes only the last one
    const reader = new Probe(opts);
    const back = reader.dec(chunked);
    assert.deepEqual(codec.decode(reader.enc(back)), raw);
  });

  it('a channel of more than one chunk, reactivated on a restarted node, keeps every message, edit, reaction, pin and thread', async () => {
    const f = await chatCluster({ nodes: 1 });
    try {
      const ws = 'w1';
      await workspace(f, ws, 'ann', ['bob']);
      const { ch } = await f.send({ op: 'createChannel', by: 'ann', ws, name: 'big', kind: 'public', clientMsgId: cmid() });
      await f.send({ op: 'joinChannel', by: 'bob', ws, ch, clientMsgId: cmid() });
      const n = MESSAGE_CHUNK + 300;
      for (let i = 1; i <= n; i++) await f.send({ op: 'post', by: i % 2 ? 'ann' : 'bob', ws, ch, text: `m${i}`, clientMsgId: `p${i}` });
      await f.send({ op: 'edit', by: 'ann', ws, ch, seq: 3, text: 'm3 (edited)', clientMsgId: cmid() });
      await f.send({ op: 'react', by: 'bob', ws, ch, seq: 700, emoji: '+1', clientMsgId: cmid() });
      await f.send({ op: 'pin', by: 'bob', ws, ch, seq: 1, clientMsgId: cmid() });
      await f.send({ op: 'post', by: 'bob', ws, ch, text: 'reply', parent: 2, clientMsgId: cmid() });
      await f.send({ op: 'delete', by: 'ann', ws, ch, seq: 5, clientMsgId: cmid() });
      const snap = f.cluster.logServer.snapshots.get(`channel.${ws}.${ch}`);
      assert.ok(snap, 'the channel took a snapshot');
      assert.ok(Array.isArray((codec.decode(snap.data) as { messageChunks?: unknown }).messageChunks), 'in chunks');

      const read = async () => ({
        oldest: await f.send({ op: 'history', by: 'bob', ws, ch, after: 0, limit: 100 }),
        around: await f.send({ op: 'history', by: 'bob', ws, ch, before: 710, limit: 20 }),
        thread: await f.send({ op: 'thread', by: 'bob', ws, ch, parent: 2 }),
        info: await f.send({ op: 'channelInfo', by: 'bob', ws, ch }),
      });
      const before = await read();
      assert.equal(before.info.latestSeq, n + 1);
      f.cluster.crash('n1');
      await f.cluster.restart('n1');
      const after = await read();
      assert.deepEqual(after, before);
      assert.equal(after.oldest.messages[2].text, 'm3 (edited)');
      assert.equal(after.oldest.messages[0].pinned, true);
      assert.equal(after.oldest.messages[1].replyCount, 1);
      assert.deepEqual(after.around.messages.find((m: { seq: number }) => m.seq === 700).reactions, { '+1': ['bob'] });
      // a retry of an old post answers its first seq; the next post continues the sequence
      assert.equal((await f.send({ op: 'post', by: 'ann', ws, ch, text: 'm1', clientMsgId: 'p1' })).seq, 1);
      assert.equal((await f.send({ op: 'post', by: 'ann', ws, ch, text: 'next', clientMsgId: cmid() })).seq, n + 2);
    } finally {
      await f.stop();
    }
  });
});
