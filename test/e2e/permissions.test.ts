/**
 * Every permission boundary tried from outside, over real WebSockets on the
 * embedded profile: another workspace's channels (with a token that does not
 * grant the workspace, and with one that does but from a non-member), a
 * private channel, someone else's DM, other users' own state, and a member
 * removed from a channel. Reads (history, since, thread, channelInfo,
 * channelMembers), writes, and subscriptions (with and without a seq) are
 * all tried, and the intruder's socket is checked to have received none of
 * the protected text, also while the owners post concurrently.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { embeddedNode } from '../edge/fixture.ts';
import { closeAll, connectWith, person, rawSocket, record, waitFor, WS, type Person } from './helpers.ts';

type Node = Awaited<ReturnType<typeof embeddedNode>>;
type Raw = Awaited<ReturnType<typeof rawSocket>>;
const OUTSIDE = ['CHAT_NOT_MEMBER', 'CHAT_FORBIDDEN'];

/** Sends `op` and asserts the reply is an error with one of `codes`. */
async function deny(raw: Raw, op: string, params: Record<string, unknown>, codes: readonly string[]): Promise<void> {
  const r = await raw.ask(op, { clientMsgId: `${op}-${Math.random().toString(36).slice(2)}`, ...params });
  assert.equal(r.ok, false, `${op} ${JSON.stringify(params)} must be refused, got ${JSON.stringify(r.result)?.slice(0, 200)}`);
  assert.ok(codes.includes(r.error.code), `${op} ${JSON.stringify(params)}: expected ${codes.join('|')}, got ${r.error.code}`);
}

/** Every channel op an outsider might try, each refused. */
async function denyChannel(raw: Raw, ws: string, ch: string, seq: number, codes: readonly string[]): Promise<void> {
  const c = { ws, ch };
  for (const [op, extra] of [
    ['history', {}], ['history', { after: 0, order: 'oldest' }], ['since', { seq: 0 }], ['since', { seq: Math.max(0, seq - 1) }],
    ['thread', { parent: seq }], ['channelInfo', {}], ['channelMembers', {}],
    ['subscribe', {}], ['subscribe', { seq: 0 }],
    ['post', { text: 'let me in' }], ['post', { text: 'a reply', parent: seq }], ['edit', { seq, text: 'mine now' }], ['delete', { seq }],
    ['react', { seq, emoji: 'eyes' }], ['unreact', { seq, emoji: 'eyes' }], ['pin', { seq }], ['setTopic', { topic: 'pwned' }], ['typing', {}],
    ['inviteToChannel', { user: 'intruder' }], ['leaveChannel', {}],
  ] as const) await deny(raw, op, { ...c, ...extra }, codes);
  await deny(raw, 'joinChannel', c, codes);
}

