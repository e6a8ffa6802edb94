/**
 * CachedQueryStore: the QueryStore port with the two-level cache in front of
 * a versioned store (adapters/postgres PostgresQueryStore). Values are filed
 * under the log stream they come from, so a projection write to that stream
 * invalidates them (`invalidate`, wired to the projection runner's
 * `onCommitted`); the caller's `minPos` makes an older cached value a miss.
 *
 * | read | cache type | key |
 * |---|---|---|
 * | history, latest page (no before/after) | recent_messages (5 min) | ws.ch + order + limit |
 * | history, other pages; threads | message_pages (5 min) | ws.ch + query |
 * | channelMembers | channel_members (30 min) | ws.ch |
 * | workspaceMembers | workspace_members (30 min) | ws |
 * | profile | user_profile (1 h) | ws.user |
 * | readCursors | read_cursors (5 min) | ws.user |
 */
import type { HistoryPage } from '../../actors/lib/channel-queries.ts';
import type {
  ChannelMemberView, Freshness, HistoryQuery, ProfileView, QueryStore, ReadCursorView, ThreadPage, WorkspaceMemberView,
} from '../../actors/query-store.ts';
import type { TieredCache, Versioned } from './tiered-cache.ts';

/** A query store that reports the position each answer reflects. */
export interface VersionedQueryStore {
  historyAt(ws: string, ch: string, q: HistoryQuery, minPos: number): Promise<Versioned<HistoryPage> | null>;
  threadAt(ws: string, ch: string, q: { parent: number; after?: number | undefined; limit: number }, minPos: number): Promise<Versioned<ThreadPage> | null>;
  channelMembersAt(ws: string, ch: string, minPos: number): Promise<Versioned<ChannelMemberView[]> | null>;
  workspaceMembersAt(ws: string, minPos: number): Promise<Versioned<WorkspaceMemberView[]> | null>;
  profileAt(ws: string, user: string, minPos: number): Promise<Versioned<ProfileView> | null>;
  readCursorsAt(ws: string, user: string, minPos: number): Promise<Versioned<ReadCursorView[]> | null>;
}

/** Copies a cached value out, so a caller that changes its answer cannot change the cache. */
const out = <T>(v: Versioned<T> | null): T | null => (v ? structuredClone(v.value) : null);

/** The QueryStore with L1/L2 caching. */
export class CachedQueryStore implements QueryStore {
  constructor(private readonly inner: VersionedQueryStore, readonly cache: TieredCache) {}

  async history(ws: string, ch: string, q: HistoryQuery, fresh: Freshness): Promise<HistoryPage | null> {
    const stream = `channel.${ws}.${ch}`;
    const latest = q.before === undefined && q.after === undefined;
    const key = `${ws}.${ch}|${q.order}|${q.before ?? ''}|${q.after ?? ''}|${q.limit}`;
    return out(await this.cache.get(latest ? 'recent_messages' : 'message_pages', key, fresh.minPos, [stream], () => this.inner.historyAt(ws, ch, q, fresh.minPos)));
  }

  async thread(ws: string, ch: string, q: { parent: number; after?: number | undefined; limit: number }, fresh: Freshness): Promise<ThreadPage | null> {
    const key = `${ws}.${ch}|t${q.parent}|${q.after ?? ''}|${q.limit}`;
    return out(await this.cache.get('message_pages', key, fresh.minPos, [`channel.${ws}.${ch}`], () => this.inner.threadAt(ws, ch, q, fresh.minPos)));
  }

  async channelMembers(ws: string, ch: string, fresh: Freshness): Promise<ChannelMemberView[] | null> {
    return out(await this.cache.get('channel_members', `${ws}.${ch}`, fresh.minPos, [`channel.${ws}.${ch}`], () => this.inner.channelMembersAt(ws, ch, fresh.minPos)));
  }

  async workspaceMembers(ws: string, fresh: Freshness): Promise<WorkspaceMemberView[] | null> {
    return out(await this.cache.get('workspace_members', ws, fresh.minPos, [`workspace.${ws}`], () => this.inner.workspaceMembersAt(ws, fresh.minPos)));
  }

  async profile(ws: string, user: string, fresh: Freshness): Promise<ProfileView | null> {
    return out(await this.cache.get('user_profile', `${ws}.${user}`, fresh.minPos, [`user.${ws}.${user}`], () => this.inner.profileAt(ws, user, fresh.minPos)));
  }

  async readCursors(ws: string, user: string, fresh: Freshness): Promise<ReadCursorView[] | null> {
    return out(await this.cache.get('read_cursors', `${ws}.${user}`, fresh.minPos, [`user.${ws}.${user}`], () => this.inner.readCursorsAt(ws, user, fresh.minPos)));
  }

  /** After a projection write: the moved streams' values are stale (here and, through L2, on every node). */
  invalidate(moved: ReadonlyMap<string, number>): Promise<void> {
    return this.cache.invalidate(moved);
  }
}
