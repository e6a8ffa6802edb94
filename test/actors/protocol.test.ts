// The protocol as the edge uses it (routing table, keys, subjects, schemas),
// the pure helpers of actors/lib, and docs/domain.md kept in step with the
// code: every op and every chat error code is documented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  CHAT_ERROR_CODES, COMMANDS, EDGE_COMMANDS, channelKey, channelSubject, presenceSubject, routeOf, userKey, userSubject, workspaceSubject, allows,
} from '../../actors/index.ts';
import { dmChannelId } from '../../actors/lib/hash.ts';
import { parseMentions } from '../../actors/lib/mentions.ts';
import { historyPage, sincePage } from '../../actors/lib/channel-queries.ts';
import { applyChannel, initialChannel, UPDATES_WINDOW } from '../../actors/lib/channel-state.ts';
import { SessionTable } from '../../actors/lib/sessions.ts';

test('routing: every op goes to the actor its target names', () => {
  assert.deepEqual(routeOf('createChannel', { by: 'u', ws: 'w' }), { type: 'workspace', key: 'w' });
  assert.deepEqual(routeOf('post', { by: 'u', ws: 'w', ch: 'c1' }), { type: 'channel', key: 'w.c1' });
  assert.deepEqual(routeOf('markRead', { by: 'u', ws: 'w' }), { type: 'user', key: 'w.u' });
  assert.deepEqual(routeOf('getProfile', { by: 'u', ws: 'w', user: 'v' }), { type: 'user', key: 'w.v' });
  assert.deepEqual(routeOf('sessionOpened', { by: 'u', ws: 'w' }), { type: 'user', key: 'w.u' });
  for (const [op, spec] of Object.entries({ ...COMMANDS, ...EDGE_COMMANDS })) {
    // each schema names its own op, so a frame cannot be validated under one op and run as another
    const shape = (spec.schema as any).shape;
    assert.equal(shape.op.value, op);
    assert.ok(shape.by && shape.ws, `${op} carries by and ws`);
    if (spec.target === 'channel') assert.ok(shape.ch, `${op} carries ch`);
  }
  assert.ok(!Object.keys(COMMANDS).some((op) => op in EDGE_COMMANDS), 'edge-only ops are not client ops');
});

test('keys and subjects', () => {
  assert.equal(channelKey('w', 'c'), 'w.c');
  assert.equal(userKey('w', 'u'), 'w.u');
  assert.equal(channelSubject('w', 'c'), 'chorus.chan.w.c');
  assert.equal(userSubject('w', 'u'), 'chorus.user.w.u');
  assert.equal(workspaceSubject('w'), 'chorus.ws.w');
  assert.equal(presenceSubject('w', 'u'), 'chorus.presence.w.u');
});

test('schemas: limits and id rules', () => {
  const post = COMMANDS.post.schema;
  const ok = { op: 'post', by: 'u', ws: 'w', ch: 'c', text: 'hi', clientMsgId: 'x' };
  assert.equal(post.safeParse(ok).success, true);
  assert.equal(post.safeParse({ ...ok, text: 'x'.repeat(4000) }).success, true);
  assert.equal(post.safeParse({ ...ok, text: 'x'.repeat(4001) }).success, false);
  assert.equal(post.safeParse({ ...ok, ch: 'a.b' }).success, false, 'ids are single subject tokens');
  assert.equal(post.safeParse({ ...ok, ch: 'a*' }).success, false);
  assert.equal(post.safeParse({ ...ok, ch: 'x'.repeat(65) }).success, false);
  assert.equal(post.safeParse({ ...ok, by: '__proto__' }).success, false);
  const parsed = post.parse({ ...ok, extra: 'dropped' }) as Record<string, unknown>;
  assert.equal(parsed.extra, undefined, 'unknown keys are stripped');
  assert.equal(COMMANDS.react.schema.safeParse({ op: 'react', by: 'u', ws: 'w', ch: 'c', seq: 1, emoji: '+1', clientMsgId: 'x' }).success, true);
  assert.equal(COMMANDS.react.schema.safeParse({ op: 'react', by: 'u', ws: 'w', ch: 'c', seq: 1, emoji: 'Smile', clientMsgId: 'x' }).success, false);
  assert.equal(COMMANDS.history.schema.safeParse({ op: 'history', by: 'u', ws: 'w', ch: 'c', limit: 200 }).success, true);
  assert.equal(COMMANDS.history.schema.safeParse({ op: 'history', by: 'u', ws: 'w', ch: 'c', limit: 201 }).success, false);
  assert.equal(COMMANDS.setTopic.schema.safeParse({ op: 'setTopic', by: 'u', ws: 'w', ch: 'c', topic: 't'.repeat(250), clientMsgId: 'x' }).success, true);
  assert.equal(COMMANDS.createChannel.schema.safeParse({ op: 'createChannel', by: 'u', ws: 'w', name: 'n'.repeat(81), kind: 'public', clientMsgId: 'x' }).success, false);
});

