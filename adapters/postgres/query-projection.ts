/**
 * The projection of the chat log into the query tables (migration 2): a
 * deterministic fold of the actors' records, written in batches.
 *
 * `applyEntries(tx, entries)` runs inside one transaction:
 *  1. locks the position rows of the batch's streams (`chorus_projection_positions`,
 *     one per log stream) and drops every record at or below its stream's
 *     stored position, so replaying, overlapping runners and restarts after a
 *     crash change nothing (the positions commit with the rows);
 *  2. decodes each record (`codec.decode(events[])`, the format of
 *     runtime/actor/event-sourced.ts), loads every row the events touch with
 *     one query per table, folds the events in log order in memory with the
 *     same rules as the actors' `apply` (actors/lib/*-state.ts), and writes
 *     the changed rows back with one multi-row upsert (or delete) per table
 *     (NOTES: 100+ rows per statement is 10x one row per statement on PGlite);
 *  3. stores the new positions.
 *
 * Only the event shapes are imported from actors/ (types, no code).
 */
import { codec as defaultCodec, type Codec } from '../../runtime/codec.ts';
import type { LogEntry } from '../../runtime/log/event-log.ts';
import type { ChannelEventRec } from '../../actors/lib/channel-state.ts';
import type { FileRef } from '../../actors/events.ts';
import type { UserEventRec } from '../../actors/lib/user-state.ts';
import type { WorkspaceEventRec } from '../../actors/lib/workspace-state.ts';
import { queryAll, type SqlQueryable, type SqlStatement } from './sql-client.ts';

/** The projection name of the query tables in `chorus_projection_positions`. */
export const QUERY_PROJECTION = 'query';

/** Mention seqs kept per cursor (the user actor's MAX_MENTIONS_TRACKED). */
const MAX_MENTIONS = 100;
/** Rows per INSERT/DELETE statement. */
const ROWS_PER_STATEMENT = 500;

/** What a log stream name says: `channel.<ws>.<ch>`, `workspace.<ws>`, `user.<ws>.<user>`. */
export interface StreamRef {
  readonly kind: 'channel' | 'workspace' | 'user';
  readonly ws: string;
  /** The channel or user id; '' for a workspace. */
  readonly id: string;
}

/** Parses a chat stream name; undefined for anything else. */
export function parseStream(stream: string): StreamRef | undefined {
  const p = stream.split('.');
  if (p.length === 2 && p[0] === 'workspace' && p[1]) return { kind: 'workspace', ws: p[1], id: '' };
  if (p.length === 3 && (p[0] === 'channel' || p[0] === 'user') && p[1] && p[2]) return { kind: p[0], ws: p[1], id: p[2] };
  return undefined;
}

/** The workspace of a chat stream ('' when the name is not one). */
export function wsOfStream(stream: string): string {
  return parseStream(stream)?.ws ?? '';
}

/** The outcome of one `applyEntries`. */
export interface ApplyResult {
  /** Records whose events were folded in. */
  applied: number;
  /** Records at or below their stream's stored position (already applied). */
  skipped: number;
  /** Records that did not decode or were not chat streams (their position still advances; see docs/query-side.md). */
  poison: number;
  /** The stored position of every stream of the batch after the commit. */
  positions: Map<string, number>;
}

// ---- rows ----------------------------------------------------------------------

interface MsgRow {
  ws: string; ch: string; seq: number; user: string; ts: number; text: string; parent: number | null;
  replyCount: number; lastReplyAt: number | null; editedAt: number | null; deleted: boolean;
  reactions: Record<string, string[]> | null; pinned: boolean; cmid: string; mentions: string[] | null; channelMention: boolean;
  /** Attached files (MessageView.files); absent or null when none. */
  files?: FileRef[] | null;
}
interface ChanRow { ws: string; ch: string; name: string; kind: string; topic: string; createdBy: string; createdAt: number; memberCount: number }
interface ChanMemberRow { joinedAt: number; by: string; ord: number }
interface WsRow { ws: string; name: string; createdBy: string; createdAt: number; settings: { allowGuestsToCreateChannels: boolean; allowMembersToInvite: boolean } }
interface WsMemberRow { role: string; joinedAt: number }
interface ProfileRow { displayName: string | null; title: string | null; avatarUrl: string | null; tz: string | null; away: boolean; updatedAt: number }
interface CursorRow { kind: string; name: string; read: number; latest: number; mentions: number[]; member: boolean }

const SEP = '\u0000';
const k2 = (a: string, b: string) => `${a}${SEP}${b}`;
const k3 = (a: string, b: string, c: string | number) => `${a}${SEP}${b}${SEP}${c}`;
const split = (k: string) => k.split(SEP);

/** Rows keyed by primary key: a value, null (known absent / deleted) or missing (not loaded). */
class Table<R> {
  readonly rows = new Map<string, R | null>();
  readonly dirty = new Set<string>();
  readonly wanted = new Set<string>();
  get(k: string): R | null {
    return this.rows.get(k) ?? null;
  }
  set(k: string, v: R | null): void {
    this.rows.set(k, v);
    this.dirty.add(k);
  }
  touch(k: string): void {
    this.dirty.add(k);
  }
}

