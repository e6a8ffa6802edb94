/**
 * The QueryStore port: the read side of the chat (history, threads, member
 * lists, profiles, read cursors), filled by projections of the log
 * (docs/query-side.md). The actors stay the only writers of truth and still
 * decide every permission: an actor checks the caller first, then asks the
 * store for the data.
 *
 * Freshness (read-your-writes): every read names the log position of the
 * actor's stream that the caller has acknowledged (`minPos`, the actor's
 * last appended position). An implementation answers only with data that
 * reflects at least that position, possibly after waiting briefly for the
 * projection to catch up; otherwise it answers `null` and the caller serves
 * from its own memory. `minPos: 0` accepts any projected state.
 *
 * Implementations: adapters/postgres (PGlite embedded, PostgreSQL with read
 * replicas and shards), wrapped by the two-level cache of cluster/query.
 * Failures reject (the channel actor then falls back to its memory).
 */
import type { MessageView } from './events.ts';
import type { HistoryPage } from './lib/channel-queries.ts';
import type { ChannelKind, Role } from './protocol.ts';

/** The freshness a read needs: data reflecting at least log position `minPos` of the entity's stream. */
export interface Freshness {
  readonly minPos: number;
}

/** A resolved history query: top-level messages with seq in (after, before), `limit` of them in `order`. */
export interface HistoryQuery {
  readonly before?: number | undefined;
  readonly after?: number | undefined;
  readonly limit: number;
  readonly order: 'newest' | 'oldest';
}

/** A thread page: the parent and its replies with seq > after, oldest first. */
export interface ThreadPage {
  parent: MessageView;
  replies: MessageView[];
  hasMore: boolean;
}

/** A channel member as `channelMembers` lists it. */
export interface ChannelMemberView {
  user: string;
  joinedAt: number;
}

/** A workspace member as `listMembers` lists it. */
export interface WorkspaceMemberView {
  user: string;
  role: Role;
  joinedAt: number;
}

/** A profile as `getProfile` returns it. */
export interface ProfileView {
  user: string;
  displayName: string;
  title: string;
  avatarUrl: string | null;
  tz: string;
}

/** One read cursor of a user. */
export interface ReadCursorView {
  ch: string;
  kind: ChannelKind;
  name: string;
  /** Every seq <= readSeq has been read. */
  readSeq: number;
  latestSeq: number;
  /** Unread mention seqs, ascending. */
  mentions: number[];
}

/** The read side. Every method answers `null` when it cannot serve data as fresh as asked. */
export interface QueryStore {
  /** A history page of channel `ws`/`ch` (stream `channel.${ws}.${ch}`). */
  history(ws: string, ch: string, q: HistoryQuery, fresh: Freshness): Promise<HistoryPage | null>;
  /** A thread; also `null` when the parent is unknown to the store (the caller decides what that means). */
  thread(ws: string, ch: string, q: { parent: number; after?: number | undefined; limit: number }, fresh: Freshness): Promise<ThreadPage | null>;
  /** Channel members, ordered by join time (ties in the actor's member-table order). */
  channelMembers(ws: string, ch: string, fresh: Freshness): Promise<ChannelMemberView[] | null>;
  /** Workspace members (stream `workspace.${ws}`), by join time then id. */
  workspaceMembers(ws: string, fresh: Freshness): Promise<WorkspaceMemberView[] | null>;
  /** A profile (stream `user.${ws}.${user}`), with the actor's defaults for unset fields. */
  profile(ws: string, user: string, fresh: Freshness): Promise<ProfileView | null>;
  /** A user's read cursors (stream `user.${ws}.${user}`), by channel id. */
  readCursors(ws: string, user: string, fresh: Freshness): Promise<ReadCursorView[] | null>;
}

/** Token for the tsyringe container. */
export const QUERY_STORE = Symbol.for('chorus.QueryStore');

/** The log stream a channel's reads are fresh against. */
export function channelStream(ws: string, ch: string): string {
  return `channel.${ws}.${ch}`;
}
