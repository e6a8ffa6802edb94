// Who may search what (invariant 5), at the actors: the user actor's
// `search` op on a seeded TestCluster, with a spy Search port that records
// the readable channel set the actor passes into the query and answers
// like an index would (only those channels of that workspace). Public
// channels, private channels, DMs, guests, leaving, removal by an admin,
// removal from the workspace, another workspace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chatActorTypes, routeOf, RecordingNotifier, type CommandOp, type Search, type SearchRequest } from '../../actors/index.ts';
import { TestCluster } from '../harness/index.ts';

const DOCS = new Map<string, string[]>(); // `${ws}/${ch}` -> texts
const calls: SearchRequest[] = [];
const spy: Search = {
  async search(req) {
    calls.push(req);
    const hits = req.channels.flatMap((ch) => (DOCS.get(`${req.ws}/${ch}`) ?? []).map((text, i) => ({ ch, seq: i + 1, user: 'x', ts: 0, text, hasFile: false, highlights: [] })));
    return { hits };
  },
};

let cluster: TestCluster;
let n = 0;
const cmid = () => `p${++n}`;
const send = <T = any>(cmd: { op: CommandOp; by: string; ws: string; [k: string]: unknown }): Promise<T> => {
  const { type, key } = routeOf(cmd.op, cmd as { by: string; ws: string });
  return cluster.run(cluster.ref(type, key).ask<T>(cmd));
};
const channelsOf = async (by: string, query = 'zebra', ws = 'w1') => {
  await send({ op: 'search', by, ws, query });
  return [...calls.at(-1)!.channels].sort();
};
const code = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

let general: string, secret: string, guestroom: string, dmBob: string, dmCarol: string;

before(async () => {
  cluster = await TestCluster.start({ nodes: 3, seed: 7, types: chatActorTypes({ notifier: new RecordingNotifier(), search: spy }) });
  await send({ op: 'createWorkspace', by: 'alice', ws: 'w1', name: 'W1', clientMsgId: cmid() });
  for (const [u, role] of [['bob', 'member'], ['carol', 'member'], ['gus', 'guest']] as const) {
    const inv = await send({ op: 'createInvite', by: 'alice', ws: 'w1', role, clientMsgId: cmid() });
    await send({ op: 'joinWorkspace', by: u, ws: 'w1', code: inv.code, clientMsgId: cmid() });
  }
  await send({ op: 'createWorkspace', by: 'mallory', ws: 'w2', name: 'W2', clientMsgId: cmid() });
  general = (await send({ op: 'createChannel', by: 'alice', ws: 'w1', name: 'general', kind: 'public', clientMsgId: cmid() })).ch;
  secret = (await send({ op: 'createChannel', by: 'alice', ws: 'w1', name: 'secret', kind: 'private', clientMsgId: cmid() })).ch;
  guestroom = (await send({ op: 'createChannel', by: 'alice', ws: 'w1', name: 'guestroom', kind: 'public', clientMsgId: cmid() })).ch;
  await send({ op: 'inviteToChannel', by: 'alice', ws: 'w1', ch: secret, user: 'bob', clientMsgId: cmid() });
  await send({ op: 'inviteToChannel', by: 'alice', ws: 'w1', ch: guestroom, user: 'gus', clientMsgId: cmid() });
  dmBob = (await send({ op: 'openDm', by: 'alice', ws: 'w1', users: ['bob'], clientMsgId: cmid() })).ch;
  dmCarol = (await send({ op: 'openDm', by: 'alice', ws: 'w1', users: ['carol'], clientMsgId: cmid() })).ch;
  for (const ch of [general, secret, guestroom, dmBob, dmCarol]) DOCS.set(`w1/${ch}`, [`zebra in ${ch}`]);
  DOCS.set(`w2/${general}`, ['zebra in the other workspace']);
});
after(async () => {
  await cluster?.stop();
});

