// The channel actor reading through the query store: the same answers as
// from its memory, permission checked before the store is asked,
// read-your-writes when the projection is behind, and memory when the store
// fails. A 2-node TestCluster (virtual time) with the chat actors, a PGlite
// store and the projection runner tailing the cluster's log.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chatActorTypes, routeOf, RecordingNotifier, type QueryStore } from '../../actors/index.ts';
import { MemoryEventLog } from '../../adapters/memory/memory-event-log.ts';
import { PostgresProjectionSink, PostgresQueryStore, pgliteClient, singleRouting, type SqlClient } from '../../adapters/postgres/query.ts';
import { ProjectionRunner } from '../../cluster/query/projection-runner.ts';
import { TestCluster } from '../harness/index.ts';

/** Delegates to the real store while `on`; counts what it was asked and what it served. */
function switchable(inner: QueryStore) {
  const state = { on: true, fail: false, asked: 0, served: 0 };
  const wrap = <A extends unknown[], R>(fn: (...a: A) => Promise<R | null>) => async (...a: A): Promise<R | null> => {
    state.asked++;
    if (state.fail) throw new Error('store down');
    if (!state.on) return null;
    const r = await fn(...a);
    if (r !== null) state.served++;
    return r;
  };
  const qs: QueryStore = {
    history: wrap(inner.history.bind(inner)),
    thread: wrap(inner.thread.bind(inner)),
    channelMembers: wrap(inner.channelMembers.bind(inner)),
    workspaceMembers: wrap(inner.workspaceMembers.bind(inner)),
    profile: wrap(inner.profile.bind(inner)),
    readCursors: wrap(inner.readCursors.bind(inner)),
  };
  return { qs, state };
}