/** Everything one batch reads and writes. */
class Fold {
  readonly msgs = new Table<MsgRow>();
  readonly chans = new Table<ChanRow>();
  readonly chanMembers = new Table<ChanMemberRow>();
  readonly wss = new Table<WsRow>();
  readonly wsMembers = new Table<WsMemberRow>();
  readonly profiles = new Table<ProfileRow>();
  readonly cursors = new Table<CursorRow>();
}

type Work = { ref: StreamRef; entry: LogEntry; events: Array<{ type: string }> };

/**
 * Applies log records to the query tables inside the caller's transaction
 * `tx` (see the file comment). Records of one stream must come in log order;
 * streams may interleave.
 */
export async function applyEntries(
  tx: SqlQueryable,
  entries: readonly LogEntry[],
  opts: { projection?: string; codec?: Codec; now?: number; book?: PositionBook } = {},
): Promise<ApplyResult> {
  const projection = opts.projection ?? QUERY_PROJECTION;
  const codec = opts.codec ?? defaultCodec;
  const now = opts.now ?? Date.now();
  const streams = [...new Set(entries.map((e) => e.stream))].sort();
  const result: ApplyResult = { applied: 0, skipped: 0, poison: 0, positions: new Map() };
  if (!streams.length) return result;

  // 1. positions, locked (sorted, so concurrent runners lock in the same order)
  if (opts.book && opts.book.projection !== projection) throw new TypeError(`position book of ${opts.book.projection} used for ${projection}`);
  const pos = opts.book ? await opts.book.lock(tx, streams, now) : await lockPositions(tx, projection, streams, now);
  const before = new Map(pos);

  // 2. decode what is new
  const work: Work[] = [];
  for (const e of entries) {
    const cur = pos.get(e.stream) ?? 0;
    if (e.pos <= cur) {
      result.skipped++;
      continue;
    }
    pos.set(e.stream, e.pos);
    const ref = parseStream(e.stream);
    let events: unknown;
    try {
      events = ref ? codec.decode(e.data) : undefined;
    } catch {
      events = undefined;
    }
    if (!ref || !Array.isArray(events)) {
      result.poison++;
      continue;
    }
    work.push({ ref, entry: e, events: events.filter((x): x is { type: string } => typeof x === 'object' && x !== null && typeof (x as { type?: unknown }).type === 'string') });
    result.applied++;
  }

  // 3. load, fold; 4. the writes and the positions, sent together (one round trip on the PGlite worker)
  const writes: SqlStatement[] = [];
  if (work.length) {
    const f = new Fold();
    collectKeys(f, work);
    if (opts.book) recallChannels(f, opts.book);
    await load(tx, f);
    for (const w of work) foldRecord(f, w);
    if (opts.book) for (const [k, c] of f.chans.rows) if (c) opts.book.stage(k, c);
    writes.push(...writeStatements(f));
  }
  const moved = new Map(streams.filter((s) => pos.get(s) !== before.get(s)).map((s) => [s, pos.get(s)!]));
  await writeBatch(tx, writes, opts.book ? opts.book.storeStatement(moved, before, now) : storePositionsStatement(projection, moved, now));
  result.positions = pos;
  return result;
}

/**
 * Creates the missing position rows of `streams` for `projection` and locks
 * them (FOR UPDATE, in stream order so concurrent writers lock alike);
 * resolves to each stream's stored position. Inside the caller's transaction.
 */
export async function lockPositions(tx: SqlQueryable, projection: string, streams: readonly string[], now = Date.now()): Promise<Map<string, number>> {
  const sorted = [...streams].sort();
  await tx.query(
    `INSERT INTO chorus_projection_positions (projection, stream, ws, pos, updated_at)
     SELECT $1, s, w, 0, $4 FROM unnest($2::text[], $3::text[]) AS t(s, w)
     ON CONFLICT (projection, stream) DO NOTHING`,
    [projection, sorted, sorted.map(wsOfStream), now],
  );
  const locked = await tx.query<{ stream: string; pos: number }>(
    `SELECT stream, pos FROM chorus_projection_positions WHERE projection = $1 AND stream = ANY($2::text[]) ORDER BY stream FOR UPDATE`,
    [projection, sorted],
  );
  return new Map<string, number>(locked.map((r) => [r.stream, Number(r.pos)]));
}

/**
 * The positions of one projection in one database as this process last
 * committed them, so a batch of streams seen before costs no position reads
 * and no row locks: only the final update, which checks that each stored
 * position is still the one the batch started from (compare and set). Another
 * writer that moved a position meanwhile (a second runner during a lease
 * handover, the shard move tool) makes that update come short: the book
 * forgets everything and the transaction fails with a serialization failure
 * (SQLSTATE 40001), which the sinks retry, reading the table again. At 10,000
 * streams the three position statements of a batch were the largest part of
 * the projection's database time (about 60 us per stream).
 */
export class PositionBook {
  private readonly known = new Map<string, number>();
  /**
   * Rows this process wrote with the positions it remembers (the query
   * projection's channel rows), by key: a row changes only with a record of
   * its stream, so it is current exactly as long as the stream's position
   * is, and is forgotten with it. `staged`: written by the transaction in
   * flight, remembered once it commits.
   */
  private readonly rows = new Map<string, unknown>();
  private readonly staged = new Map<string, unknown>();
  private turn: Promise<unknown> = Promise.resolve();
  constructor(readonly projection: string, private readonly max = 200_000) {}

