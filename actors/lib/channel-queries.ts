/**
 * Read-side functions of the channel actor: history pages, threads, the
 * reconnect catch-up (`since`) and unread counts. Pure functions of the
 * state, so they are easy to test and to move to the query store later.
 */
import type { ChannelUpdate, MessageView } from '../events.ts';
import { LIMITS } from '../protocol.ts';
import { CHAT_INVALID, CHAT_NOT_FOUND, chatError } from '../errors.ts';
import { messageAt, view, type ChannelState } from './channel-state.ts';

/** A history page. */
export interface HistoryPage {
  /** In the requested order. */
  messages: MessageView[];
  /** More candidates exist beyond this page in the direction of travel. */
  hasMore: boolean;
  latestSeq: number;
}

/** Top-level messages with seq in (after, before); see protocol.History for the ordering rules. */
export function historyPage(s: ChannelState, q: { before?: number | undefined; after?: number | undefined; limit?: number | undefined; order?: 'newest' | 'oldest' | undefined }): HistoryPage {
  const latest = s.messages.length;
  const limit = q.limit ?? LIMITS.pageDefault;
  const after = q.after ?? 0;
  const before = q.before ?? latest + 1;
  const order = q.order ?? (q.after !== undefined && q.before === undefined ? 'oldest' : 'newest');
  const out: MessageView[] = [];
  let hasMore = false;
  const hi = Math.min(before - 1, latest);
  const lo = after + 1;
  if (order === 'newest') {
    for (let seq = hi; seq >= lo; seq--) {
      const m = s.messages[seq - 1]!;
      if (m.parent !== undefined) continue;
      if (out.length === limit) { hasMore = true; break; }
      out.push(view(m));
    }
  } else {
    for (let seq = lo; seq <= hi; seq++) {
      const m = s.messages[seq - 1]!;
      if (m.parent !== undefined) continue;
      if (out.length === limit) { hasMore = true; break; }
      out.push(view(m));
    }
  }
  return { messages: out, hasMore, latestSeq: latest };
}

/** A thread: the parent and its replies with seq > after, oldest first. */
export function threadPage(s: ChannelState, q: { parent: number; after?: number | undefined; limit?: number | undefined }): { parent: MessageView; replies: MessageView[]; hasMore: boolean } {
  const p = messageAt(s, q.parent);
  if (!p) throw chatError(CHAT_NOT_FOUND, `no message ${q.parent}`);
  if (p.parent !== undefined) throw chatError(CHAT_INVALID, `message ${q.parent} is a reply, not a thread parent`);
  const limit = q.limit ?? LIMITS.pageDefault;
  const after = q.after ?? 0;
  const seqs = (p.replies ?? []).filter((r) => r > after);
  return { parent: view(p), replies: seqs.slice(0, limit).map((r) => view(s.messages[r - 1]!)), hasMore: seqs.length > limit };
}

/** The reconnect catch-up. */
export interface SincePage {
  /** Every message (replies too) with seq > the asked seq, oldest first, gapless, at most `limit`. */
  messages: MessageView[];
  /** Updates made since the asked seq was the latest (at least once; apply idempotently). */
  updates: ChannelUpdate[];
  /** More messages follow: ask again with the last seq of this page. */
  hasMore: boolean;
  latestSeq: number;
  /** The update window was exceeded, or the asked seq is ahead of the channel: reload history instead. */
  resync: boolean;
}

/** What a client that last saw `seq` missed. */
export function sincePage(s: ChannelState, seq: number, limit: number = LIMITS.pageMax): SincePage {
  const latest = s.messages.length;
  if (seq > latest) return { messages: [], updates: [], hasMore: false, latestSeq: latest, resync: true };
  const end = Math.min(latest, seq + limit);
  const messages: MessageView[] = [];
  for (let i = seq + 1; i <= end; i++) messages.push(view(s.messages[i - 1]!));
  const updates = s.updates.filter((u) => u.atSeq >= seq).map((u) => structuredClone(u));
  return { messages, updates, hasMore: end < latest, latestSeq: latest, resync: s.droppedAtSeq >= seq };
}

/** Unread counts stop at this many (clients show "999+"). */
export const UNREAD_CAP = 1000;

/** Top-level, not deleted messages by others than `user` with seq > after (at most UNREAD_CAP). */
export function unreadCount(s: ChannelState, user: string, after: number): number {
  let n = 0;
  for (let seq = s.messages.length; seq > after && n < UNREAD_CAP; seq--) {
    const m = s.messages[seq - 1]!;
    if (m.parent === undefined && !m.deleted && m.user !== user) n++;
  }
  return n;
}

/** Channel members by join time (ties in member-table order: what `channelMembers` answers). */
export function memberList(s: ChannelState): Array<{ user: string; joinedAt: number }> {
  return Object.entries(s.members).map(([user, v]) => ({ user, joinedAt: v.joinedAt })).sort((a, b) => a.joinedAt - b.joinedAt);
}