test('members read public channels, their private channels and their own DMs; never the DMs of others', async () => {
  assert.deepEqual(await channelsOf('bob'), [general, secret, guestroom, dmBob].sort());
  assert.deepEqual(await channelsOf('carol'), [general, guestroom, dmCarol].sort());
  assert.deepEqual(await channelsOf('alice'), [general, secret, guestroom, dmBob, dmCarol].sort());
  const page = await send<{ hits: Array<{ ch: string; text: string }> }>({ op: 'search', by: 'carol', ws: 'w1', query: 'zebra' });
  assert.ok(page.hits.every((h) => h.ch !== dmBob && h.ch !== secret));
  assert.ok(calls.every((c) => c.ws === 'w1'), 'every search names the caller\'s workspace');
});

test('a guest reads only the channels it was invited to', async () => {
  assert.deepEqual(await channelsOf('gus'), [guestroom]);
});

test('leaving, or being removed from, a private channel ends its visibility at once', async () => {
  await send({ op: 'inviteToChannel', by: 'alice', ws: 'w1', ch: secret, user: 'carol', clientMsgId: cmid() });
  assert.ok((await channelsOf('carol')).includes(secret));
  await send({ op: 'removeFromChannel', by: 'alice', ws: 'w1', ch: secret, user: 'carol', clientMsgId: cmid() });
  assert.ok(!(await channelsOf('carol')).includes(secret), 'removed by an admin');
  await send({ op: 'leaveChannel', by: 'bob', ws: 'w1', ch: secret, clientMsgId: cmid() });
  assert.deepEqual(await channelsOf('bob'), [general, guestroom, dmBob].sort(), 'left');
  const before = calls.length;
  for (const q of [`zebra in:${secret}`, 'zebra in:secret']) {
    const empty = await send<{ hits: unknown[] }>({ op: 'search', by: 'bob', ws: 'w1', query: q });
    assert.deepEqual(empty.hits, [], `${q}: in: cannot reach it either`);
  }
  assert.equal(calls.length, before, 'no readable channel in scope: the index is not even asked');
});

test('in: narrows by name or id; an empty query asks nothing', async () => {
  assert.deepEqual(await channelsOf('alice', 'zebra in:General'), [general]);
  assert.deepEqual(await channelsOf('alice', `in:${dmCarol}`), [dmCarol]);
  const before = calls.length;
  assert.deepEqual((await send<{ hits: unknown[] }>({ op: 'search', by: 'alice', ws: 'w1', query: '  ' })).hits, []);
  assert.equal(calls.length, before);
});

test('another workspace, or a workspace one was removed from, is refused', async () => {
  assert.equal(await code(send({ op: 'search', by: 'bob', ws: 'w2', query: 'zebra' })), 'CHAT_NOT_MEMBER');
  assert.equal(await code(send({ op: 'search', by: 'mallory', ws: 'w1', query: 'zebra' })), 'CHAT_NOT_MEMBER');
  await send({ op: 'removeMember', by: 'alice', ws: 'w1', user: 'carol', clientMsgId: cmid() });
  assert.equal(await code(send({ op: 'search', by: 'carol', ws: 'w1', query: 'zebra' })), 'CHAT_NOT_MEMBER');
});

test('without a Search port the op answers CHAT_INVALID', async () => {
  const bare = await TestCluster.start({ nodes: 1, seed: 1, types: chatActorTypes({ notifier: new RecordingNotifier() }) });
  try {
    await bare.run(bare.ref('workspace', 'w9').ask({ op: 'createWorkspace', by: 'a', ws: 'w9', name: 'W', clientMsgId: 'x' }));
    await assert.rejects(bare.run(bare.ref('user', 'w9.a').ask({ op: 'search', by: 'a', ws: 'w9', query: 'hi' })), (e: { code?: string }) => e.code === 'CHAT_INVALID');
  } finally {
    await bare.stop();
  }
});