  /**
   * Runs `fn` (a transaction that uses this book) after the ones before it:
   * a transaction must not recall a row another one has changed but not
   * committed yet. The projection runner writes one batch at a time, so
   * this never waits there.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  /** `stream`'s position is remembered (so are the rows staged with it). */
  knows(stream: string): boolean {
    return this.known.has(stream);
  }

  /** A row remembered under `key` (see `stage`). */
  row<R>(key: string): R | undefined {
    return this.rows.get(key) as R | undefined;
  }

  /** Remembers `row` under `key` once the transaction in flight commits (`committed`). The caller no longer changes it. */
  stage(key: string, row: unknown): void {
    this.staged.set(key, row);
  }

  /** Each stream's stored position: remembered, or created and locked in `tx` (`lockPositions`). */
  async lock(tx: SqlQueryable, streams: readonly string[], now = Date.now()): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const unknown: string[] = [];
    for (const s of streams) {
      const p = this.known.get(s);
      if (p === undefined) unknown.push(s);
      else out.set(s, p);
    }
    if (unknown.length) for (const [s, p] of await lockPositions(tx, this.projection, unknown, now)) out.set(s, p);
    return out;
  }

  /**
   * Stores the moved positions if every one is still at its value in
   * `before`: the statement, to send with the batch's writes (`queryAll`),
   * and the check of its rows, which forgets all and throws (40001) when a
   * position had moved; undefined when nothing moved.
   */
  storeStatement(moved: ReadonlyMap<string, number>, before: ReadonlyMap<string, number>, now = Date.now()): PositionWrite | undefined {
    if (!moved.size) return undefined;
    const streams = [...moved.keys()];
    return {
      statement: {
        text: `WITH u AS (
                 UPDATE chorus_projection_positions p SET pos = ($3::jsonb ->> p.stream)::bigint, updated_at = $5
                  WHERE p.projection = $1 AND p.stream = ANY($2::text[]) AND p.pos = ($4::jsonb ->> p.stream)::bigint
                  RETURNING 1)
               SELECT count(*)::int AS n FROM u`,
        params: [this.projection, streams, positionsJson(moved, streams), positionsJson(before, streams), now],
      },
      check: (rows) => {
        const n = Number(rows[0]?.n);
        if (n === streams.length) return;
        this.forget();
        throw Object.assign(new Error(`projection ${this.projection}: ${streams.length - n} position(s) moved by another writer; retrying from the table`), { code: '40001' });
      },
    };
  }

  /** After a commit: these are the stored positions now. */
  committed(positions: ReadonlyMap<string, number>): void {
    if (this.known.size + positions.size > this.max) {
      this.known.clear();
      this.rows.clear();
    }
    for (const [s, p] of positions) this.known.set(s, p);
    for (const [k, r] of this.staged) this.rows.set(k, r);
    this.staged.clear();
  }

  /** After a failed transaction, or when another writer may have moved positions: read them from the table next time. */
  forget(): void {
    this.known.clear();
    this.rows.clear();
    this.staged.clear();
  }
}

/** One PositionBook per database (shard) of a projection. */
export class PositionBooks {
  private readonly books = new Map<string, PositionBook>();
  constructor(readonly projection: string) {}
  /** The book of the database with id `dbId`. */
  of(dbId: string): PositionBook {
    let b = this.books.get(dbId);
    if (!b) this.books.set(dbId, (b = new PositionBook(this.projection)));
    return b;
  }
}

/**
 * `{stream: position}` as JSON, the new or expected positions of a position
 * update. `stream = ANY(...)` probes the primary key per stream whatever the
 * planner knows (an UPDATE ... FROM unnest was planned, without statistics as
 * on PGlite, which has no autovacuum, as a hash join over every position row:
 * 17 ms a batch at 12,000 streams), and each row finds its value in the jsonb
 * object by binary search; `array_position` over parallel arrays was a linear
 * scan per row: 46 ms against 16 ms for a batch of 500 streams.
 */
function positionsJson(positions: ReadonlyMap<string, number>, streams: readonly string[]): string {
  const o: Record<string, number> = {};
  for (const s of streams) o[s] = positions.get(s) ?? 0;
  return JSON.stringify(o);
}

/** A position update to send with a batch's writes, and the check of what it returned. */
export interface PositionWrite {
  readonly statement: SqlStatement;
  check(rows: readonly Record<string, unknown>[]): void;
}

/** Sends a batch's writes and its position update together (`queryAll`); throws as the update's check does. */
export async function writeBatch(tx: SqlQueryable, writes: readonly SqlStatement[], position: PositionWrite | undefined): Promise<void> {
  const rows = await queryAll(tx, position ? [...writes, position.statement] : writes);
  position?.check(rows[rows.length - 1]!);
}

/** Stores new positions of streams whose rows `lockPositions` created and locked. */
export async function storePositions(tx: SqlQueryable, projection: string, moved: ReadonlyMap<string, number>, now = Date.now()): Promise<void> {
  const st = storePositionsStatement(projection, moved, now);
  if (st) await tx.query(st.statement.text, st.statement.params);
}

