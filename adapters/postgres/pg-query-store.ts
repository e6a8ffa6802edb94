/**
 * PostgresQueryStore: the QueryStore port (actors/query-store.ts) over the
 * projected tables, on PGlite or PostgreSQL, one database or sharded, with
 * or without read replicas (`QueryRouting` picks the database of the
 * workspace, its `SqlRouter` the replica).
 *
 * Every read is ONE statement that returns the projected position of the
 * entity's log stream together with the rows, so both come from the same
 * snapshot. An answer from a replica whose position is below the caller's
 * `minPos` is refused and the next replica, then the primary, is asked; if
 * even the primary is behind, the store polls for up to `freshWaitMs` and
 * then answers null (the actor serves from memory). Result shapes match the
 * actors' own answers exactly (tests compare them).
 */
import type { MessageView } from '../../actors/events.ts';
import type { HistoryPage } from '../../actors/lib/channel-queries.ts';
import type {
  ChannelMemberView, Freshness, HistoryQuery, ProfileView, QueryStore, ReadCursorView, ThreadPage, WorkspaceMemberView,
} from '../../actors/query-store.ts';
import type { ChannelKind, Role } from '../../actors/protocol.ts';
import { BackendError, ChorusError } from '../../runtime/errors.ts';
import { migrate } from './migrations.ts';
import { QUERY_PROJECTION, reactionsFromJson } from './query-projection.ts';
import type { QueryRouting } from './shard-router.ts';
import type { SqlQueryable } from './sql-client.ts';

/** A value and the projected log position of its stream it reflects. */
export interface Versioned<T> {
  readonly value: T;
  readonly atPos: number;
}

/** Options of PostgresQueryStore; every field has a default. */
export interface PostgresQueryStoreOptions {
  /** How long a read waits for the projection to reach the caller's position before answering null. Default 25 ms. */
  readonly freshWaitMs?: number;
  /** Poll interval while waiting. Default 5 ms. */
  readonly freshPollMs?: number;
  /** Runs the migrations on every database first. Default true. */
  readonly migrate?: boolean;
  /** Projection whose positions tell freshness. Default 'query'. */
  readonly projection?: string;
}

type Row = Record<string, unknown>;