describe('channel reads through the query store', () => {
  let cluster: TestCluster;
  let client: SqlClient;
  let runner: ProjectionRunner;
  let log: MemoryEventLog;
  let sw: ReturnType<typeof switchable>;
  let n = 0;
  const cmid = () => `q${++n}`;
  const send = <T = any>(cmd: { op: string; by: string; ws: string; [k: string]: unknown }): Promise<T> => {
    const { type, key } = routeOf(cmd.op as never, cmd as { by: string; ws: string });
    return cluster.run(cluster.ref(type, key).ask<T>(cmd));
  };
  const fails = async (cmd: { op: string; by: string; ws: string; [k: string]: unknown }, code: string) =>
    assert.rejects(send(cmd), (e: any) => e.code === code);
  /** Waits (real time) until the projection has every record of the cluster's log. */
  const projected = async () => {
    for (const [stream, data] of cluster.logServer.streams) {
      if (data.entries.length) await runner.waitFor(stream, data.entries[data.entries.length - 1]!.pos);
    }
  };
  /** Asks through the store and from memory; both answers must be equal, and the store must have served the first. */
  const same = async (cmd: { op: string; by: string; ws: string; [k: string]: unknown }) => {
    sw.state.on = true;
    const served = sw.state.served;
    const viaStore = await send(cmd);
    assert.equal(sw.state.served, served + 1, `${cmd.op} served by the store`);
    sw.state.on = false;
    const fromMemory = await send(cmd);
    sw.state.on = true;
    assert.deepStrictEqual(viaStore, fromMemory, `${cmd.op} ${JSON.stringify(cmd)}`);
    return viaStore;
  };

  before(async () => {
    client = await pgliteClient();
    const store = new PostgresQueryStore(singleRouting(client), { freshWaitMs: 0 });
    await store.ready();
    sw = switchable(store);
    cluster = await TestCluster.start({ nodes: 2, seed: 5, types: chatActorTypes({ notifier: new RecordingNotifier(), queryStore: sw.qs }) });
    log = new MemoryEventLog(cluster.logServer);
    runner = await new ProjectionRunner(log, new PostgresProjectionSink(singleRouting(client)), { maxDelayMs: 1, densePositions: true }).start();

    const ws = 'w1';
    await send({ op: 'createWorkspace', by: 'u1', ws, name: 'W1', clientMsgId: cmid() });
    for (const [u, role] of [['u2', 'member'], ['u3', 'member'], ['g1', 'guest']] as const) {
      const inv = await send({ op: 'createInvite', by: 'u1', ws, role, clientMsgId: cmid() });
      await send({ op: 'joinWorkspace', by: u, ws, code: inv.code, clientMsgId: cmid() });
    }
    const gen = await send({ op: 'createChannel', by: 'u1', ws, name: 'general', kind: 'public', clientMsgId: cmid() });
    const sec = await send({ op: 'createChannel', by: 'u1', ws, name: 'secret', kind: 'private', clientMsgId: cmid() });
    await send({ op: 'joinChannel', by: 'u2', ws, ch: gen.ch, clientMsgId: cmid() });
    await send({ op: 'inviteToChannel', by: 'u1', ws, ch: sec.ch, user: 'u3', clientMsgId: cmid() });
    for (let i = 1; i <= 30; i++) {
      const by = ['u1', 'u2'][i % 2]!;
      const r = await send<{ seq: number }>({ op: 'post', by, ws, ch: gen.ch, text: `msg ${i} <@u1>`, clientMsgId: cmid() });
      if (i % 5 === 0) await send({ op: 'post', by: 'u1', ws, ch: gen.ch, text: `reply to ${r.seq}`, parent: r.seq, clientMsgId: cmid() });
      if (i % 7 === 0) await send({ op: 'edit', by, ws, ch: gen.ch, seq: r.seq, text: `edited ${i}`, clientMsgId: cmid() });
      if (i % 4 === 0) await send({ op: 'react', by: 'u2', ws, ch: gen.ch, seq: r.seq, emoji: 'tada', clientMsgId: cmid() });
      if (i % 9 === 0) await send({ op: 'pin', by: 'u1', ws, ch: gen.ch, seq: r.seq, clientMsgId: cmid() });
      if (i % 11 === 0) await send({ op: 'delete', by: 'u1', ws, ch: gen.ch, seq: r.seq, clientMsgId: cmid() });
    }
    await send({ op: 'post', by: 'u3', ws, ch: sec.ch, text: 'secret stuff', clientMsgId: cmid() });
    await send({ op: 'leaveChannel', by: 'u2', ws, ch: gen.ch, clientMsgId: cmid() });
    await send({ op: 'joinChannel', by: 'u3', ws, ch: gen.ch, clientMsgId: cmid() });
    await projected();
  });
  after(async () => {
    await runner?.stop();
    await cluster?.stop();
    await client?.close();
  });

  test('history, thread and member list: the store answers exactly what memory answers', async () => {
    const ws = 'w1';
    for (const q of [{}, { limit: 5 }, { before: 20, limit: 10 }, { after: 3, limit: 4 }, { after: 2, before: 30, order: 'newest' }, { limit: 200, order: 'oldest' }]) {
      await same({ op: 'history', by: 'u3', ws, ch: 'c1', ...q });
    }
    const page = await send<{ messages: Array<{ seq: number; replyCount?: number }> }>({ op: 'history', by: 'u1', ws, ch: 'c1', limit: 200 });
    const parents = page.messages.filter((m) => m.replyCount);
    assert.ok(parents.length >= 5);
    for (const p of parents) await same({ op: 'thread', by: 'u1', ws, ch: 'c1', parent: p.seq });
    await same({ op: 'channelMembers', by: 'u1', ws, ch: 'c1' });
    await same({ op: 'channelMembers', by: 'u3', ws, ch: 'c2' });
    await same({ op: 'history', by: 'u3', ws, ch: 'c2' });
  });

  test('workspace member list and profiles: the store answers exactly what memory answers', async () => {
    const ws = 'w1';
    await send({ op: 'updateProfile', by: 'u2', ws, displayName: 'Ursula', title: 'SRE', clientMsgId: cmid() });
    await projected();
    await same({ op: 'listMembers', by: 'u2', ws });
    await same({ op: 'listMembers', by: 'g1', ws });
    const p = await same({ op: 'getProfile', by: 'u1', ws, user: 'u2' });
    assert.equal((p as { displayName: string }).displayName, 'Ursula');
    await same({ op: 'getProfile', by: 'u3', ws, user: 'u3' }); // never set: the defaults
    const asked = sw.state.asked;
    await fails({ op: 'listMembers', by: 'zz', ws }, 'CHAT_NOT_MEMBER');
    await fails({ op: 'getProfile', by: 'zz', ws, user: 'u2' }, 'CHAT_NOT_MEMBER');
    assert.equal(sw.state.asked, asked, 'permission checked before the store is asked');
  });

  test('permission is checked before the store is asked', async () => {
    const asked = sw.state.asked;
    await fails({ op: 'history', by: 'zz', ws: 'w1', ch: 'c1' }, 'CHAT_NOT_MEMBER');
    await fails({ op: 'history', by: 'g1', ws: 'w1', ch: 'c1' }, 'CHAT_NOT_MEMBER');
    await fails({ op: 'history', by: 'u2', ws: 'w1', ch: 'c2' }, 'CHAT_NOT_MEMBER');
    await fails({ op: 'thread', by: 'u2', ws: 'w1', ch: 'c2', parent: 1 }, 'CHAT_NOT_MEMBER');
    await fails({ op: 'channelMembers', by: 'zz', ws: 'w1', ch: 'c2' }, 'CHAT_NOT_MEMBER');
    // errors about the data itself come from the actor too
    await fails({ op: 'thread', by: 'u1', ws: 'w1', ch: 'c1', parent: 9999 }, 'CHAT_NOT_FOUND');
    assert.equal(sw.state.asked, asked, 'the store was never asked');
  });

  test('read-your-writes: with the projection behind, the actor answers from memory, including its latest write', async () => {
    await runner.stop();
    const r = await send<{ seq: number }>({ op: 'post', by: 'u1', ws: 'w1', ch: 'c1', text: 'just now', clientMsgId: cmid() });
    await send({ op: 'react', by: 'u3', ws: 'w1', ch: 'c1', seq: r.seq, emoji: 'eyes', clientMsgId: cmid() });
    const served = sw.state.served;
    const asked = sw.state.asked;
    const page = await send<{ messages: Array<{ seq: number; reactions?: Record<string, string[]> }>; latestSeq: number }>({ op: 'history', by: 'u1', ws: 'w1', ch: 'c1', limit: 3 });
    assert.equal(page.latestSeq, r.seq);
    assert.deepEqual(page.messages[0]!.reactions, { eyes: ['u3'] });
    assert.equal(sw.state.asked, asked + 1, 'the store was asked');
    assert.equal(sw.state.served, served, 'and could not answer that fresh');
    // the projection catches up: the store serves again, the same answer
    runner = await new ProjectionRunner(log, new PostgresProjectionSink(singleRouting(client)), { maxDelayMs: 1, densePositions: true }).start();
    await projected();
    await same({ op: 'history', by: 'u1', ws: 'w1', ch: 'c1', limit: 3 });
  });

  test('a failing store: the actor serves from memory (G13)', async () => {
    sw.state.on = false;
    const fromMemory = await send({ op: 'history', by: 'u1', ws: 'w1', ch: 'c1', limit: 20 });
    sw.state.on = true;
    sw.state.fail = true;
    try {
      assert.deepStrictEqual(await send({ op: 'history', by: 'u1', ws: 'w1', ch: 'c1', limit: 20 }), fromMemory);
      await send({ op: 'channelMembers', by: 'u1', ws: 'w1', ch: 'c1' });
    } finally {
      sw.state.fail = false;
    }
  });
});