/** `storePositions` as a statement to send with others; undefined when nothing moved. */
function storePositionsStatement(projection: string, moved: ReadonlyMap<string, number>, now: number): PositionWrite | undefined {
  if (!moved.size) return undefined;
  const streams = [...moved.keys()];
  return {
    statement: {
      text: `UPDATE chorus_projection_positions p SET pos = ($3::jsonb ->> p.stream)::bigint, updated_at = $4
              WHERE p.projection = $1 AND p.stream = ANY($2::text[])`,
      params: [projection, streams, positionsJson(moved, streams), now],
    },
    check: () => {},
  };
}

// ---- keys ----------------------------------------------------------------------

function collectKeys(f: Fold, work: Work[]): void {
  for (const { ref, events } of work) {
    const { ws, id } = ref;
    if (ref.kind === 'channel') {
      // the channel row changes with its facts, topic and member count; a message leaves it alone
      for (const ev of events) {
        const e = ev as ChannelEventRec;
        switch (e.type) {
          case 'created': f.chans.wanted.add(k2(ws, id)); for (const u of e.members) f.chanMembers.wanted.add(k3(ws, id, u)); break;
          case 'joined': case 'left': f.chans.wanted.add(k2(ws, id)); f.chanMembers.wanted.add(k3(ws, id, e.user)); break;
          case 'topic': f.chans.wanted.add(k2(ws, id)); break;
          case 'posted': if (e.msg.parent !== undefined) f.msgs.wanted.add(k3(ws, id, e.msg.parent)); break;
          case 'edited': case 'deleted': case 'reaction': case 'pinned': f.msgs.wanted.add(k3(ws, id, e.seq)); break;
        }
      }
    } else if (ref.kind === 'workspace') {
      f.wss.wanted.add(ws);
      for (const ev of events) {
        const e = ev as WorkspaceEventRec;
        if (e.type === 'created') f.wsMembers.wanted.add(k2(ws, e.by));
        else if (e.type === 'joined' || e.type === 'removed' || e.type === 'role') f.wsMembers.wanted.add(k2(ws, e.user));
      }
    } else {
      for (const ev of events) {
        const e = ev as UserEventRec;
        if (e.type === 'profile' || e.type === 'away') f.profiles.wanted.add(k2(ws, id));
        else if (e.type === 'read' || e.type === 'notified' || e.type === 'membership') f.cursors.wanted.add(k3(ws, id, e.ch));
      }
    }
  }
}

// ---- load ----------------------------------------------------------------------

function columns(keys: Set<string>, n: number): string[][] {
  const cols: string[][] = Array.from({ length: n }, () => []);
  for (const k of keys) split(k).forEach((v, i) => cols[i]!.push(v));
  return cols;
}

/**
 * Channel rows of streams whose position the book remembers are taken from
 * it, not read: at 500 posts over 500 channels the SELECT was a fifth of the
 * batch's database time. The fold then changes them in place; a failed
 * transaction makes the book forget them.
 */
function recallChannels(f: Fold, book: PositionBook): void {
  for (const k of f.chans.wanted) {
    const [ws, ch] = split(k);
    const row = book.knows(`channel.${ws}.${ch}`) ? book.row<ChanRow>(k) : undefined;
    if (!row) continue;
    f.chans.rows.set(k, row);
    f.chans.wanted.delete(k);
  }
}

