// Tenant isolation (invariant 5): every read and write op, against another
// workspace, a private channel one is not in, someone else's DM, a public
// channel a guest was not invited to, and after removal from the workspace,
// fails with the expected code. Nothing leaks, nothing is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channelKey } from '../../actors/index.ts';
import { chatCluster, cmid, workspace, type ChatFixture } from './helpers.ts';

type Cmd = { op: any; by: string; ws: string; [k: string]: unknown };

/** Every channel op against channel `ch` of `ws`, as `by`, with the code each must fail with. */
function channelOps(by: string, ws: string, ch: string, codes: { default: string; join?: string; kick?: string }): Array<[Cmd, string]> {
  const a = { by, ws, ch };
  const d = codes.default;
  return [
    [{ op: 'history', ...a }, d],
    [{ op: 'thread', ...a, parent: 1 }, d],
    [{ op: 'since', ...a, seq: 0 }, d],
    [{ op: 'channelInfo', ...a }, d],
    [{ op: 'channelMembers', ...a }, d],
    [{ op: 'readState', ...a, after: 0 }, d],
    [{ op: 'post', ...a, text: 'hi', clientMsgId: cmid() }, d],
    [{ op: 'post', ...a, text: 'reply', parent: 1, clientMsgId: cmid() }, d],
    [{ op: 'edit', ...a, seq: 1, text: 'x', clientMsgId: cmid() }, d],
    [{ op: 'delete', ...a, seq: 1, clientMsgId: cmid() }, d],
    [{ op: 'react', ...a, seq: 1, emoji: 'eyes', clientMsgId: cmid() }, d],
    [{ op: 'unreact', ...a, seq: 1, emoji: 'tada', clientMsgId: cmid() }, d],
    [{ op: 'pin', ...a, seq: 1, clientMsgId: cmid() }, d],
    [{ op: 'unpin', ...a, seq: 1, clientMsgId: cmid() }, d],
    [{ op: 'setTopic', ...a, topic: 'mine now', clientMsgId: cmid() }, d],
    [{ op: 'typing', ...a }, d],
    [{ op: 'leaveChannel', ...a, clientMsgId: cmid() }, d],
    [{ op: 'inviteToChannel', ...a, user: by, clientMsgId: cmid() }, d],
    [{ op: 'joinChannel', ...a, clientMsgId: cmid() }, codes.join ?? d],
    [{ op: 'removeFromChannel', ...a, user: 'alice', clientMsgId: cmid() }, codes.kick ?? d],
  ];
}

async function ask(f: ChatFixture, cmd: Cmd) {
  // readState is internal (no routeOf entry); route it by hand
  if (cmd.op === 'readState') return f.cluster.run(f.cluster.ref('channel', channelKey(cmd.ws, cmd.ch as string)).ask(cmd));
  return f.send(cmd);
}

