/**
 * The query-store conformance suite: written once, run on PGlite and on a
 * real PostgreSQL (primary + streaming replica). It projects a generated
 * chat log (every event type of actors/lib/*-state.ts, seeded) through
 * PostgresProjectionSink and checks every read of PostgresQueryStore against
 * the actors' own fold and query functions run on the same records: the
 * store must answer exactly what the actors answer.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { historyPage, memberList, threadPage } from '../../actors/lib/channel-queries.ts';
import { applyChannel, initialChannel, type ChannelEventRec, type ChannelState, type StoredMessage } from '../../actors/lib/channel-state.ts';
import { applyUser, initialUser, type UserEventRec, type UserState } from '../../actors/lib/user-state.ts';
import { applyWorkspace, initialWorkspace, type WorkspaceEventRec, type WorkspaceState } from '../../actors/lib/workspace-state.ts';
import type { HistoryQuery } from '../../actors/query-store.ts';
import {
  MIGRATIONS, PostgresProjectionSink, PostgresQueryStore, applyEntries, migrate, type QueryRouting,
} from '../../adapters/postgres/query.ts';
import { codec } from '../../runtime/codec.ts';
import type { LogEntry } from '../../runtime/log/event-log.ts';
import { seededRandom } from '../harness/rng.ts';

/** What a runner hands the suite. */
export interface StoreFixture {
  routing: QueryRouting;
  close(): Promise<void>;
}

// ---- a generated chat log ------------------------------------------------------

/** The log of one workspace and the actors' fold of it. */
export interface ChatLog {
  ws: string;
  entries: LogEntry[];
  channels: Map<string, ChannelState>;
  workspace: WorkspaceState;
  users: Map<string, UserState>;
}

const EMOJI = ['thumbsup', 'heart', '100', 'tada', 'eyes', '1'];

/**
 * Generates `records` log records for workspace `ws` (channels c1..c3, users
 * u1..u6, plus numeric ids to exercise JS key order), folding them with the
 * actors' apply functions as it goes. Same seed, same log (whatever `ws`).
 */