/** Reads the rows the batch touches: one SELECT per table, sent together. */
async function load(tx: SqlQueryable, f: Fold): Promise<void> {
  const reads: Array<{ statement: SqlStatement; take(rows: Record<string, unknown>[]): void }> = [];
  const read = (text: string, params: unknown[], take: (rows: Record<string, unknown>[]) => void) => reads.push({ statement: { text, params }, take });
  if (f.msgs.wanted.size) {
    const [ws, ch, seq] = columns(f.msgs.wanted, 3);
    read(`SELECT m.* FROM chat_messages m JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS k(ws, ch, seq)
         ON m.ws = k.ws AND m.ch = k.ch AND m.seq = k.seq`, [ws, ch, seq!.map(Number)], (rows) => {
      for (const r of rows) f.msgs.rows.set(k3(String(r.ws), String(r.ch), Number(r.seq)), msgFromRow(r));
    });
  }
  if (f.chans.wanted.size) {
    const [ws, ch] = columns(f.chans.wanted, 2);
    read(`SELECT c.* FROM chat_channels c JOIN unnest($1::text[], $2::text[]) AS k(ws, ch) ON c.ws = k.ws AND c.ch = k.ch`, [ws, ch], (rows) => {
      for (const r of rows) {
        f.chans.rows.set(k2(String(r.ws), String(r.ch)), {
          ws: String(r.ws), ch: String(r.ch), name: String(r.name), kind: String(r.kind), topic: String(r.topic), createdBy: String(r.created_by),
          createdAt: Number(r.created_at), memberCount: Number(r.member_count),
        });
      }
    });
  }
  if (f.chanMembers.wanted.size) {
    const [ws, ch, user] = columns(f.chanMembers.wanted, 3);
    read(`SELECT m.* FROM chat_channel_members m JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(ws, ch, u)
         ON m.ws = k.ws AND m.ch = k.ch AND m.user_id = k.u`, [ws, ch, user], (rows) => {
      for (const r of rows) f.chanMembers.rows.set(k3(String(r.ws), String(r.ch), String(r.user_id)), { joinedAt: Number(r.joined_at), by: String(r.added_by), ord: Number(r.ord) });
    });
  }
  if (f.wss.wanted.size) {
    read(`SELECT * FROM chat_workspaces WHERE ws = ANY($1::text[])`, [[...f.wss.wanted]], (rows) => {
      for (const r of rows) {
        f.wss.rows.set(String(r.ws), { ws: String(r.ws), name: String(r.name), createdBy: String(r.created_by), createdAt: Number(r.created_at), settings: r.settings as WsRow['settings'] });
      }
    });
  }
  if (f.wsMembers.wanted.size) {
    const [ws, user] = columns(f.wsMembers.wanted, 2);
    read(`SELECT m.* FROM chat_workspace_members m JOIN unnest($1::text[], $2::text[]) AS k(ws, u) ON m.ws = k.ws AND m.user_id = k.u`, [ws, user], (rows) => {
      for (const r of rows) f.wsMembers.rows.set(k2(String(r.ws), String(r.user_id)), { role: String(r.role), joinedAt: Number(r.joined_at) });
    });
  }
  if (f.profiles.wanted.size) {
    const [ws, user] = columns(f.profiles.wanted, 2);
    read(`SELECT p.* FROM chat_profiles p JOIN unnest($1::text[], $2::text[]) AS k(ws, u) ON p.ws = k.ws AND p.user_id = k.u`, [ws, user], (rows) => {
      for (const r of rows) {
        f.profiles.rows.set(k2(String(r.ws), String(r.user_id)), {
          displayName: r.display_name as string | null, title: r.title as string | null, avatarUrl: r.avatar_url as string | null,
          tz: r.tz as string | null, away: Boolean(r.away), updatedAt: Number(r.updated_at),
        });
      }
    });
  }
  if (f.cursors.wanted.size) {
    const [ws, user, ch] = columns(f.cursors.wanted, 3);
    read(`SELECT c.* FROM chat_read_cursors c JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(ws, u, ch)
         ON c.ws = k.ws AND c.user_id = k.u AND c.ch = k.ch`, [ws, user, ch], (rows) => {
      for (const r of rows) {
        f.cursors.rows.set(k3(String(r.ws), String(r.user_id), String(r.ch)), {
          kind: String(r.kind), name: String(r.name), read: Number(r.read_seq), latest: Number(r.latest_seq),
          mentions: (r.mentions as number[]).map(Number), member: Boolean(r.member),
        });
      }
    });
  }
  const rows = await queryAll(tx, reads.map((r) => r.statement));
  reads.forEach((r, i) => r.take(rows[i]!));
}

/**
 * Reactions are stored as `[[emoji, [user, ...]], ...]` in the actor's
 * object order (jsonb would sort object keys), and read back into an object
 * built in that order, so both paths list reactions alike.
 */
export function reactionsFromJson(v: unknown): Record<string, string[]> | null {
  if (!Array.isArray(v) || !v.length) return null;
  const out: Record<string, string[]> = {};
  for (const [emoji, users] of v as Array<[string, string[]]>) out[emoji] = [...users];
  return out;
}

/** A chat_messages row as the fold's record. */
export function msgFromRow(r: Record<string, unknown>): MsgRow {
  return {
    ws: String(r.ws), ch: String(r.ch), seq: Number(r.seq), user: String(r.user_id), ts: Number(r.ts), text: String(r.text),
    parent: r.parent === null || r.parent === undefined ? null : Number(r.parent), replyCount: Number(r.reply_count),
    lastReplyAt: r.last_reply_at === null || r.last_reply_at === undefined ? null : Number(r.last_reply_at),
    editedAt: r.edited_at === null || r.edited_at === undefined ? null : Number(r.edited_at), deleted: Boolean(r.deleted),
    reactions: reactionsFromJson(r.reactions), pinned: Boolean(r.pinned), cmid: String(r.client_msg_id),
    mentions: (r.mentions as string[] | null) ?? null, channelMention: Boolean(r.channel_mention),
    files: (r.files as FileRef[] | null | undefined) ?? null,
  };
}

// ---- fold (the actors' apply rules, on rows) -------------------------------------

function foldRecord(f: Fold, w: Work): void {
  const { ref, entry } = w;
  w.events.forEach((ev, i) => {
    // member order key: log position, then place in the record (an actor's member table lists in insertion order)
    if (ref.kind === 'channel') foldChannel(f, ref.ws, ref.id, ev as ChannelEventRec, entry.pos * 65536 + Math.min(i, 63) * 1024);
    else if (ref.kind === 'workspace') foldWorkspace(f, ref.ws, ev as WorkspaceEventRec);
    else foldUser(f, ref.ws, ref.id, ev as UserEventRec);
  });
}