describe('permission boundaries, tried from outside', () => {
  let node: Node;
  let ada: Person;
  let bob: Person;
  let eve: Person;
  let priv: string;
  let dm: string;
  let privSeq: number;
  let dmSeq: number;
  let otherSeq: number;
  const SECRETS = ['TOP-SECRET', 'DM-SECRET', 'OTHER-WS-SECRET'];

  before(async () => {
    node = await embeddedNode();
    ada = await person(node, 'pm-ada');
    bob = await person(node, 'pm-bob');
    eve = await person(node, 'pm-eve');
    priv = (await ada.client.request<{ ch: string }>('createChannel', { ws: WS, name: 'pm-private', kind: 'private', clientMsgId: 'p1' })).ch;
    await ada.client.request('inviteToChannel', { ws: WS, ch: priv, user: 'pm-bob', clientMsgId: 'inv-bob' });
    privSeq = (await ada.client.post(WS, priv, 'TOP-SECRET plans')).seq;
    await bob.client.post(WS, priv, 'TOP-SECRET reply', { parent: privSeq });
    dm = (await ada.client.request<{ ch: string }>('openDm', { ws: WS, users: ['pm-bob'], clientMsgId: 'dm' })).ch;
    dmSeq = (await bob.client.post(WS, dm, 'DM-SECRET between us')).seq;
    // another workspace, owned by zed
    const zed = await connectWith(node.url, node.signer.sign({ sub: 'pm-zed', ws: ['other'] }));
    await zed.request('createWorkspace', { ws: 'other', name: 'Other', clientMsgId: 'ow' });
    const { ch } = await zed.request<{ ch: string }>('createChannel', { ws: 'other', name: 'general', kind: 'public', clientMsgId: 'oc' });
    assert.equal(ch, 'c1');
    otherSeq = (await zed.post('other', ch, 'OTHER-WS-SECRET roadmap')).seq;
  });
  after(async () => {
    closeAll();
    await node[Symbol.asyncDispose]();
  });

  test("another workspace: a token that does not grant it is refused at the edge, whatever the op", async () => {
    const raw = await rawSocket(node.url, eve.token); // ws: ['demo']
    for (const [op, p] of [
      ['history', { ch: 'c1' }], ['since', { ch: 'c1', seq: 0 }], ['thread', { ch: 'c1', parent: otherSeq }], ['channelInfo', { ch: 'c1' }],
      ['subscribe', { ch: 'c1' }], ['subscribe', { ch: 'c1', seq: 0 }], ['post', { ch: 'c1', text: 'hi' }], ['listChannels', {}], ['listMembers', {}],
      ['workspaceInfo', {}], ['getProfile', { user: 'pm-zed' }], ['getPresence', { user: 'pm-zed' }], ['joinWorkspace', { code: 'abcdef' }],
      ['openDm', { users: ['pm-zed'] }], ['createChannel', { name: 'mine', kind: 'public' }], ['markRead', { ch: 'c1', seq: 1 }],
    ] as const) await deny(raw, op, { ws: 'other', ...p }, ['AUTH_FORBIDDEN']);
    assert.ok(!raw.texts.some((t) => SECRETS.some((s) => t.includes(s))), 'nothing protected reached the intruder');
  });

  test('another workspace: a token for any workspace still gets nothing without membership', async () => {
    const anyWs = node.signer.sign({ sub: 'pm-eve', ws: ['*'] });
    const raw = await rawSocket(node.url, anyWs);
    await denyChannel(raw, 'other', 'c1', otherSeq, ['CHAT_NOT_MEMBER']);
    for (const [op, p] of [
      ['listChannels', {}], ['listMembers', {}], ['workspaceInfo', {}], ['getProfile', { user: 'pm-zed' }], ['getPresence', { user: 'pm-zed' }],
      ['openDm', { users: ['pm-zed'] }], ['createChannel', { name: 'mine', kind: 'public' }], ['createInvite', { role: 'member' }],
      ['unreads', {}], ['me', {}], ['markRead', { ch: 'c1', seq: 1 }],
    ] as const) await deny(raw, op, { ws: 'other', ...p }, ['CHAT_NOT_MEMBER', 'CHAT_FORBIDDEN']);
    // an unknown channel answers an outsider the same way (no existence probe)
    await deny(raw, 'history', { ws: 'other', ch: 'c999' }, ['CHAT_NOT_MEMBER']);
    await deny(raw, 'createWorkspace', { ws: 'other', name: 'mine' }, ['CHAT_CONFLICT']);
    assert.ok(!raw.texts.some((t) => SECRETS.some((s) => t.includes(s))), 'nothing protected reached the intruder');
  });

  test('a private channel and a DM: a workspace member outside them gets no read, write or subscription', async () => {
    const raw = await rawSocket(node.url, eve.token);
    // the owners keep posting while the intruder tries: nothing may slip through a half-made subscription
    let posting = true;
    let posted = 0;
    const load = (async () => {
      for (let i = 0; posting; i++, posted += 2) {
        await ada.client.post(WS, priv, `TOP-SECRET live ${i}`);
        await bob.client.post(WS, dm, `DM-SECRET live ${i}`);
        await new Promise((r) => setTimeout(r, 80)); // under the edge's 20 frames/s per connection
      }
    })();
    try {
      await denyChannel(raw, WS, priv, privSeq, OUTSIDE);
      await denyChannel(raw, WS, dm, dmSeq, OUTSIDE);
      for (let i = 0; i < 10; i++) {
        await deny(raw, 'subscribe', { ws: WS, ch: priv, seq: 0 }, OUTSIDE);
        await deny(raw, 'subscribe', { ws: WS, ch: dm }, OUTSIDE);
      }
    } finally {
      posting = false;
      await load;
    }
    assert.ok(posted >= 10, `the owners posted meanwhile (${posted})`);
    await new Promise((r) => setTimeout(r, 200)); // anything still in flight would land now
    const list = (await raw.ask('listChannels', { ws: WS })).result as Array<{ ch: string }>;
    assert.ok(!list.some((c) => c.ch === priv || c.ch === dm), 'neither is listed');
    assert.ok(!raw.texts.some((t) => SECRETS.some((s) => t.includes(s))), 'nothing protected reached the intruder');
    assert.ok(!raw.frames.some((f) => f.type === 'event' && f.scope === 'channel'), 'no channel event at all');
  });

  test("other users' own state: cursors, unreads, profile, prefs and sessions are theirs only", async () => {
    const raw = await rawSocket(node.url, eve.token);
    for (const [op, p] of [
      ['markRead', { ch: priv, seq: 1 }], ['unreads', {}], ['me', {}], ['setAway', { away: true }], ['updateProfile', { displayName: 'Not Ada' }],
      ['setNotifyPrefs', { level: 'none' }],
    ] as const) await deny(raw, op, { ws: WS, user: 'pm-ada', ...p }, ['CHAT_FORBIDDEN']);
    // what members may see of each other
    assert.equal((await raw.ask('getProfile', { ws: WS, user: 'pm-ada' })).ok, true);
    assert.equal((await raw.ask('getPresence', { ws: WS, user: 'pm-ada' })).ok, true);
    // edge-only session ops are not client ops
    for (const op of ['sessionOpened', 'sessionClosed', 'sessionsRefresh', 'sessionIdle']) await deny(raw, op, { ws: WS, user: 'pm-ada', sessionId: 'x', node: 'n', device: 'd', sessionIds: [], idle: true }, ['EDGE_UNKNOWN_OP']);
    // workspace administration needs a role
    await deny(raw, 'removeMember', { ws: WS, user: 'pm-ada' }, ['CHAT_FORBIDDEN']);
    await deny(raw, 'setRole', { ws: WS, user: 'pm-eve', role: 'admin' }, ['CHAT_FORBIDDEN']);
    await deny(raw, 'createInvite', { ws: WS, role: 'admin' }, ['CHAT_FORBIDDEN']);
    await deny(raw, 'updateSettings', { ws: WS, allowMembersToInvite: true }, ['CHAT_FORBIDDEN']);
    await deny(raw, 'removeFromChannel', { ws: WS, ch: priv, user: 'pm-bob' }, OUTSIDE);
  });

  test('a member removed from a private channel stops receiving it at once and is refused afterwards', async () => {
    const cat = await person(node, 'pm-cat');
    await ada.client.request('inviteToChannel', { ws: WS, ch: priv, user: 'pm-cat', clientMsgId: 'inv-cat' });
    const onCat = await record(cat.client, priv);
    const before = await ada.client.post(WS, priv, 'TOP-SECRET cat may see this');
    await waitFor(() => onCat.seqs().includes(before.seq));
    const owner = await connectWith(node.url, node.signer.sign({ sub: 'demo-owner', ws: [WS] }));
    await owner.request('removeFromChannel', { ws: WS, ch: priv, user: 'pm-cat', clientMsgId: 'rm-cat' });
    await waitFor(() => onCat.events.some((e) => e.type === 'member_left' && e.user === 'pm-cat'));
    const afterSeq = (await ada.client.post(WS, priv, 'TOP-SECRET after cat left')).seq;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!onCat.seqs().includes(afterSeq), 'no delivery after member_left');
    await waitFor(() => cat.events.some((e) => e.type === 'channel_left' && e.ch === priv && e.reason === 'removed'));
    const raw = await rawSocket(node.url, cat.token);
    await deny(raw, 'history', { ws: WS, ch: priv }, OUTSIDE);
    await deny(raw, 'since', { ws: WS, ch: priv, seq: before.seq }, OUTSIDE);
    await deny(raw, 'subscribe', { ws: WS, ch: priv, seq: before.seq }, OUTSIDE);
    await deny(raw, 'post', { ws: WS, ch: priv, text: 'still here?' }, OUTSIDE);
    assert.ok(!raw.texts.some((t) => t.includes('after cat left')));
  });
});