export function generateLog(ws: string, seed: number, records = 400, t0 = 1_700_000_000_000): ChatLog {
  const rnd = seededRandom(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const users = ['u1', 'u2', 'u3', '42', 'u5', '7'];
  const chans = ['c1', 'c2', 'dm-x'];
  const entries: LogEntry[] = [];
  const pos = new Map<string, number>();
  let t = t0;
  const append = (stream: string, events: unknown[]) => {
    const p = (pos.get(stream) ?? 0) + 1;
    pos.set(stream, p);
    if (rnd() < 0.3) events = [...events, { type: 'done', key: `u1:m${p}`, result: { op: 'x', result: null } }];
    entries.push({ stream, pos: p, data: codec.encode(events), ts: t });
  };
  const workspace = initialWorkspace();
  const channels = new Map<string, ChannelState>(chans.map((c) => [c, initialChannel()]));
  const userStates = new Map<string, UserState>(users.map((u) => [u, initialUser()]));
  const wsEv = (e: WorkspaceEventRec) => (applyWorkspace(workspace, e), append(`workspace.${ws}`, [e]));
  const chEv = (ch: string, es: ChannelEventRec[]) => {
    for (const e of es) applyChannel(channels.get(ch)!, structuredClone(e));
    append(`channel.${ws}.${ch}`, es);
  };
  const usEv = (u: string, e: UserEventRec) => (applyUser(userStates.get(u)!, structuredClone(e)), append(`user.${ws}.${u}`, [e]));

  wsEv({ type: 'created', name: 'W', by: 'u1', at: t });
  for (const u of users.slice(1)) wsEv({ type: 'joined', user: u, role: u === '7' ? 'guest' : 'member', at: (t += 1000) });
  chans.forEach((ch, i) => chEv(ch, [{
    type: 'created', topic: `topic ${ch}`, members: i === 2 ? ['u2', 'u1', '42'] : ['u1', '7', 'u3'],
    facts: { ws, ch, name: `name-${ch}`, kind: i === 0 ? 'public' : i === 1 ? 'private' : 'dm', createdBy: 'u1', createdAt: t },
  }]));

  for (let n = 0; n < records; n++) {
    t += 1 + Math.floor(rnd() * 5000);
    const r = rnd();
    const ch = pick(chans);
    const s = channels.get(ch)!;
    const msgs = s.messages;
    const anyMsg = () => (msgs.length ? pick(msgs).seq : 1);
    if (r < 0.35) {
      const top = msgs.filter((m) => m.parent === undefined);
      const reply = top.length && rnd() < 0.35 ? pick(top).seq : undefined;
      const mentions = rnd() < 0.2 ? [pick(users)] : undefined;
      const msg: StoredMessage = { seq: msgs.length + 1, user: pick(users), ts: t, text: `hello ${n} <@${mentions?.[0] ?? 'x'}> "quoted" \\ é`, cmid: `m${n}` };
      if (reply !== undefined) msg.parent = reply;
      if (mentions) msg.mentions = mentions;
      if (rnd() < 0.1) msg.channelMention = true;
      const es: ChannelEventRec[] = [{ type: 'posted', msg }];
      // sometimes two posts in one record (one turn)
      if (rnd() < 0.1) es.push({ type: 'posted', msg: { seq: msgs.length + 2, user: pick(users), ts: t, text: `second ${n}`, cmid: `m${n}b` } });
      chEv(ch, es);
    } else if (r < 0.45) chEv(ch, [{ type: 'edited', seq: anyMsg(), text: `edited ${n}`, mentions: rnd() < 0.5 ? [pick(users)] : [], channelMention: rnd() < 0.2, by: pick(users), at: t }]);
    else if (r < 0.5) chEv(ch, [{ type: 'deleted', seq: anyMsg(), by: pick(users), at: t }]);
    else if (r < 0.62) chEv(ch, [{ type: 'reaction', seq: anyMsg(), emoji: pick(EMOJI), user: pick(users), add: rnd() < 0.7 }]);
    else if (r < 0.66) chEv(ch, [{ type: 'pinned', seq: anyMsg(), pinned: rnd() < 0.6, by: pick(users) }]);
    else if (r < 0.69) chEv(ch, [{ type: 'topic', topic: `topic ${n}`, by: pick(users), at: t }]);
    else if (r < 0.74) chEv(ch, [{ type: 'joined', user: pick(users), by: pick(users), at: t }]);
    else if (r < 0.77) chEv(ch, [{ type: 'left', user: pick(users), by: pick(users), reason: pick(['left', 'removed', 'left_workspace'] as const) }]);
    else if (r < 0.8) {
      const u = pick(users.slice(1));
      const x = rnd();
      if (x < 0.3) wsEv({ type: 'role', user: u, role: pick(['admin', 'member', 'guest'] as const), by: 'u1' });
      else if (x < 0.5) wsEv({ type: 'removed', user: u, by: 'u1' });
      else if (x < 0.8) wsEv({ type: 'joined', user: u, role: 'member', at: t });
      else wsEv({ type: 'settings', ...(rnd() < 0.5 ? { name: `W${n}` } : {}), allowMembersToInvite: rnd() < 0.5 });
    } else {
      const u = pick(users);
      const x = rnd();
      const c = pick(chans);
      const kind = c === 'dm-x' ? 'dm' : c === 'c2' ? 'private' : 'public';
      if (x < 0.15) usEv(u, { type: 'profile', at: t, ...(rnd() < 0.7 ? { displayName: `User ${u} ${n}` } : {}), ...(rnd() < 0.3 ? { title: `t${n}` } : {}), ...(rnd() < 0.2 ? { avatarUrl: `https://a/${n}` } : {}), ...(rnd() < 0.2 ? { tz: 'Europe/Paris' } : {}) });
      else if (x < 0.2) usEv(u, { type: 'away', away: rnd() < 0.5 });
      else if (x < 0.25) usEv(u, { type: 'prefs', level: 'mentions', ...(rnd() < 0.5 ? { ch: c } : {}) });
      else if (x < 0.5) usEv(u, { type: 'read', ch: c, seq: Math.floor(rnd() * (channels.get(c)!.messages.length + 1)) });
      else if (x < 0.8) usEv(u, { type: 'notified', ch: c, seq: Math.max(1, channels.get(c)!.messages.length), kind, name: `name-${c}` });
      else usEv(u, { type: 'membership', ch: c, joined: rnd() < 0.7, kind, name: `name-${c}`, latestSeq: channels.get(c)!.messages.length });
    }
  }
  return { ws, entries, channels, workspace, users: userStates };
}

// ---- what the actors answer ------------------------------------------------------

/** History queries worth asking a channel of `latest` messages. */
export function historyQueries(latest: number): HistoryQuery[] {
  const qs: HistoryQuery[] = [{ limit: 50, order: 'newest' }, { limit: 1, order: 'newest' }, { limit: 200, order: 'oldest' }, { after: 0, limit: 7, order: 'oldest' }];
  for (const b of [2, Math.floor(latest / 2), latest, latest + 5]) qs.push({ before: b, limit: 10, order: 'newest' }, { before: b, after: Math.max(0, b - 30), limit: 5, order: 'oldest' });
  qs.push({ after: Math.floor(latest / 3), limit: 20, order: 'oldest' }, { after: latest, limit: 20, order: 'newest' });
  return qs;
}

function wsMembers(s: WorkspaceState) {
  return Object.entries(s.members).map(([user, v]) => ({ user, role: v.role, joinedAt: v.joinedAt })).sort((a, b) => a.joinedAt - b.joinedAt || (a.user < b.user ? -1 : 1));
}
function profileOf(s: UserState, user: string) {
  const { displayName, title, avatarUrl, tz } = s.profile;
  return { user, displayName: displayName ?? user, title: title ?? '', avatarUrl: avatarUrl ?? null, tz: tz ?? 'UTC' };
}
function cursorsOf(s: UserState) {
  return Object.entries(s.chans).map(([ch, c]) => ({ ch, kind: c.kind, name: c.name, readSeq: c.read, latestSeq: c.latest, mentions: [...c.mentions] }))
    .sort((a, b) => (a.ch < b.ch ? -1 : a.ch > b.ch ? 1 : 0));
}

/** Checks every read of `store` against the fold in `log` (at the log's last positions). */
export async function assertStoreMatches(store: PostgresQueryStore, log: ChatLog): Promise<void> {
  const last = (stream: string) => Math.max(0, ...log.entries.filter((e) => e.stream === stream).map((e) => e.pos));
  const { ws } = log;
  for (const [ch, s] of log.channels) {
    const fresh = { minPos: last(`channel.${ws}.${ch}`) };
    for (const q of historyQueries(s.messages.length)) {
      assert.deepStrictEqual(await store.history(ws, ch, q, fresh), historyPage(s, q), `history ${ch} ${JSON.stringify(q)}`);
    }
    for (const p of s.messages.filter((m) => m.parent === undefined && m.replies?.length)) {
      for (const q of [{ parent: p.seq, limit: 50 }, { parent: p.seq, after: p.replies![0]!, limit: 1 }]) {
        assert.deepStrictEqual(await store.thread(ws, ch, q, fresh), threadPage(s, q), `thread ${ch} ${JSON.stringify(q)}`);
      }
    }
    assert.deepStrictEqual(await store.channelMembers(ws, ch, fresh), memberList(s), `members of ${ch}`);
  }
  assert.deepStrictEqual(await store.workspaceMembers(ws, { minPos: last(`workspace.${ws}`) }), wsMembers(log.workspace), 'workspace members');
  for (const [u, s] of log.users) {
    const fresh = { minPos: last(`user.${ws}.${u}`) };
    assert.deepStrictEqual(await store.profile(ws, u, fresh), profileOf(s, u), `profile of ${u}`);
    assert.deepStrictEqual(await store.readCursors(ws, u, fresh), cursorsOf(s), `cursors of ${u}`);
  }
}

/** Every query-table row of workspace `ws` (with `ws` replaced, so two workspaces fed the same log compare equal). */
export async function dumpWorkspace(routing: QueryRouting, ws: string): Promise<Record<string, unknown[]>> {
  const db = routing.dbFor(ws).sql.primary;
  const tables: Array<[string, string]> = [
    ['chat_messages', 'ch, seq'], ['chat_channels', 'ch'], ['chat_channel_members', 'ch, user_id'], ['chat_workspaces', 'ws'],
    ['chat_workspace_members', 'user_id'], ['chat_profiles', 'user_id'], ['chat_read_cursors', 'user_id, ch'],
  ];
  const out: Record<string, unknown[]> = {};
  for (const [t, order] of tables) {
    const rows = await db.query<Record<string, unknown>>(`SELECT * FROM ${t} WHERE ws = $1 ORDER BY ${order}`, [ws]);
    out[t] = rows.map((r) => ({ ...r, ws: '*' }));
  }
  const pos = await db.query<Record<string, unknown>>(`SELECT stream, pos FROM chorus_projection_positions WHERE ws = $1 ORDER BY stream`, [ws]);
  out.positions = pos.map((r) => ({ stream: String(r.stream).replace(`.${ws}`, '.*'), pos: Number(r.pos) }));
  return out;
}

/** Applies `entries` in batches of random size (1..maxBatch). */
export async function project(sink: PostgresProjectionSink, entries: readonly LogEntry[], seed: number, maxBatch = 60): Promise<void> {
  const rnd = seededRandom(seed);
  for (let i = 0; i < entries.length;) {
    const n = 1 + Math.floor(rnd() * maxBatch);
    await sink.apply(entries.slice(i, i + n));
    i += n;
  }
}

// ---- the suite ---------------------------------------------------------------------

/** Registers the suite under `describe(name)`; `make` is called once. */
export function describeQueryStore(name: string, make: () => Promise<StoreFixture>): void {
  describe(`QueryStore conformance: ${name}`, () => {
    let fx: StoreFixture;
    let store: PostgresQueryStore;
    let sink: PostgresProjectionSink;
    const run = `r${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
    let n = 0;
    const fresh = () => `w${run}x${++n}`;

    before(async () => {
      fx = await make();
      store = new PostgresQueryStore(fx.routing, { freshWaitMs: 200 });
      sink = new PostgresProjectionSink(fx.routing);
      await sink.ready();
    });
    after(async () => {
      await fx?.close();
    });

    test('the schema is migrated to the newest version', async () => {
      for (const db of fx.routing.dbs()) {
        assert.equal(await migrate(db.sql.primary), MIGRATIONS.length);
        const rows = await db.sql.primary.query<{ version: number }>('SELECT version FROM chorus_schema_version ORDER BY version');
        assert.deepEqual(rows.map((r) => Number(r.version)), MIGRATIONS.map((m) => m.version));
      }
    });

    test('every read answers what the actors answer', async () => {
      const log = generateLog(fresh(), 11);
      await project(sink, log.entries, 1);
      await assertStoreMatches(store, log);
    });

    test('replaying the log, whole or in other batches, changes nothing', async () => {
      const log = generateLog(fresh(), 12, 300);
      await project(sink, log.entries, 2);
      const once = await dumpWorkspace(fx.routing, log.ws);
      await project(sink, log.entries, 3, 200);
      await project(sink, [...log.entries.slice(100), ...log.entries.slice(0, 100)], 4, 7);
      const r = await sink.apply(log.entries);
      assert.equal(r.applied, 0);
      assert.equal(r.skipped, log.entries.length);
      assert.deepStrictEqual(await dumpWorkspace(fx.routing, log.ws), once);
      await assertStoreMatches(store, log);
    });

    test('a write that dies before commit leaves nothing; resuming ends like a clean rebuild', async () => {
      const a = generateLog(fresh(), 13, 300);
      const clean = generateLog(fresh(), 13, 300);
      await project(sink, clean.entries, 5);
      const db = fx.routing.dbFor(a.ws).sql.primary;
      await project(sink, a.entries.slice(0, 150), 6);
      // the process dies inside the transaction of the next batch: rows written, position too, but no commit
      await assert.rejects(db.transaction(async (tx) => {
        await applyEntries(tx, a.entries.slice(150, 260));
        throw new Error('crash');
      }), /crash/);
      // a restart resumes from the stored positions and re-delivers from anywhere earlier
      const positions = await sink.positions();
      const resumeFrom = a.entries.filter((e) => e.pos > (positions.get(e.stream) ?? 0));
      assert.equal(resumeFrom.length, a.entries.length - 150);
      await project(sink, [...a.entries.slice(100, 150), ...resumeFrom], 7);
      assert.deepStrictEqual(await dumpWorkspace(fx.routing, a.ws), await dumpWorkspace(fx.routing, clean.ws));
      await assertStoreMatches(store, a);
    });

    test('positions are kept per stream', async () => {
      const log = generateLog(fresh(), 14, 120);
      await project(sink, log.entries, 8);
      const positions = await sink.positions();
      const last = new Map<string, number>();
      for (const e of log.entries) last.set(e.stream, e.pos);
      for (const [s, p] of last) assert.equal(positions.get(s), p, s);
    });

    test('freshness: a read needing a position the store has not reached answers null; minPos 0 answers', async () => {
      const log = generateLog(fresh(), 15, 60);
      const stream = `channel.${log.ws}.c1`;
      const ahead = log.entries.filter((e) => e.stream === stream).at(-1)!.pos;
      await project(sink, log.entries.filter((e) => !(e.stream === stream && e.pos === ahead)), 9);
      const quick = new PostgresQueryStore(fx.routing, { freshWaitMs: 0 });
      assert.equal(await quick.history(log.ws, 'c1', { limit: 10, order: 'newest' }, { minPos: ahead }), null);
      assert.equal(await quick.channelMembers(log.ws, 'c1', { minPos: ahead }), null);
      assert.ok(await quick.history(log.ws, 'c1', { limit: 10, order: 'newest' }, { minPos: 0 }));
      // the projection catches up while a read waits (freshWaitMs 200): the read answers
      const waiting = store.history(log.ws, 'c1', { limit: 10, order: 'newest' }, { minPos: ahead });
      await sink.apply(log.entries.filter((e) => e.stream === stream && e.pos === ahead));
      const page = await waiting;
      assert.ok(page);
      assert.deepStrictEqual(page, historyPage(log.channels.get('c1')!, { limit: 10, order: 'newest' }));
    });

    test('an unknown workspace, channel or user reads as empty', async () => {
      const ws = fresh();
      assert.deepStrictEqual(await store.history(ws, 'nope', { limit: 5, order: 'newest' }, { minPos: 0 }), { messages: [], hasMore: false, latestSeq: 0 });
      assert.deepStrictEqual(await store.channelMembers(ws, 'nope', { minPos: 0 }), []);
      assert.deepStrictEqual(await store.workspaceMembers(ws, { minPos: 0 }), []);
      assert.deepStrictEqual(await store.profile(ws, 'u9', { minPos: 0 }), { user: 'u9', displayName: 'u9', title: '', avatarUrl: null, tz: 'UTC' });
      assert.deepStrictEqual(await store.readCursors(ws, 'u9', { minPos: 0 }), []);
      assert.equal(await store.thread(ws, 'nope', { parent: 1, limit: 5 }, { minPos: 0 }), null);
    });

    test('undecodable records are skipped and counted, and do not stall the stream', async () => {
      const ws = fresh();
      const good = generateLog(ws, 16, 20);
      const bad: LogEntry = { stream: `channel.${ws}.c1`, pos: 1000, data: new Uint8Array([0xc1, 0xff, 0x00]), ts: 1 };
      const r = await sink.apply([...good.entries, bad]);
      assert.equal(r.poison, 1);
      assert.equal((await sink.positions()).get(bad.stream), 1000);
    });
  });
}