function chanRow(f: Fold, ws: string, ch: string): ChanRow {
  const k = k2(ws, ch);
  let c = f.chans.get(k);
  // no `created` seen (cannot happen with the actors, which persist it first): a row without facts
  if (!c) f.chans.set(k, (c = { ws, ch, name: '', kind: 'public', topic: '', createdBy: '', createdAt: 0, memberCount: 0 }));
  f.chans.touch(k);
  return c;
}

function addChanMember(f: Fold, c: ChanRow, user: string, by: string, at: number, ord: number): boolean {
  const k = k3(c.ws, c.ch, user);
  if (f.chanMembers.get(k)) return false;
  f.chanMembers.set(k, { joinedAt: at, by, ord });
  c.memberCount++;
  return true;
}

function liveMsg(f: Fold, ws: string, ch: string, seq: number): MsgRow | null {
  const k = k3(ws, ch, seq);
  const m = f.msgs.get(k);
  if (!m || m.deleted) return null;
  f.msgs.touch(k);
  return m;
}

function foldChannel(f: Fold, ws: string, ch: string, e: ChannelEventRec, ord: number): void {
  switch (e.type) {
    case 'created': {
      const existing = f.chans.get(k2(ws, ch));
      if (existing && existing.createdBy !== '') break; // facts already set: the actor ignores a second `created`
      const c = chanRow(f, ws, ch);
      Object.assign(c, { name: e.facts.name, kind: e.facts.kind, topic: e.topic, createdBy: e.facts.createdBy, createdAt: e.facts.createdAt });
      e.members.forEach((u, i) => addChanMember(f, c, u, e.facts.createdBy, e.facts.createdAt, ord + Math.min(i, 1023)));
      break;
    }
    case 'joined':
      addChanMember(f, chanRow(f, ws, ch), e.user, e.by, e.at, ord);
      break;
    case 'left': {
      const k = k3(ws, ch, e.user);
      if (!f.chanMembers.get(k)) break;
      f.chanMembers.set(k, null);
      chanRow(f, ws, ch).memberCount--;
      break;
    }
    case 'topic':
      chanRow(f, ws, ch).topic = e.topic;
      break;
    case 'posted': {
      const m = e.msg;
      const row: MsgRow = {
        ws, ch, seq: m.seq, user: m.user, ts: m.ts, text: m.text, parent: m.parent ?? null, replyCount: m.replies?.length ?? 0,
        lastReplyAt: m.lastReplyAt ?? null, editedAt: m.editedAt ?? null, deleted: m.deleted === true,
        reactions: m.reactions ? structuredClone(m.reactions) : null, pinned: m.pinned === true, cmid: m.cmid,
        mentions: m.mentions?.length ? [...m.mentions] : null, channelMention: m.channelMention === true,
        files: m.files?.length ? m.files.map((x) => ({ ...x })) : null,
      };
      f.msgs.set(k3(ws, ch, m.seq), row);
      if (m.parent !== undefined) {
        const pk = k3(ws, ch, m.parent);
        const p = f.msgs.get(pk);
        if (p) {
          p.replyCount++;
          p.lastReplyAt = m.ts;
          f.msgs.touch(pk);
        }
      }
      break;
    }
    case 'edited': {
      const m = liveMsg(f, ws, ch, e.seq);
      if (!m) break;
      m.text = e.text;
      m.editedAt = e.at;
      m.mentions = e.mentions.length ? [...e.mentions] : null;
      m.channelMention = e.channelMention;
      break;
    }
    case 'deleted': {
      const m = liveMsg(f, ws, ch, e.seq);
      if (!m) break;
      Object.assign(m, { deleted: true, text: '', reactions: null, mentions: null, channelMention: false, pinned: false });
      break;
    }
    case 'reaction': {
      const m = liveMsg(f, ws, ch, e.seq);
      if (!m) break;
      const r = m.reactions ?? {};
      const users = Object.hasOwn(r, e.emoji) ? r[e.emoji]! : [];
      const next = e.add ? (users.includes(e.user) ? users : [...users, e.user]) : users.filter((u) => u !== e.user);
      if (next.length) r[e.emoji] = next;
      else delete r[e.emoji];
      m.reactions = Object.keys(r).length ? r : null;
      break;
    }
    case 'pinned': {
      const m = liveMsg(f, ws, ch, e.seq);
      if (m) m.pinned = e.pinned;
      break;
    }
  }
}

function wsRow(f: Fold, ws: string): WsRow {
  let w = f.wss.get(ws);
  if (!w) f.wss.set(ws, (w = { ws, name: '', createdBy: '', createdAt: 0, settings: { allowGuestsToCreateChannels: false, allowMembersToInvite: false } }));
  f.wss.touch(ws);
  return w;
}

