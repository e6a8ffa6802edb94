/**
 * Team chat end to end over real WebSockets on the embedded profile: DMs,
 * threads, edits and deletes, reactions, read cursors and unread counts,
 * presence across devices. Every user signs in through the dev sign-in and
 * talks through the SDK (client/sdk.ts), as the demo page does.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { embeddedNode } from '../edge/fixture.ts';
import { closeAll, connectWith, device, person, rawSocket, record, refused, waitFor, WS, type Person } from './helpers.ts';

type Node = Awaited<ReturnType<typeof embeddedNode>>;
type Msg = { seq: number; user: string; text?: string; parent?: number; replyCount?: number; deleted?: true; editedAt?: number; reactions?: Record<string, string[]> };

describe('chat features end to end (embedded profile)', () => {
  let node: Node;
  const sign = (user: string): Promise<Person> => person(node, user);
  before(async () => { node = await embeddedNode(); });
  after(async () => {
    closeAll();
    await node[Symbol.asyncDispose]();
  });

  test('DMs: both sides see the messages live and in history, a third member cannot read or write them', async () => {
    const ada = await sign('dm-ada');
    const bob = await sign('dm-bob');
    const cat = await sign('dm-cat');
    const dm = await ada.client.request<{ ch: string; members: string[]; created: boolean }>('openDm', { ws: WS, users: ['dm-bob'], clientMsgId: 'dm-1' });
    assert.deepEqual(dm.members, ['dm-ada', 'dm-bob']);
    assert.match(dm.ch, /^dm-/);
    // the same pair gets the same DM from either side
    const again = await bob.client.request<{ ch: string; created: boolean }>('openDm', { ws: WS, users: ['dm-ada'], clientMsgId: 'dm-2' });
    assert.equal(again.ch, dm.ch);
    assert.equal(again.created, false);
    // bob learns of it through a user event and finds it in listChannels
    await waitFor(() => bob.events.some((e) => e.type === 'channel_joined' && e.ch === dm.ch && e.kind === 'dm'));
    const listed = await bob.client.request<Array<{ ch: string; kind: string; members?: string[] }>>('listChannels', { ws: WS });
    assert.deepEqual(listed.find((c) => c.ch === dm.ch)?.members, ['dm-ada', 'dm-bob']);
    assert.ok(!(await cat.client.request<Array<{ ch: string }>>('listChannels', { ws: WS })).some((c) => c.ch === dm.ch), 'a DM is not listed to others');

    const onAda = await record(ada.client, dm.ch);
    const onBob = await record(bob.client, dm.ch);
    const a = await ada.client.post(WS, dm.ch, 'psst, bob');
    const b = await bob.client.post(WS, dm.ch, 'hi ada');
    await waitFor(() => onAda.seqs().length === 2 && onBob.seqs().length === 2);
    assert.deepEqual(onAda.seqs(), [a.seq, b.seq]);
    assert.deepEqual(onBob.seqs(), [a.seq, b.seq]);
    // a DM notifies the other member (kind 'dm'), not the author
    await waitFor(() => bob.events.some((e) => e.type === 'mention' && e.ch === dm.ch && e.kind === 'dm' && e.from === 'dm-ada'));
    await waitFor(() => ada.events.some((e) => e.type === 'mention' && e.ch === dm.ch && e.from === 'dm-bob'));
    assert.ok(!ada.events.some((e) => e.type === 'mention' && e.ch === dm.ch && e.from === 'dm-ada'));
    const page = await bob.client.request<{ messages: Msg[] }>('history', { ws: WS, ch: dm.ch });
    assert.deepEqual(page.messages.map((m) => m.text), ['hi ada', 'psst, bob']);

    const outside = ['CHAT_NOT_MEMBER', 'CHAT_FORBIDDEN'];
    await refused(cat.client.request('history', { ws: WS, ch: dm.ch }), outside, 'history');
    await refused(cat.client.request('since', { ws: WS, ch: dm.ch, seq: 0 }), outside, 'since');
    await refused(cat.client.request('thread', { ws: WS, ch: dm.ch, parent: a.seq }), outside, 'thread');
    await refused(cat.client.request('channelInfo', { ws: WS, ch: dm.ch }), outside, 'channelInfo');
    await refused(cat.client.subscribe(WS, dm.ch, () => {}), outside, 'subscribe');
    await refused(cat.client.subscribe(WS, dm.ch, () => {}, { seq: 0 }), outside, 'subscribe with seq');
    await refused(cat.client.post(WS, dm.ch, 'let me in'), outside, 'post');
    await refused(cat.client.request('react', { ws: WS, ch: dm.ch, seq: a.seq, emoji: 'eyes', clientMsgId: 'r' }), outside, 'react');
    await refused(cat.client.request('joinChannel', { ws: WS, ch: dm.ch, clientMsgId: 'j' }), outside, 'joinChannel');
    await refused(cat.client.request('inviteToChannel', { ws: WS, ch: dm.ch, user: 'dm-cat', clientMsgId: 'i' }), outside, 'inviteToChannel');
    // a group DM with the same two people plus cat is another channel, and does not open theirs
    const group = await cat.client.request<{ ch: string; members: string[] }>('openDm', { ws: WS, users: ['dm-ada', 'dm-bob'], clientMsgId: 'g' });
    assert.notEqual(group.ch, dm.ch);
    assert.equal((await cat.client.request<{ messages: Msg[] }>('history', { ws: WS, ch: group.ch })).messages.length, 0);
  });

  test('threads: replies stay out of history, carry the thread summary live, and are counted on the parent', async () => {
    const ada = await sign('th-ada');
    const bob = await sign('th-bob');
    const ch = ada.channels[1]!;
    const onBob = await record(bob.client, ch);
    const parent = await ada.client.post(WS, ch, 'thread parent');
    const r1 = await bob.client.post(WS, ch, 'reply 1', { parent: parent.seq });
    const r2 = await ada.client.post(WS, ch, 'reply 2', { parent: parent.seq });
    const r3 = await bob.client.post(WS, ch, 'reply 3', { parent: parent.seq });
    await waitFor(() => onBob.seqs().includes(r3.seq));
    const live = onBob.of('message').filter((e) => (e.message as Msg).parent === parent.seq);
    assert.deepEqual(live.map((e) => (e.thread as { replyCount: number }).replyCount), [1, 2, 3], 'each reply event carries the new reply count');
    const t = await bob.client.request<{ parent: Msg; replies: Msg[] }>('thread', { ws: WS, ch, parent: parent.seq });
    assert.equal(t.parent.replyCount, 3);
    assert.deepEqual(t.replies.map((m) => m.seq), [r1.seq, r2.seq, r3.seq]);
    const after1 = await bob.client.request<{ replies: Msg[] }>('thread', { ws: WS, ch, parent: parent.seq, after: r1.seq });
    assert.deepEqual(after1.replies.map((m) => m.seq), [r2.seq, r3.seq]);
    const hist = await bob.client.request<{ messages: Msg[] }>('history', { ws: WS, ch, after: parent.seq - 1 });
    assert.deepEqual(hist.messages.map((m) => m.seq), [parent.seq], 'history holds top-level messages only');
    assert.equal(hist.messages[0]!.replyCount, 3);
    const since = await bob.client.request<{ messages: Msg[] }>('since', { ws: WS, ch, seq: parent.seq - 1 });
    assert.deepEqual(since.messages.map((m) => m.seq), [parent.seq, r1.seq, r2.seq, r3.seq], 'since carries replies too');
    await refused(ada.client.post(WS, ch, 'reply to a reply', { parent: r1.seq }), ['CHAT_INVALID'], 'nested reply');
    await refused(ada.client.post(WS, ch, 'reply to nothing', { parent: 999_999 }), ['CHAT_NOT_FOUND'], 'reply to a missing parent');
    await refused(ada.client.request('thread', { ws: WS, ch, parent: r1.seq }), ['CHAT_INVALID'], 'thread of a reply');
  });

  test('edits and deletes: the author and workspace admins may, other members are refused; subscribers see the changes', async () => {
    const ada = await sign('ed-ada');
    const bob = await sign('ed-bob');
    const owner = await ownerClient(node);
    const ch = ada.channels[0]!;
    const onBob = await record(bob.client, ch);
    const m1 = await ada.client.post(WS, ch, 'original text');
    const m2 = await ada.client.post(WS, ch, 'to be deleted by an admin');
    const m3 = await ada.client.post(WS, ch, 'to be edited by the owner');
    const m4 = await ada.client.post(WS, ch, 'deleted by its author');

    // other members: refused, nothing changes
    await refused(bob.client.request('edit', { ws: WS, ch, seq: m1.seq, text: 'bob was here', clientMsgId: 'e1' }), ['CHAT_FORBIDDEN'], 'edit by another member');
    await refused(bob.client.request('delete', { ws: WS, ch, seq: m1.seq, clientMsgId: 'd1' }), ['CHAT_FORBIDDEN'], 'delete by another member');
    // the author
    const e = await ada.client.request<{ seq: number; editedAt: number }>('edit', { ws: WS, ch, seq: m1.seq, text: 'edited by ada', clientMsgId: 'e2' });
    assert.equal(e.seq, m1.seq);
    await ada.client.request('delete', { ws: WS, ch, seq: m4.seq, clientMsgId: 'd2' });
    // the workspace owner edits; bob made admin deletes
    await owner.request('edit', { ws: WS, ch, seq: m3.seq, text: 'moderated', clientMsgId: 'e3' });
    await owner.request('setRole', { ws: WS, user: 'ed-bob', role: 'admin', clientMsgId: 'role-1' });
    await bob.client.request('delete', { ws: WS, ch, seq: m2.seq, clientMsgId: 'd3' });

    await waitFor(() => onBob.of('message_edited').length >= 2 && onBob.of('message_deleted').length >= 2);
    assert.deepEqual(onBob.of('message_edited').map((x) => [x.seq, x.text, x.by]), [[m1.seq, 'edited by ada', 'ed-ada'], [m3.seq, 'moderated', 'demo-owner']]);
    assert.deepEqual(onBob.of('message_deleted').map((x) => [x.seq, x.by]).sort(), [[m2.seq, 'ed-bob'], [m4.seq, 'ed-ada']].sort());
    const page = await ada.client.request<{ messages: Msg[] }>('history', { ws: WS, ch, after: m1.seq - 1 });
    const bySeq = new Map(page.messages.map((m) => [m.seq, m]));
    assert.equal(bySeq.get(m1.seq)!.text, 'edited by ada');
    assert.ok(bySeq.get(m1.seq)!.editedAt);
    assert.equal(bySeq.get(m3.seq)!.text, 'moderated');
    for (const s of [m2.seq, m4.seq]) {
      assert.equal(bySeq.get(s)!.deleted, true, 'a deleted message stays as a tombstone');
      assert.equal(bySeq.get(s)!.text, undefined, 'with no text');
    }
    // a tombstone cannot be edited or reacted to; deleting again is harmless
    await refused(ada.client.request('edit', { ws: WS, ch, seq: m4.seq, text: 'back', clientMsgId: 'e4' }), ['CHAT_NOT_FOUND'], 'edit a deleted message');
    await refused(ada.client.request('react', { ws: WS, ch, seq: m4.seq, emoji: 'eyes', clientMsgId: 'r4' }), ['CHAT_NOT_FOUND'], 'react to a deleted message');
    assert.deepEqual(await ada.client.request('delete', { ws: WS, ch, seq: m4.seq, clientMsgId: 'd4' }), { seq: m4.seq, deleted: true });
  });

  test('reactions: once per user and emoji, unreact, live updates with the resulting users', async () => {
    const ada = await sign('re-ada');
    const bob = await sign('re-bob');
    const ch = ada.channels[1]!;
    const onAda = await record(ada.client, ch);
    const m = await ada.client.post(WS, ch, 'react to me');
    const react = (p: Person, emoji: string, op = 'react') => p.client.request<{ users: string[] }>(op, { ws: WS, ch, seq: m.seq, emoji, clientMsgId: `${op}-${emoji}-${p.user}-${Math.random()}` });
    assert.deepEqual((await react(bob, '+1')).users, ['re-bob']);
    assert.deepEqual((await react(bob, '+1')).users, ['re-bob'], 'a second +1 by the same user changes nothing');
    assert.deepEqual((await react(ada, '+1')).users, ['re-bob', 're-ada']);
    assert.deepEqual((await react(ada, 'heart')).users, ['re-ada']);
    assert.deepEqual((await react(bob, '+1', 'unreact')).users, ['re-ada']);
    await refused(react(ada, 'Not An Emoji!'), ['CHORUS_BAD_MESSAGE'], 'a bad emoji name');
    await waitFor(() => onAda.of('reaction').length >= 4);
    const last = onAda.of('reaction').filter((e) => e.emoji === '+1').at(-1)!;
    assert.deepEqual(last.users, ['re-ada']);
    const page = await bob.client.request<{ messages: Msg[] }>('history', { ws: WS, ch, after: m.seq - 1 });
    assert.deepEqual(page.messages[0]!.reactions, { '+1': ['re-ada'], heart: ['re-ada'] });
  });

  test('read cursors and unread counts: unreads, mention counts, markRead, and the read event on other devices', async () => {
    const ada = await sign('rd-ada');
    const bob = await sign('rd-bob');
    const ch = ada.channels[1]!;
    const adaPhone = await device(node, ada, 'phone');
    const phoneEvents: Array<Record<string, unknown>> = [];
    adaPhone.onEvent((e) => phoneEvents.push(e));
    // ada catches up first, so the counts below are exactly bob's new posts
    const start = (await ada.client.request<Array<{ ch: string; latestSeq: number }>>('unreads', { ws: WS })).find((u) => u.ch === ch)!;
    await ada.client.request('markRead', { ws: WS, ch, seq: start.latestSeq, clientMsgId: 'mr-0' });
    const p1 = await bob.client.post(WS, ch, 'plain one');
    const p2 = await bob.client.post(WS, ch, 'hey <@rd-ada>, look');
    await bob.client.post(WS, ch, 'a reply is not an unread top-level message', { parent: p1.seq });
    const p4 = await bob.client.post(WS, ch, '<!channel> everyone');
    await ada.client.post(WS, ch, 'my own message does not count');
    await waitFor(() => ada.events.some((e) => e.type === 'mention' && e.seq === p2.seq));
    const m = ada.events.find((e) => e.type === 'mention' && e.seq === p2.seq)!;
    assert.equal(m.kind, 'mention');
    assert.equal(m.from, 'rd-bob');
    assert.equal(m.preview, 'hey <@rd-ada>, look');
    await waitFor(() => ada.events.some((e) => e.type === 'mention' && e.seq === p4.seq && e.kind === 'channel'));
    assert.ok(!bob.events.some((e) => e.type === 'mention' && e.seq === p4.seq), 'the author is not notified of their own <!channel>');

    const entry = (await ada.client.request<Array<{ ch: string; unread: number; mentions: number; readSeq: number; latestSeq: number; name: string }>>('unreads', { ws: WS })).find((u) => u.ch === ch)!;
    assert.equal(entry.name, 'random');
    assert.equal(entry.readSeq, start.latestSeq);
    assert.equal(entry.unread, 3, 'three top-level messages from others');
    assert.equal(entry.mentions, 2, 'the direct mention and <!channel>');

    // read up to p2: one unread left (p4), mentions after the cursor only
    const r = await ada.client.request<{ seq: number; mentions: number }>('markRead', { ws: WS, ch, seq: p2.seq, clientMsgId: 'mr-1' });
    assert.equal(r.seq, p2.seq);
    assert.equal(r.mentions, 1);
    await waitFor(() => phoneEvents.some((e) => e.type === 'read' && e.ch === ch && e.seq === p2.seq), { what: 'the read event on the other device' });
    const mid = (await adaPhone.request<Array<{ ch: string; unread: number; mentions: number }>>('unreads', { ws: WS })).find((u) => u.ch === ch)!;
    assert.deepEqual([mid.unread, mid.mentions], [1, 1]);
    // the cursor never moves back
    const back = await ada.client.request<{ seq: number }>('markRead', { ws: WS, ch, seq: 1, clientMsgId: 'mr-2' });
    assert.equal(back.seq, p2.seq);
    // read everything
    const latest = (await ada.client.request<{ latestSeq: number }>('channelInfo', { ws: WS, ch })).latestSeq;
    await ada.client.request('markRead', { ws: WS, ch, seq: latest, clientMsgId: 'mr-3' });
    const done = (await ada.client.request<Array<{ ch: string; unread: number; mentions: number }>>('unreads', { ws: WS })).find((u) => u.ch === ch)!;
    assert.deepEqual([done.unread, done.mentions], [0, 0]);
    // nobody reads or moves another user's cursor
    await refused(bob.client.request('markRead', { ws: WS, user: 'rd-ada', ch, seq: 1, clientMsgId: 'x' }), ['CHAT_FORBIDDEN'], 'markRead for someone else');
    await refused(bob.client.request('unreads', { ws: WS, user: 'rd-ada' }), ['CHAT_FORBIDDEN'], 'unreads of someone else');
  });

  test('presence across two devices: online while either is connected, offline after both close', async () => {
    const watcher = await sign('pr-watch');
    const bystander = await sign('pr-by'); // a member who watches nobody's presence
    // presence is not broadcast: the watcher names the users it shows (the reply has their state now)
    const now = await watcher.client.presenceSub(WS, ['pr-ada', 'pr-by']);
    assert.deepEqual(now.sort((x, y) => x.user.localeCompare(y.user)), [{ user: 'pr-ada', presence: 'offline' }, { user: 'pr-by', presence: 'online' }]);
    const laptop = await person(node, 'pr-ada');
    const phone = await rawSocket(node.url, laptop.token); // a second device of the same user
    const presenceOf = async () => (await watcher.client.request<{ presence: string }>('getPresence', { ws: WS, user: 'pr-ada' })).presence;
    const events = () => watcher.events.filter((e) => e.type === 'presence' && e.user === 'pr-ada').map((e) => e.presence);
    await waitFor(async () => (await presenceOf()) === 'online', { what: 'online' });
    await waitFor(() => events().includes('online'));
    laptop.client.close();
    // one device left: still online, and no offline event in between
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await presenceOf(), 'online');
    assert.deepEqual(events(), ['online']);
    // the second device goes away without a close frame (a dropped network): offline all the same
    phone.ws.terminate();
    const t0 = Date.now();
    // the edge tells the user actor when a socket closes; the session TTL (60 s) is only the backstop for a lost tell
    await waitFor(() => events().at(-1) === 'offline', { timeoutMs: 65_000, what: 'offline event' });
    const offlineAfterMs = Date.now() - t0;
    assert.equal(await presenceOf(), 'offline');
    assert.ok(offlineAfterMs < 5000, `offline ${offlineAfterMs} ms after the last device dropped`);
    // back online with a new connection; away when set away
    const again = await connectWith(node.url, laptop.token);
    await waitFor(() => events().at(-1) === 'online');
    await again.request('setAway', { ws: WS, away: true, clientMsgId: 'away-1' });
    await waitFor(() => events().at(-1) === 'away');
    assert.deepEqual(events(), ['online', 'offline', 'online', 'away']);
    assert.deepEqual(bystander.events.filter((e) => e.type === 'presence'), [], 'no presence events without a presenceSub');
    // watching again the same list reads nobody again; an empty list stops the events
    assert.deepEqual(await watcher.client.presenceSub(WS, ['pr-ada', 'pr-by']), []);
    await watcher.client.presenceSub(WS, []);
    await again.request('setAway', { ws: WS, away: false, clientMsgId: 'away-2' });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(events(), ['online', 'offline', 'online', 'away']);
  });

  test('a presence watch outlives a reconnect: the SDK watches again and emits the current presence; changes made while it was away are not lost', async () => {
    const watcher = await sign('pw-watch');
    const other = await sign('pw-bob');
    assert.deepEqual(await watcher.client.presenceSub(WS, ['pw-bob']), [{ user: 'pw-bob', presence: 'online' }]);
    // the watcher's socket drops; meanwhile bob goes away
    const sock = (watcher.client as unknown as { socket: { close(code: number, reason: string): void } }).socket;
    await new Promise<void>((resolve) => {
      const off = watcher.client.onEvent((e) => { if (e.type === 'disconnected') { off(); resolve(); } });
      sock.close(4000, 'test: drop');
    });
    await other.client.request('setAway', { ws: WS, away: true, clientMsgId: 'pw-away' });
    await waitFor(() => watcher.events.some((e) => e.type === 'reconnected'), { what: 'reconnect' });
    await waitFor(() => watcher.events.some((e) => e.type === 'presence' && e.user === 'pw-bob' && e.presence === 'away'), { what: 'bob away after the reconnect' });
    // and live changes flow again on the new socket
    await other.client.request('setAway', { ws: WS, away: false, clientMsgId: 'pw-back' });
    await waitFor(() => watcher.events.filter((e) => e.type === 'presence' && e.user === 'pw-bob').at(-1)?.presence === 'online', { what: 'bob back online' });
  });
});

/** The demo workspace's owner, with a token signed by the node. */
function ownerClient(node: Node) {
  return connectWith(node.url, node.signer.sign({ sub: 'demo-owner', ws: [WS] }));
}