test('DM ids are deterministic, order-free and fit a subject token', () => {
  const a = dmChannelId(['zoe', 'adam']);
  assert.equal(a, dmChannelId(['adam', 'zoe', 'adam']));
  assert.notEqual(a, dmChannelId(['adam', 'zoe', 'bea']));
  assert.notEqual(a, dmChannelId(['adam', 'zoe'], 1));
  assert.match(a, /^dm-[a-z0-9]{26}$/);
  const long = dmChannelId(Array.from({ length: 9 }, (_, i) => `${'u'.repeat(60)}${i}`));
  assert.ok(long.length <= 64);
});

test('mentions: members only, <!channel>, no duplicates', () => {
  const m = parseMentions('hi <@a> <@b> <@a> <@ghost> <@__proto__> <!channel>', (u) => u === 'a' || u === 'b');
  assert.deepEqual(m, { users: ['a', 'b'], channel: true });
  assert.deepEqual(parseMentions('<@a', () => true), { users: [], channel: false });
});

test('notification levels', () => {
  assert.equal(allows('all', 'channel'), true);
  assert.equal(allows('mentions', 'channel'), false);
  assert.equal(allows('mentions', 'dm'), true);
  assert.equal(allows('none', 'dm'), false);
});

test('history pages and since on a folded channel', () => {
  const s = initialChannel();
  applyChannel(s, { type: 'created', facts: { ws: 'w', ch: 'c', name: 'c', kind: 'public', createdBy: 'a', createdAt: 0 }, topic: '', members: ['a'] });
  for (let i = 1; i <= 10; i++) applyChannel(s, { type: 'posted', msg: { seq: i, user: 'a', ts: i, text: `m${i}`, cmid: `x${i}`, ...(i % 3 === 0 ? { parent: 1 } : {}) } });
  const top = [1, 2, 4, 5, 7, 8, 10];
  assert.deepEqual(historyPage(s, {}).messages.map((m) => m.seq), [...top].reverse());
  assert.deepEqual(historyPage(s, { limit: 3 }).messages.map((m) => m.seq), [10, 8, 7]);
  assert.deepEqual(historyPage(s, { before: 7, limit: 3 }).messages.map((m) => m.seq), [5, 4, 2]);
  assert.deepEqual(historyPage(s, { after: 2, limit: 3 }).messages.map((m) => m.seq), [4, 5, 7]);
  assert.deepEqual(historyPage(s, { after: 2, before: 8, order: 'newest' }).messages.map((m) => m.seq), [7, 5, 4]);
  assert.equal(historyPage(s, { before: 3, limit: 2 }).hasMore, false);
  assert.deepEqual(sincePage(s, 7).messages.map((m) => m.seq), [8, 9, 10]);
  assert.deepEqual(sincePage(s, 2, 3).messages.map((m) => m.seq), [3, 4, 5]);
  assert.equal(sincePage(s, 2, 3).hasMore, true);
  // updates beyond the window ask the client to resync
  for (let i = 0; i < UPDATES_WINDOW + 5; i++) applyChannel(s, { type: 'topic', topic: `t${i}`, by: 'a', at: i });
  assert.equal(sincePage(s, 10).resync, true);
  assert.equal(sincePage(s, 10).updates.length, UPDATES_WINDOW);
});

test('sessions: presence and refresh by node', () => {
  const t = new SessionTable(1000);
  assert.equal(t.presence(false), 'offline');
  t.open('s1', 'n1', 'web', 0);
  t.open('s2', 'n2', 'phone', 0);
  assert.equal(t.presence(false), 'online');
  assert.equal(t.presence(true), 'away');
  t.setIdle('s1', true);
  t.setIdle('s2', true);
  assert.equal(t.presence(false), 'away');
  t.refresh('n1', ['s3'], 500); // n1 now holds only s3
  assert.deepEqual(t.list().map((s) => s.sessionId).sort(), ['s2', 's3']);
  t.sweep(1000); // s2 expired at 1000
  assert.deepEqual(t.list().map((s) => s.sessionId), ['s3']);
  t.sweep(1500);
  assert.equal(t.presence(false), 'offline');
});

test('docs/domain.md lists every op and every chat error code', () => {
  const doc = readFileSync('docs/domain.md', 'utf8');
  const missing = [...Object.keys(COMMANDS), ...Object.keys(EDGE_COMMANDS), ...CHAT_ERROR_CODES].filter((x) => !doc.includes(`\`${x}\``));
  assert.deepEqual(missing, []);
});