function foldWorkspace(f: Fold, ws: string, e: WorkspaceEventRec): void {
  switch (e.type) {
    case 'created': {
      Object.assign(wsRow(f, ws), { name: e.name, createdBy: e.by, createdAt: e.at });
      f.wsMembers.set(k2(ws, e.by), { role: 'owner', joinedAt: e.at });
      break;
    }
    case 'settings': {
      const w = wsRow(f, ws);
      if (e.name !== undefined) w.name = e.name;
      if (e.allowGuestsToCreateChannels !== undefined) w.settings = { ...w.settings, allowGuestsToCreateChannels: e.allowGuestsToCreateChannels };
      if (e.allowMembersToInvite !== undefined) w.settings = { ...w.settings, allowMembersToInvite: e.allowMembersToInvite };
      break;
    }
    case 'joined':
      f.wsMembers.set(k2(ws, e.user), { role: e.role, joinedAt: e.at });
      break;
    case 'removed':
      f.wsMembers.set(k2(ws, e.user), null);
      break;
    case 'role': {
      const m = f.wsMembers.get(k2(ws, e.user));
      if (m) f.wsMembers.set(k2(ws, e.user), { ...m, role: e.role });
      break;
    }
  }
}

function cursor(f: Fold, k: string, kind = 'public', name = ''): CursorRow {
  let c = f.cursors.get(k);
  if (!c) f.cursors.set(k, (c = { kind, name, read: 0, latest: 0, mentions: [], member: false }));
  f.cursors.touch(k);
  return c;
}

function foldUser(f: Fold, ws: string, user: string, e: UserEventRec): void {
  switch (e.type) {
    case 'profile': {
      const k = k2(ws, user);
      const p = f.profiles.get(k) ?? { displayName: null, title: null, avatarUrl: null, tz: null, away: false, updatedAt: 0 };
      if (e.displayName !== undefined) p.displayName = e.displayName;
      if (e.title !== undefined) p.title = e.title;
      if (e.avatarUrl !== undefined) p.avatarUrl = e.avatarUrl;
      if (e.tz !== undefined) p.tz = e.tz;
      p.updatedAt = e.at;
      f.profiles.set(k, p);
      break;
    }
    case 'away': {
      const k = k2(ws, user);
      const p = f.profiles.get(k) ?? { displayName: null, title: null, avatarUrl: null, tz: null, away: false, updatedAt: 0 };
      p.away = e.away;
      f.profiles.set(k, p);
      break;
    }
    case 'read': {
      const c = cursor(f, k3(ws, user, e.ch));
      c.read = Math.max(c.read, e.seq);
      c.latest = Math.max(c.latest, c.read);
      c.mentions = c.mentions.filter((m) => m > c.read);
      break;
    }
    case 'notified': {
      const c = cursor(f, k3(ws, user, e.ch), e.kind, e.name);
      c.member = true;
      c.latest = Math.max(c.latest, e.seq);
      if (e.seq > c.read && !c.mentions.includes(e.seq)) {
        c.mentions.push(e.seq);
        c.mentions.sort((a, b) => a - b);
        if (c.mentions.length > MAX_MENTIONS) c.mentions.shift();
      }
      break;
    }
    case 'membership': {
      const k = k3(ws, user, e.ch);
      if (!e.joined) {
        f.cursors.set(k, null);
        break;
      }
      const c = cursor(f, k, e.kind, e.name);
      c.member = true;
      c.kind = e.kind;
      c.name = e.name;
      c.latest = Math.max(c.latest, e.latestSeq);
      if (c.read === 0) c.read = e.latestSeq;
      break;
    }
  }
}

// ---- write -----------------------------------------------------------------------

type Col = readonly [name: string, type: 'text' | 'bigint' | 'integer' | 'boolean' | 'jsonb'];

function param(i: number, t: Col[1]): string {
  return t === 'jsonb' ? `$${i}::text[]::jsonb[]` : `$${i}::${t}[]`;
}

/** INSERT ... SELECT FROM unnest(...) ON CONFLICT (key) DO UPDATE, in chunks: the statements. */
function upsert(table: string, cols: readonly Col[], key: readonly string[], rows: unknown[][]): SqlStatement[] {
  const names = cols.map((c) => c[0]).join(', ');
  const sets = cols.filter((c) => !key.includes(c[0])).map((c) => `${c[0]} = EXCLUDED.${c[0]}`).join(', ');
  const text = `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${cols.map((c, i) => param(i + 1, c[1])).join(', ')})
               ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${sets}`;
  const out: SqlStatement[] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
    out.push({ text, params: cols.map((c, j) => chunk.map((r) => (c[1] === 'jsonb' && r[j] !== null ? JSON.stringify(r[j]) : r[j]))) });
  }
  return out;
}

/** DELETE by key, in chunks: the statements. */
function remove(table: string, cols: readonly Col[], keys: string[][]): SqlStatement[] {
  const text = `DELETE FROM ${table} WHERE (${cols.map((c) => c[0]).join(', ')}) IN (SELECT * FROM unnest(${cols.map((c, i) => param(i + 1, c[1])).join(', ')}))`;
  const out: SqlStatement[] = [];
  for (let i = 0; i < keys.length; i += ROWS_PER_STATEMENT) {
    const chunk = keys.slice(i, i + ROWS_PER_STATEMENT);
    out.push({ text, params: cols.map((c, j) => chunk.map((r) => (c[1] === 'text' ? r[j] : Number(r[j])))) });
  }
  return out;
}

/** Splits a table's dirty keys into rows to upsert and keys to delete. */
function changes<R>(t: Table<R>): { up: Array<[string[], R]>; del: string[][] } {
  const up: Array<[string[], R]> = [];
  const del: string[][] = [];
  for (const k of t.dirty) {
    const v = t.rows.get(k);
    if (v) up.push([split(k), v]);
    else if (v === null) del.push(split(k));
  }
  return { up, del };
}