test('isolation matrix: other workspace, private non-member, foreign DM, uninvited guest, removed member', async () => {
  const f = await chatCluster({ faults: { minDelayMs: 0, maxDelayMs: 3 } });
  try {
    await workspace(f, 'w1', 'own', ['alice', 'bob', 'carl', 'mal'], ['gil']);
    await workspace(f, 'w2', 'eve', ['zed']);
    const c = async (by: string, name: string, kind: string) => (await f.send({ op: 'createChannel', by, ws: 'w1', name, kind, clientMsgId: cmid() })).ch as string;
    const pub = await c('alice', 'pub', 'public');
    const priv = await c('alice', 'priv', 'private');
    const guestroom = await c('alice', 'guestroom', 'public');
    const dm = (await f.send({ op: 'openDm', by: 'alice', ws: 'w1', users: ['bob'], clientMsgId: cmid() })).ch as string;
    for (const u of ['bob', 'carl', 'mal']) await f.send({ op: 'joinChannel', by: u, ws: 'w1', ch: pub, clientMsgId: cmid() });
    for (const u of ['bob', 'mal']) await f.send({ op: 'inviteToChannel', by: 'alice', ws: 'w1', ch: priv, user: u, clientMsgId: cmid() });
    await f.send({ op: 'inviteToChannel', by: 'alice', ws: 'w1', ch: guestroom, user: 'gil', clientMsgId: cmid() });
    for (const ch of [pub, priv, dm, guestroom]) {
      await f.send({ op: 'post', by: 'alice', ws: 'w1', ch, text: `first in ${ch}`, clientMsgId: cmid() });
      await f.send({ op: 'react', by: 'alice', ws: 'w1', ch, seq: 1, emoji: 'tada', clientMsgId: cmid() });
      await f.send({ op: 'pin', by: 'alice', ws: 'w1', ch, seq: 1, clientMsgId: cmid() });
    }
    // mal could read priv before removal; not after
    assert.equal((await f.send({ op: 'history', by: 'mal', ws: 'w1', ch: priv })).messages.length, 1);
    await f.send({ op: 'removeMember', by: 'own', ws: 'w1', user: 'mal', clientMsgId: cmid() });
    await f.cluster.eventually(() => f.fails({ op: 'history', by: 'mal', ws: 'w1', ch: pub }, 'CHAT_NOT_MEMBER'));

    const cells: Array<[string, Cmd, string]> = [];
    const add = (label: string, rows: Array<[Cmd, string]>) => rows.forEach(([cmd, code]) => cells.push([label, cmd, code]));
    for (const ch of [pub, priv, dm]) add(`other workspace -> ${ch}`, channelOps('eve', 'w1', ch, { default: 'CHAT_NOT_MEMBER' }));
    add('private non-member', channelOps('carl', 'w1', priv, { default: 'CHAT_NOT_MEMBER', join: 'CHAT_FORBIDDEN', kick: 'CHAT_FORBIDDEN' }));
    add("someone else's DM", channelOps('carl', 'w1', dm, { default: 'CHAT_NOT_MEMBER', join: 'CHAT_FORBIDDEN', kick: 'CHAT_FORBIDDEN' }));
    add('guest not invited', channelOps('gil', 'w1', pub, { default: 'CHAT_NOT_MEMBER', join: 'CHAT_FORBIDDEN', kick: 'CHAT_FORBIDDEN' }));
    add('guest, private', channelOps('gil', 'w1', priv, { default: 'CHAT_NOT_MEMBER', join: 'CHAT_FORBIDDEN', kick: 'CHAT_FORBIDDEN' }));
    for (const ch of [pub, priv, dm]) add(`removed member -> ${ch}`, channelOps('mal', 'w1', ch, { default: 'CHAT_NOT_MEMBER' }));
    // a channel that does not exist answers outsiders as outsiders (no existence probe)
    add('other workspace -> unknown channel', channelOps('eve', 'w1', 'c999', { default: 'CHAT_NOT_MEMBER' }).slice(0, 3));
    // workspace and user ops
    for (const by of ['eve', 'mal']) {
      const a = { by, ws: 'w1' };
      add(`${by}: workspace ops`, [
        [{ op: 'workspaceInfo', ...a }, 'CHAT_NOT_MEMBER'],
        [{ op: 'listMembers', ...a }, 'CHAT_NOT_MEMBER'],
        [{ op: 'listChannels', ...a }, 'CHAT_NOT_MEMBER'],
        [{ op: 'createChannel', ...a, name: 'x', kind: 'public', clientMsgId: cmid() }, 'CHAT_NOT_MEMBER'],
        [{ op: 'openDm', ...a, users: ['alice'], clientMsgId: cmid() }, 'CHAT_NOT_MEMBER'],
        [{ op: 'createInvite', ...a, role: 'member', clientMsgId: cmid() }, 'CHAT_NOT_MEMBER'],
        [{ op: 'removeMember', ...a, user: 'alice', clientMsgId: cmid() }, 'CHAT_NOT_MEMBER'],
        [{ op: 'setRole', ...a, user: 'alice', role: 'admin', clientMsgId: cmid() }, 'CHAT_NOT_MEMBER'],
        [{ op: 'updateSettings', ...a, name: 'pwned', clientMsgId: cmid() }, 'CHAT_NOT_MEMBER'],
        [{ op: 'getProfile', ...a, user: 'alice' }, 'CHAT_NOT_MEMBER'],
        [{ op: 'getPresence', ...a, user: 'alice' }, 'CHAT_NOT_MEMBER'],
        [{ op: 'updateProfile', ...a, user: 'alice', displayName: 'x', clientMsgId: cmid() }, 'CHAT_NOT_MEMBER'],
        [{ op: 'me', ...a }, 'CHAT_NOT_MEMBER'],
        [{ op: 'unreads', ...a }, 'CHAT_NOT_MEMBER'],
        [{ op: 'markRead', ...a, ch: pub, seq: 1, clientMsgId: cmid() }, 'CHAT_NOT_MEMBER'],
        [{ op: 'sessionOpened', ...a, sessionId: 'x', node: 'n1', device: 'web' }, 'CHAT_NOT_MEMBER'],
      ]);
    }
    const g = { by: 'gil', ws: 'w1' };
    add('guest: workspace ops', [
      [{ op: 'createChannel', ...g, name: 'g', kind: 'public', clientMsgId: cmid() }, 'CHAT_FORBIDDEN'],
      [{ op: 'createInvite', ...g, role: 'guest', clientMsgId: cmid() }, 'CHAT_FORBIDDEN'],
      [{ op: 'removeMember', ...g, user: 'alice', clientMsgId: cmid() }, 'CHAT_FORBIDDEN'],
      [{ op: 'setRole', ...g, user: 'alice', role: 'guest', clientMsgId: cmid() }, 'CHAT_FORBIDDEN'],
      [{ op: 'updateSettings', ...g, allowGuestsToCreateChannels: true, clientMsgId: cmid() }, 'CHAT_FORBIDDEN'],
    ]);
    const k = { by: 'carl', ws: 'w1', user: 'alice' };
    add("someone else's user actor", [
      [{ op: 'updateProfile', ...k, displayName: 'x', clientMsgId: cmid() }, 'CHAT_FORBIDDEN'],
      [{ op: 'setAway', ...k, away: true, clientMsgId: cmid() }, 'CHAT_FORBIDDEN'],
      [{ op: 'markRead', ...k, ch: pub, seq: 1, clientMsgId: cmid() }, 'CHAT_FORBIDDEN'],
      [{ op: 'setNotifyPrefs', ...k, level: 'none', clientMsgId: cmid() }, 'CHAT_FORBIDDEN'],
      [{ op: 'me', ...k }, 'CHAT_FORBIDDEN'],
      [{ op: 'unreads', ...k }, 'CHAT_FORBIDDEN'],
      [{ op: 'sessionOpened', ...k, sessionId: 'fake', node: 'n1', device: 'web' }, 'CHAT_FORBIDDEN'],
      [{ op: 'sessionsRefresh', ...k, node: 'n1', sessionIds: [] }, 'CHAT_FORBIDDEN'],
    ]);

    const wrong: string[] = [];
    for (const [label, cmd, code] of cells) {
      try {
        const v = await ask(f, cmd);
        wrong.push(`${label}: ${cmd.op} by ${cmd.by} succeeded: ${JSON.stringify(v).slice(0, 120)}`);
      } catch (e: any) {
        if (e.code !== code) wrong.push(`${label}: ${cmd.op} by ${cmd.by}: expected ${code}, got ${e.code} (${e.message})`);
      }
    }
    assert.deepEqual(wrong, [], `${wrong.length} of ${cells.length} cells wrong`);
    assert.ok(cells.length > 180, `${cells.length} cells`);

    // nothing leaked into listings, nothing was written
    const names = async (by: string) => (await f.send<any[]>({ op: 'listChannels', by, ws: 'w1' })).map((x) => x.name);
    assert.deepEqual(await names('carl'), ['pub', 'guestroom'].sort());
    assert.deepEqual(await names('gil'), ['guestroom']);
    const chs = async (by: string) => (await f.send<any[]>({ op: 'listChannels', by, ws: 'w1' })).map((x) => x.ch);
    assert.ok((await chs('bob')).includes(dm) && !(await chs('carl')).includes(dm));
    for (const ch of [pub, priv, dm]) {
      const h = await f.send({ op: 'since', by: 'alice', ws: 'w1', ch, seq: 0 });
      assert.deepEqual(h.messages.map((m: any) => [m.seq, m.user, m.text, m.reactions, m.pinned]), [[1, 'alice', `first in ${ch}`, { tada: ['alice'] }, true]], ch);
      const info = await f.send({ op: 'channelInfo', by: 'alice', ws: 'w1', ch });
      assert.equal(info.topic, '');
    }
    assert.equal((await f.send({ op: 'workspaceInfo', by: 'own', ws: 'w1' })).name, 'Workspace w1');
    // a frame naming another workspace than the actor it reached is refused
    await assert.rejects(f.cluster.run(f.cluster.ref('channel', channelKey('w1', pub)).ask({ op: 'history', by: 'eve', ws: 'w2', ch: pub })), { code: 'CHORUS_BAD_MESSAGE' });
    await assert.rejects(f.cluster.run(f.cluster.ref('workspace', 'w1').ask({ op: 'listMembers', by: 'eve', ws: 'w2' })), { code: 'CHORUS_BAD_MESSAGE' });
    f.cluster.checkInvariants();
  } finally {
    await f.stop();
  }
});