const MSG_COLS = 'seq, user_id, ts, text, parent, reply_count, last_reply_at, edited_at, deleted, reactions, pinned, client_msg_id, mentions, channel_mention, files';
const POS = `(SELECT coalesce(max(pos), 0) AS at_pos FROM chorus_projection_positions WHERE projection = $1 AND stream = $2) p`;
const NO_BOUND = Number.MAX_SAFE_INTEGER;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** A message row as clients see it (the channel actor's `view`). */
export function viewOf(r: Row): MessageView {
  const v: MessageView = { seq: Number(r.seq), user: String(r.user_id), ts: Number(r.ts) };
  const parent = num(r.parent);
  if (parent !== null) v.parent = parent;
  const replies = Number(r.reply_count ?? 0);
  if (replies > 0) {
    v.replyCount = replies;
    const last = num(r.last_reply_at);
    if (last !== null) v.lastReplyAt = last;
  }
  if (r.deleted) {
    v.deleted = true;
    return v;
  }
  v.text = String(r.text);
  v.clientMsgId = String(r.client_msg_id);
  const edited = num(r.edited_at);
  if (edited !== null) v.editedAt = edited;
  const reactions = reactionsFromJson(r.reactions);
  if (reactions) v.reactions = reactions;
  if (r.pinned) v.pinned = true;
  const mentions = r.mentions as string[] | null;
  if (mentions?.length) v.mentions = [...mentions];
  if (r.channel_mention) v.channelMention = true;
  const files = r.files as MessageView['files'] | null | undefined;
  if (files?.length) v.files = files.map((f) => ({ ...f }));
  return v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The query store on PostgreSQL / PGlite. */
export class PostgresQueryStore implements QueryStore {
  private readonly waitMs: number;
  private readonly pollMs: number;
  private readonly projection: string;
  private readyP: Promise<unknown> | undefined;

  constructor(private readonly routing: QueryRouting, private readonly opts: PostgresQueryStoreOptions = {}) {
    this.waitMs = opts.freshWaitMs ?? 25;
    this.pollMs = opts.freshPollMs ?? 5;
    this.projection = opts.projection ?? QUERY_PROJECTION;
    if (!Number.isSafeInteger(this.waitMs) || this.waitMs < 0) throw new RangeError(`freshWaitMs must be a non-negative integer, got ${this.waitMs}`);
    if (!Number.isSafeInteger(this.pollMs) || this.pollMs < 1) throw new RangeError(`freshPollMs must be a positive integer, got ${this.pollMs}`);
  }

  /** Resolves once every database is migrated. */
  ready(): Promise<unknown> {
    this.readyP ??= (this.opts.migrate ?? true) ? Promise.all(this.routing.dbs().map((d) => migrate(d.sql.primary))) : Promise.resolve();
    return this.readyP;
  }

  /**
   * Runs `sql` on a database of `ws` whose projection of `stream` is at least
   * `minPos` (replica, else primary; polling up to freshWaitMs), and builds the
   * value; null when none is fresh enough in time, or when `build` says so.
   */
  private async fresh<T>(ws: string, stream: string, minPos: number, sql: string, params: unknown[], build: (rows: Row[]) => T | null): Promise<Versioned<T> | null> {
    await this.ready();
    const db = this.routing.dbFor(ws);
    const all = [this.projection, stream, ...params];
    const at = (rows: Row[]) => Number(rows[0]?.at_pos ?? 0);
    const deadline = Date.now() + this.waitMs;
    try {
      for (;;) {
        const rows = await db.sql.read((q: SqlQueryable) => q.query<Row>(sql, all), { accept: (r) => at(r) >= minPos });
        const pos = at(rows);
        if (pos >= minPos) {
          const value = build(rows);
          return value === null ? null : { value, atPos: pos };
        }
        if (Date.now() >= deadline) return null;
        await sleep(this.pollMs);
      }
    } catch (err) {
      if (err instanceof ChorusError) throw err;
      throw new BackendError('postgres', `query store read ${stream}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }

  // ---- versioned reads (the cache stores the position with the value) ----------

  historyAt(ws: string, ch: string, q: HistoryQuery, minPos: number): Promise<Versioned<HistoryPage> | null> {
    const dir = q.order === 'newest' ? 'DESC' : 'ASC';
    const sql = `SELECT p.at_pos, (SELECT max(seq) FROM chat_messages WHERE ws = $3 AND ch = $4) AS latest_seq, m.* FROM ${POS}
      LEFT JOIN LATERAL (SELECT ${MSG_COLS} FROM chat_messages
                          WHERE ws = $3 AND ch = $4 AND parent IS NULL AND seq > $5 AND seq < $6
                          ORDER BY seq ${dir} LIMIT $7) m ON true
      ORDER BY m.seq ${dir}`;
    return this.fresh(ws, `channel.${ws}.${ch}`, minPos, sql, [ws, ch, q.after ?? 0, q.before ?? NO_BOUND, q.limit + 1], (rows) => {
      const msgs = rows.filter((r) => r.seq !== null && r.seq !== undefined);
      return {
        messages: msgs.slice(0, q.limit).map(viewOf),
        hasMore: msgs.length > q.limit,
        latestSeq: Number(rows[0]?.latest_seq ?? 0),
      };
    });
  }

  threadAt(ws: string, ch: string, q: { parent: number; after?: number | undefined; limit: number }, minPos: number): Promise<Versioned<ThreadPage> | null> {
    const sql = `SELECT p.at_pos, m.* FROM ${POS}
      LEFT JOIN LATERAL (
        (SELECT ${MSG_COLS} FROM chat_messages WHERE ws = $3 AND ch = $4 AND seq = $5)
        UNION ALL
        (SELECT ${MSG_COLS} FROM chat_messages WHERE ws = $3 AND ch = $4 AND parent = $5 AND seq > $6 ORDER BY seq LIMIT $7)
      ) m ON true
      ORDER BY m.seq`;
    return this.fresh(ws, `channel.${ws}.${ch}`, minPos, sql, [ws, ch, q.parent, q.after ?? 0, q.limit + 1], (rows) => {
      const parent = rows.find((r) => r.seq !== null && Number(r.seq) === q.parent);
      if (!parent || parent.parent !== null) return null; // unknown to the store, or a reply: the actor answers
      const replies = rows.filter((r) => r.seq !== null && Number(r.seq) !== q.parent);
      return { parent: viewOf(parent), replies: replies.slice(0, q.limit).map(viewOf), hasMore: replies.length > q.limit };
    });
  }

  channelMembersAt(ws: string, ch: string, minPos: number): Promise<Versioned<ChannelMemberView[]> | null> {
    const sql = `SELECT p.at_pos, m.user_id, m.joined_at, m.ord FROM ${POS}
      LEFT JOIN chat_channel_members m ON m.ws = $3 AND m.ch = $4 ORDER BY m.ord`;
    return this.fresh(ws, `channel.${ws}.${ch}`, minPos, sql, [ws, ch], (rows) => {
      // rebuild the actor's member table (insertion order, then JS key order) and sort it the way it does
      const table: Record<string, number> = {};
      for (const r of rows) if (r.user_id !== null && r.user_id !== undefined) table[String(r.user_id)] = Number(r.joined_at);
      return Object.entries(table).map(([user, joinedAt]) => ({ user, joinedAt })).sort((a, b) => a.joinedAt - b.joinedAt);
    });
  }

  workspaceMembersAt(ws: string, minPos: number): Promise<Versioned<WorkspaceMemberView[]> | null> {
    const sql = `SELECT p.at_pos, m.user_id, m.role, m.joined_at FROM ${POS}
      LEFT JOIN chat_workspace_members m ON m.ws = $3`;
    return this.fresh(ws, `workspace.${ws}`, minPos, sql, [ws], (rows) =>
      rows.filter((r) => r.user_id !== null && r.user_id !== undefined)
        .map((r) => ({ user: String(r.user_id), role: String(r.role) as Role, joinedAt: Number(r.joined_at) }))
        .sort((a, b) => a.joinedAt - b.joinedAt || (a.user < b.user ? -1 : 1)));
  }

  profileAt(ws: string, user: string, minPos: number): Promise<Versioned<ProfileView> | null> {
    const sql = `SELECT p.at_pos, pr.* FROM ${POS} LEFT JOIN chat_profiles pr ON pr.ws = $3 AND pr.user_id = $4`;
    return this.fresh(ws, `user.${ws}.${user}`, minPos, sql, [ws, user], (rows) => {
      const r = rows[0] ?? {};
      return {
        user,
        displayName: (r.display_name as string | null) ?? user,
        title: (r.title as string | null) ?? '',
        avatarUrl: (r.avatar_url as string | null) ?? null,
        tz: (r.tz as string | null) ?? 'UTC',
      };
    });
  }

  readCursorsAt(ws: string, user: string, minPos: number): Promise<Versioned<ReadCursorView[]> | null> {
    const sql = `SELECT p.at_pos, c.* FROM ${POS} LEFT JOIN chat_read_cursors c ON c.ws = $3 AND c.user_id = $4`;
    return this.fresh(ws, `user.${ws}.${user}`, minPos, sql, [ws, user], (rows) =>
      rows.filter((r) => r.ch !== null && r.ch !== undefined)
        .map((r) => ({
          ch: String(r.ch), kind: String(r.kind) as ChannelKind, name: String(r.name), readSeq: Number(r.read_seq),
          latestSeq: Number(r.latest_seq), mentions: (r.mentions as number[]).map(Number),
        }))
        .sort((a, b) => (a.ch < b.ch ? -1 : a.ch > b.ch ? 1 : 0)));
  }

  // ---- the QueryStore port --------------------------------------------------------

  async history(ws: string, ch: string, q: HistoryQuery, fresh: Freshness): Promise<HistoryPage | null> {
    return (await this.historyAt(ws, ch, q, fresh.minPos))?.value ?? null;
  }
  async thread(ws: string, ch: string, q: { parent: number; after?: number | undefined; limit: number }, fresh: Freshness): Promise<ThreadPage | null> {
    return (await this.threadAt(ws, ch, q, fresh.minPos))?.value ?? null;
  }
  async channelMembers(ws: string, ch: string, fresh: Freshness): Promise<ChannelMemberView[] | null> {
    return (await this.channelMembersAt(ws, ch, fresh.minPos))?.value ?? null;
  }
  async workspaceMembers(ws: string, fresh: Freshness): Promise<WorkspaceMemberView[] | null> {
    return (await this.workspaceMembersAt(ws, fresh.minPos))?.value ?? null;
  }
  async profile(ws: string, user: string, fresh: Freshness): Promise<ProfileView | null> {
    return (await this.profileAt(ws, user, fresh.minPos))?.value ?? null;
  }
  async readCursors(ws: string, user: string, fresh: Freshness): Promise<ReadCursorView[] | null> {
    return (await this.readCursorsAt(ws, user, fresh.minPos))?.value ?? null;
  }
}