const MSG_COLS: readonly Col[] = [
  ['ws', 'text'], ['ch', 'text'], ['seq', 'bigint'], ['user_id', 'text'], ['ts', 'bigint'], ['text', 'text'], ['parent', 'bigint'],
  ['reply_count', 'integer'], ['last_reply_at', 'bigint'], ['edited_at', 'bigint'], ['deleted', 'boolean'], ['reactions', 'jsonb'],
  ['pinned', 'boolean'], ['client_msg_id', 'text'], ['mentions', 'jsonb'], ['channel_mention', 'boolean'], ['files', 'jsonb'],
];

/** Rows in chat_messages column order (also used by the bench's bulk loader and the shard copier). */
export function msgValues(m: MsgRow): unknown[] {
  return [m.ws, m.ch, m.seq, m.user, m.ts, m.text, m.parent, m.replyCount, m.lastReplyAt, m.editedAt, m.deleted,
    m.reactions ? Object.entries(m.reactions) : null, m.pinned, m.cmid, m.mentions, m.channelMention, m.files ?? null];
}

/** Upserts message rows (exported for bulk loads: the bench and tests). */
export async function upsertMessages(tx: SqlQueryable, rows: MsgRow[]): Promise<void> {
  await queryAll(tx, upsert('chat_messages', MSG_COLS, ['ws', 'ch', 'seq'], rows.map(msgValues)));
}
export type { MsgRow };

/** The statements that write a folded batch, in order (deletes of a table before its upserts). */
function writeStatements(f: Fold): SqlStatement[] {
  const out: SqlStatement[] = [];
  const msgs = changes(f.msgs);
  if (msgs.up.length) out.push(...upsert('chat_messages', MSG_COLS, ['ws', 'ch', 'seq'], msgs.up.map(([, m]) => msgValues(m))));

  const chans = changes(f.chans);
  if (chans.up.length) {
    out.push(...upsert('chat_channels',
      [['ws', 'text'], ['ch', 'text'], ['name', 'text'], ['kind', 'text'], ['topic', 'text'], ['created_by', 'text'], ['created_at', 'bigint'], ['member_count', 'integer']],
      ['ws', 'ch'], chans.up.map(([, c]) => [c.ws, c.ch, c.name, c.kind, c.topic, c.createdBy, c.createdAt, c.memberCount])));
  }

  const cm = changes(f.chanMembers);
  const cmKey: Col[] = [['ws', 'text'], ['ch', 'text'], ['user_id', 'text']];
  if (cm.del.length) out.push(...remove('chat_channel_members', cmKey, cm.del));
  if (cm.up.length) {
    out.push(...upsert('chat_channel_members', [...cmKey, ['joined_at', 'bigint'], ['added_by', 'text'], ['ord', 'bigint']], ['ws', 'ch', 'user_id'],
      cm.up.map(([k, m]) => [...k, m.joinedAt, m.by, m.ord])));
  }

  const wss = changes(f.wss);
  if (wss.up.length) {
    out.push(...upsert('chat_workspaces', [['ws', 'text'], ['name', 'text'], ['created_by', 'text'], ['created_at', 'bigint'], ['settings', 'jsonb']], ['ws'],
      wss.up.map(([, w]) => [w.ws, w.name, w.createdBy, w.createdAt, w.settings])));
  }

  const wm = changes(f.wsMembers);
  const wmKey: Col[] = [['ws', 'text'], ['user_id', 'text']];
  if (wm.del.length) out.push(...remove('chat_workspace_members', wmKey, wm.del));
  if (wm.up.length) out.push(...upsert('chat_workspace_members', [...wmKey, ['role', 'text'], ['joined_at', 'bigint']], ['ws', 'user_id'], wm.up.map(([k, m]) => [...k, m.role, m.joinedAt])));

  const pr = changes(f.profiles);
  if (pr.up.length) {
    out.push(...upsert('chat_profiles',
      [['ws', 'text'], ['user_id', 'text'], ['display_name', 'text'], ['title', 'text'], ['avatar_url', 'text'], ['tz', 'text'], ['away', 'boolean'], ['updated_at', 'bigint']],
      ['ws', 'user_id'], pr.up.map(([k, p]) => [...k, p.displayName, p.title, p.avatarUrl, p.tz, p.away, p.updatedAt])));
  }

  const cu = changes(f.cursors);
  const cuKey: Col[] = [['ws', 'text'], ['user_id', 'text'], ['ch', 'text']];
  if (cu.del.length) out.push(...remove('chat_read_cursors', cuKey, cu.del));
  if (cu.up.length) {
    out.push(...upsert('chat_read_cursors',
      [...cuKey, ['kind', 'text'], ['name', 'text'], ['read_seq', 'bigint'], ['latest_seq', 'bigint'], ['mentions', 'jsonb'], ['member', 'boolean']],
      ['ws', 'user_id', 'ch'], cu.up.map(([k, c]) => [...k, c.kind, c.name, c.read, c.latest, c.mentions, c.member])));
  }
  return out;
}
