// Team chat end to end on a 3-node TestCluster: workspace, invites, channels,
// DMs, messages and everything done to them, history and catch-up, mentions,
// offline notifications, presence, read cursors and typing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channelSubject, userKey, presenceSubject, userSubject } from '../../actors/index.ts';
import { chatCluster, cmid, workspace } from './helpers.ts';

test('team chat end to end', async () => {
  const f = await chatCluster({ sessionTtlMs: 30_000 });
  const ws = 'acme';
  try {
    // workspace: the first caller owns it, a second create is a conflict, a replay is not
    const createId = cmid();
    const created = await f.send({ op: 'createWorkspace', by: 'ann', ws, name: 'Acme', clientMsgId: createId });
    assert.deepEqual(created, { ws, name: 'Acme', role: 'owner' });
    assert.deepEqual(await f.send({ op: 'createWorkspace', by: 'ann', ws, name: 'Acme', clientMsgId: createId }), created);
    await f.fails({ op: 'createWorkspace', by: 'bob', ws, name: 'Mine', clientMsgId: cmid() }, 'CHAT_CONFLICT');

    // invites
    const inv = await f.send({ op: 'createInvite', by: 'ann', ws, role: 'member', maxUses: 2, clientMsgId: cmid() });
    assert.equal((await f.send({ op: 'joinWorkspace', by: 'bob', ws, code: inv.code, clientMsgId: cmid() })).role, 'member');
    assert.equal((await f.send({ op: 'joinWorkspace', by: 'cat', ws, code: inv.code, clientMsgId: cmid() })).role, 'member');
    await f.fails({ op: 'joinWorkspace', by: 'dan', ws, code: inv.code, clientMsgId: cmid() }, 'CHAT_NOT_FOUND'); // used up
    await f.fails({ op: 'createInvite', by: 'bob', ws, role: 'member', clientMsgId: cmid() }, 'CHAT_FORBIDDEN');
    const short = await f.send({ op: 'createInvite', by: 'ann', ws, role: 'member', expiresInMs: 60_000, clientMsgId: cmid() });
    await f.cluster.advance(61_000);
    await f.fails({ op: 'joinWorkspace', by: 'dan', ws, code: short.code, clientMsgId: cmid() }, 'CHAT_FORBIDDEN'); // expired
    const ginv = await f.send({ op: 'createInvite', by: 'ann', ws, role: 'guest', clientMsgId: cmid() });
    await f.send({ op: 'joinWorkspace', by: 'gus', ws, code: ginv.code, clientMsgId: cmid() });
    await f.send({ op: 'setRole', by: 'ann', ws, user: 'bob', role: 'admin', clientMsgId: cmid() });
    await f.fails({ op: 'setRole', by: 'bob', ws, user: 'ann', role: 'member', clientMsgId: cmid() }, 'CHAT_FORBIDDEN');
    await f.fails({ op: 'removeMember', by: 'bob', ws, user: 'ann', clientMsgId: cmid() }, 'CHAT_FORBIDDEN');
    const members = await f.send<any[]>({ op: 'listMembers', by: 'cat', ws });
    assert.deepEqual(members.map((m) => `${m.user}:${m.role}`), ['ann:owner', 'bob:admin', 'cat:member', 'gus:guest']);
    assert.equal((await f.send({ op: 'workspaceInfo', by: 'gus', ws })).role, 'guest');

    // channels
    const general = await f.send({ op: 'createChannel', by: 'ann', ws, name: 'general', kind: 'public', clientMsgId: cmid() });
    const secret = await f.send({ op: 'createChannel', by: 'bob', ws, name: 'secret', kind: 'private', clientMsgId: cmid() });
    await f.fails({ op: 'createChannel', by: 'cat', ws, name: 'GENERAL', kind: 'public', clientMsgId: cmid() }, 'CHAT_CONFLICT');
    await f.fails({ op: 'createChannel', by: 'gus', ws, name: 'guests', kind: 'public', clientMsgId: cmid() }, 'CHAT_FORBIDDEN');
    const g = general.ch as string;
    const s = secret.ch as string;
    await f.send({ op: 'joinChannel', by: 'bob', ws, ch: g, clientMsgId: cmid() });
    await f.send({ op: 'joinChannel', by: 'cat', ws, ch: g, clientMsgId: cmid() });
    await f.fails({ op: 'joinChannel', by: 'cat', ws, ch: s, clientMsgId: cmid() }, 'CHAT_FORBIDDEN');
    await f.fails({ op: 'joinChannel', by: 'gus', ws, ch: g, clientMsgId: cmid() }, 'CHAT_FORBIDDEN');
    await f.send({ op: 'inviteToChannel', by: 'bob', ws, ch: s, user: 'cat', clientMsgId: cmid() });
    await f.send({ op: 'setTopic', by: 'ann', ws, ch: g, topic: 'all hands', clientMsgId: cmid() });
    const info = await f.send({ op: 'channelInfo', by: 'cat', ws, ch: g });
    assert.equal(info.topic, 'all hands');
    assert.equal(info.memberCount, 3);
    await f.cluster.eventually(async () => {
      const list = await f.send<any[]>({ op: 'listChannels', by: 'cat', ws });
      assert.deepEqual(list.map((c) => `${c.name}:${c.member}`), ['general:true', 'secret:true']);
    });
    const gusList = await f.send<any[]>({ op: 'listChannels', by: 'gus', ws });
    assert.deepEqual(gusList, [], 'a guest sees only channels it was invited to');

    // presence from sessions: cat online on two devices, ann connected then gone
    await f.send({ op: 'sessionOpened', by: 'cat', ws, sessionId: 's1', node: 'n1', device: 'web' });
    await f.send({ op: 'sessionOpened', by: 'cat', ws, sessionId: 's2', node: 'n2', device: 'phone' });
    assert.equal((await f.send({ op: 'getPresence', by: 'bob', ws, user: 'cat' })).presence, 'online');
    await f.send({ op: 'sessionIdle', by: 'cat', ws, sessionId: 's1', idle: true });
    assert.equal((await f.send({ op: 'getPresence', by: 'bob', ws, user: 'cat' })).presence, 'online');
    await f.send({ op: 'sessionIdle', by: 'cat', ws, sessionId: 's2', idle: true });
    assert.equal((await f.send({ op: 'getPresence', by: 'bob', ws, user: 'cat' })).presence, 'away');
    await f.send({ op: 'sessionIdle', by: 'cat', ws, sessionId: 's2', idle: false });
    await f.send({ op: 'sessionOpened', by: 'ann', ws, sessionId: 'a1', node: 'n3', device: 'web' });
    assert.equal((await f.send({ op: 'getPresence', by: 'cat', ws, user: 'ann' })).presence, 'online');

    // messages, with mentions: bob is mentioned and offline -> notifier; cat is mentioned and online -> no push
    const p1 = await f.send({ op: 'post', by: 'ann', ws, ch: g, text: 'hello <@bob> and <@cat> and <@nobody>', clientMsgId: cmid() });
    assert.equal(p1.seq, 1);
    const p2 = await f.send({ op: 'post', by: 'bob', ws, ch: g, text: 'hi ann', clientMsgId: cmid() });
    assert.equal(p2.seq, 2);
    const r1 = await f.send({ op: 'post', by: 'cat', ws, ch: g, text: 'replying in thread', parent: 1, clientMsgId: cmid() });
    assert.equal(r1.seq, 3);
    await f.send({ op: 'post', by: 'bob', ws, ch: g, text: 'me too', parent: 1, clientMsgId: cmid() });
    await f.fails({ op: 'post', by: 'bob', ws, ch: g, text: 'nested', parent: 3, clientMsgId: cmid() }, 'CHAT_INVALID');
    await f.send({ op: 'post', by: 'ann', ws, ch: g, text: 'announcement <!channel>', clientMsgId: cmid() }); // seq 5
    await f.cluster.eventually(() => assert.equal(f.notifier.for(userKey(ws, 'bob')).length, 2));
    assert.deepEqual(f.notifier.for(userKey(ws, 'bob')).map((n) => n.seq), [1, 5]);
    assert.equal(f.notifier.for(userKey(ws, 'cat')).length, 0, 'online users get no push');
    assert.equal(f.notifier.for(userKey(ws, 'ann')).length, 0, 'the author is never notified');
    const live = f.on(channelSubject(ws, g), 'message');
    assert.deepEqual(live.map((e) => e.seq), [1, 2, 3, 4, 5]);
    assert.deepEqual(live[0].message.mentions, ['bob', 'cat']);
    assert.deepEqual(live[3].thread, { parent: 1, replyCount: 2, lastReplyAt: live[3].message.ts });

    // edits, deletes, reactions, pins
    await f.send({ op: 'edit', by: 'bob', ws, ch: g, seq: 2, text: 'hi ann (edited)', clientMsgId: cmid() });
    await f.fails({ op: 'edit', by: 'cat', ws, ch: g, seq: 2, text: 'hijack', clientMsgId: cmid() }, 'CHAT_FORBIDDEN');
    await f.send({ op: 'react', by: 'cat', ws, ch: g, seq: 2, emoji: '+1', clientMsgId: cmid() });
    await f.send({ op: 'react', by: 'ann', ws, ch: g, seq: 2, emoji: '+1', clientMsgId: cmid() });
    await f.send({ op: 'react', by: 'ann', ws, ch: g, seq: 2, emoji: '+1', clientMsgId: cmid() }); // once per user and emoji
    await f.send({ op: 'unreact', by: 'cat', ws, ch: g, seq: 2, emoji: '+1', clientMsgId: cmid() });
    await f.send({ op: 'pin', by: 'cat', ws, ch: g, seq: 1, clientMsgId: cmid() });
    await f.send({ op: 'post', by: 'cat', ws, ch: g, text: 'oops', clientMsgId: cmid() }); // seq 6
    await f.fails({ op: 'delete', by: 'bob', ws, ch: 'nope', seq: 6, clientMsgId: cmid() }, 'CHAT_NOT_FOUND');
    await f.send({ op: 'delete', by: 'bob', ws, ch: g, seq: 6, clientMsgId: cmid() }); // bob is an admin
    await f.fails({ op: 'react', by: 'ann', ws, ch: g, seq: 6, emoji: 'x', clientMsgId: cmid() }, 'CHAT_NOT_FOUND');

    // history pages by seq, top-level only, tombstones kept
    const page1 = await f.send({ op: 'history', by: 'cat', ws, ch: g, limit: 2 });
    assert.deepEqual(page1.messages.map((m: any) => m.seq), [6, 5]);
    assert.equal(page1.messages[0].deleted, true);
    assert.equal(page1.messages[0].text, undefined);
    assert.equal(page1.hasMore, true);
    const page2 = await f.send({ op: 'history', by: 'cat', ws, ch: g, before: 5, limit: 2 });
    assert.deepEqual(page2.messages.map((m: any) => m.seq), [2, 1]);
    assert.equal(page2.hasMore, false);
    assert.deepEqual(page2.messages[0].reactions, { '+1': ['ann'] });
    assert.equal(page2.messages[0].text, 'hi ann (edited)');
    assert.equal(page2.messages[1].pinned, true);
    assert.equal(page2.messages[1].replyCount, 2);
    const oldest = await f.send({ op: 'history', by: 'cat', ws, ch: g, after: 0, limit: 3 });
    assert.deepEqual(oldest.messages.map((m: any) => m.seq), [1, 2, 5]);
    const thread = await f.send({ op: 'thread', by: 'bob', ws, ch: g, parent: 1 });
    assert.deepEqual(thread.replies.map((m: any) => m.seq), [3, 4]);

    // reconnect catch-up: exactly the messages after 4, gapless, plus the updates since
    const since = await f.send({ op: 'since', by: 'cat', ws, ch: g, seq: 4 });
    assert.deepEqual(since.messages.map((m: any) => m.seq), [5, 6]);
    assert.equal(since.latestSeq, 6);
    assert.equal(since.resync, false);
    assert.ok(since.updates.some((u: any) => u.type === 'message_deleted' && u.seq === 6));
    assert.ok(since.updates.every((u: any) => u.atSeq >= 4));
    assert.deepEqual((await f.send({ op: 'since', by: 'cat', ws, ch: g, seq: 6 })).messages, []);
    assert.equal((await f.send({ op: 'since', by: 'cat', ws, ch: g, seq: 99 })).resync, true);

    // DMs: deterministic id, members only, DM notifies offline members
    const dm = await f.send({ op: 'openDm', by: 'cat', ws, users: ['bob'], clientMsgId: cmid() });
    const again = await f.send({ op: 'openDm', by: 'bob', ws, users: ['cat'], clientMsgId: cmid() });
    assert.equal(dm.ch, again.ch);
    assert.match(dm.ch, /^dm-[a-z0-9]+$/);
    assert.ok(dm.ch.length <= 64);
    await f.send({ op: 'post', by: 'cat', ws, ch: dm.ch, text: 'psst', clientMsgId: cmid() });
    await f.cluster.eventually(() => assert.equal(f.notifier.for(userKey(ws, 'bob')).filter((n) => n.ch === dm.ch).length, 1));
    await f.fails({ op: 'leaveChannel', by: 'cat', ws, ch: dm.ch, clientMsgId: cmid() }, 'CHAT_FORBIDDEN');

    // mention counts and read cursors; unread from the channel's latest seq
    await f.cluster.eventually(async () => {
      const u = await f.send<any[]>({ op: 'unreads', by: 'bob', ws });
      const gen = u.find((e) => e.ch === g)!;
      assert.equal(gen.mentions, 2);
      assert.equal(gen.latestSeq, 6);
      assert.equal(u.find((e) => e.ch === dm.ch)!.mentions, 1);
    });
    const read = await f.send({ op: 'markRead', by: 'bob', ws, ch: g, seq: 4, clientMsgId: cmid() });
    assert.deepEqual(read, { ch: g, seq: 4, mentions: 1 });
    const back = await f.send({ op: 'markRead', by: 'bob', ws, ch: g, seq: 2, clientMsgId: cmid() });
    assert.equal(back.seq, 4, 'cursors never move back');
    const u2 = await f.send<any[]>({ op: 'unreads', by: 'bob', ws });
    const gen2 = u2.find((e) => e.ch === g)!;
    assert.equal(gen2.readSeq, 4);
    assert.equal(gen2.mentions, 1);
    assert.equal(gen2.unread, 1, 'seq 5 is unread; 6 is deleted');
    await f.send({ op: 'markRead', by: 'bob', ws, ch: g, seq: 6, clientMsgId: cmid() });
    assert.equal((await f.send<any[]>({ op: 'unreads', by: 'bob', ws })).find((e) => e.ch === g)!.mentions, 0);
    assert.ok(f.on(userSubject(ws, 'bob'), 'read').length >= 2);

    // prefs: 'mentions' suppresses @channel pushes, direct mentions still go out
    await f.send({ op: 'setNotifyPrefs', by: 'bob', ws, ch: g, level: 'mentions', clientMsgId: cmid() });
    await f.send({ op: 'post', by: 'ann', ws, ch: g, text: '<!channel> again', clientMsgId: cmid() }); // 7
    await f.send({ op: 'post', by: 'ann', ws, ch: g, text: 'direct <@bob>', clientMsgId: cmid() }); // 8
    await f.cluster.eventually(() => assert.ok(f.notifier.for(userKey(ws, 'bob')).some((n) => n.seq === 8)));
    assert.ok(!f.notifier.for(userKey(ws, 'bob')).some((n) => n.seq === 7 && n.ch === g));

    // typing is ephemeral: published, throttled, never in history or since
    const logSize = () => f.cluster.logServer.all().length;
    const before = logSize();
    const typing = await f.send({ op: 'typing', by: 'cat', ws, ch: g });
    assert.equal(typing.published, true);
    assert.equal((await f.send({ op: 'typing', by: 'cat', ws, ch: g })).published, false);
    await f.fails({ op: 'typing', by: 'cat', ws, ch: 'nope' }, 'CHAT_NOT_FOUND');
    await f.cluster.eventually(() => assert.deepEqual(f.on(channelSubject(ws, g), 'typing'), [{ type: 'typing', ws, ch: g, user: 'cat' }]));
    assert.equal(logSize(), before, 'typing wrote nothing to any log');
    const after = await f.send({ op: 'since', by: 'cat', ws, ch: g, seq: 0 });
    assert.equal(after.messages.length, 8);
    assert.ok(!after.updates.some((u: any) => u.type === 'typing'));
    assert.equal((await f.send({ op: 'channelInfo', by: 'cat', ws, ch: g })).latestSeq, 8);

    // presence: sessions expire when their node stops refreshing them; refresh keeps them
    for (let i = 0; i < 3; i++) {
      await f.cluster.advance(10_000);
      await f.send({ op: 'sessionsRefresh', by: 'cat', ws, node: 'n1', sessionIds: ['s1'] });
    }
    // n2 never refreshed s2, so after 30 s it is gone; s1 (idle) remains -> away
    assert.equal((await f.send({ op: 'getPresence', by: 'bob', ws, user: 'cat' })).presence, 'away');
    await f.send({ op: 'sessionClosed', by: 'cat', ws, sessionId: 's1' });
    assert.equal((await f.send({ op: 'getPresence', by: 'bob', ws, user: 'cat' })).presence, 'offline');
    await f.cluster.eventually(() => {
      const seq = f.on(presenceSubject(ws, 'cat'), 'presence').filter((e) => e.user === 'cat').map((e) => e.presence);
      assert.deepEqual(seq, ['online', 'away', 'online', 'away', 'offline']);
    });

    // profile: own only
    await f.send({ op: 'updateProfile', by: 'cat', ws, displayName: 'Cat', tz: 'Europe/Paris', clientMsgId: cmid() });
    await f.fails({ op: 'updateProfile', by: 'bob', ws, user: 'cat', displayName: 'Dog', clientMsgId: cmid() }, 'CHAT_FORBIDDEN');
    assert.equal((await f.send({ op: 'getProfile', by: 'bob', ws, user: 'cat' })).displayName, 'Cat');

    // a removed member loses access at once
    await f.send({ op: 'removeMember', by: 'bob', ws, user: 'cat', clientMsgId: cmid() });
    await f.cluster.eventually(() => f.fails({ op: 'history', by: 'cat', ws, ch: s }, 'CHAT_NOT_MEMBER'));
    await f.fails({ op: 'post', by: 'cat', ws, ch: g, text: 'still here?', clientMsgId: cmid() }, 'CHAT_NOT_MEMBER');
    await f.cluster.eventually(async () => assert.equal((await f.send({ op: 'channelInfo', by: 'ann', ws, ch: g })).memberCount, 2));
    f.cluster.checkInvariants();
  } finally {
    await f.stop();
  }
});
