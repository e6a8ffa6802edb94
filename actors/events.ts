/**
 * What the domain actors publish on the fan-out subjects and return from
 * queries. Every published value has a `type`; channel message events carry
 * the channel `seq`, and channel update events carry `atSeq` (the channel's
 * latest seq when they happened), which is how `since` finds them again.
 */
import type { ChannelKind, NotifyLevel, Role } from './protocol.ts';

/** A message as clients see it. A deleted message is a tombstone: seq, user, ts, `deleted`, no text. */
export interface MessageView {
  seq: number;
  user: string;
  ts: number;
  text?: string;
  clientMsgId?: string;
  /** Seq of the thread parent, for replies. */
  parent?: number;
  /** For thread parents. */
  replyCount?: number;
  lastReplyAt?: number;
  editedAt?: number;
  deleted?: true;
  /** emoji -> user ids, in reaction order. */
  reactions?: Record<string, string[]>;
  pinned?: true;
  /** Members mentioned with `<@id>` at the time of posting (or of the last edit). */
  mentions?: string[];
  /** The text contains `<!channel>`. */
  channelMention?: true;
  /** Files attached at posting (download with GET /api/files/:id). */
  files?: FileRef[];
}

/** A file attached to a message. */
export interface FileRef {
  id: string;
  name: string;
  /** MIME type. */
  type: string;
  /** Bytes. */
  size: number;
}

/** A new message or thread reply. */
export interface MessageEvent {
  type: 'message';
  ws: string;
  ch: string;
  seq: number;
  message: MessageView;
  /** For replies: the parent's thread summary after this reply. */
  thread?: { parent: number; replyCount: number; lastReplyAt: number };
}

/** A change to existing messages or to the channel (not a new message). Idempotent: carries the resulting state. */
export type ChannelUpdate =
  | { type: 'message_edited'; ws: string; ch: string; seq: number; text: string; editedAt: number; by: string; mentions: string[]; atSeq: number }
  | { type: 'message_deleted'; ws: string; ch: string; seq: number; by: string; atSeq: number }
  | { type: 'reaction'; ws: string; ch: string; seq: number; emoji: string; users: string[]; atSeq: number }
  | { type: 'pin'; ws: string; ch: string; seq: number; pinned: boolean; by: string; atSeq: number }
  | { type: 'topic'; ws: string; ch: string; topic: string; by: string; atSeq: number }
  | { type: 'member_joined'; ws: string; ch: string; user: string; by: string; atSeq: number }
  | { type: 'member_left'; ws: string; ch: string; user: string; by: string; reason: 'left' | 'removed' | 'left_workspace'; atSeq: number };

/** Ephemeral: never persisted, never replayed by `since`. */
export interface TypingEvent {
  type: 'typing';
  ws: string;
  ch: string;
  user: string;
}

/** Everything published on `channelSubject(ws, ch)`. */
export type ChannelEvent = MessageEvent | ChannelUpdate | TypingEvent;

/** Why a user actor is told about a message. */
export type NotifyKind = 'dm' | 'mention' | 'channel';

/** Published on `userSubject(ws, user)`. */
export type UserEvent =
  | { type: 'mention'; ws: string; ch: string; seq: number; kind: NotifyKind; from: string; preview: string; mentions: number }
  | { type: 'read'; ws: string; ch: string; seq: number; mentions: number }
  | { type: 'channel_joined'; ws: string; ch: string; kind: ChannelKind; name: string; by: string }
  | { type: 'channel_left'; ws: string; ch: string; reason: string }
  | { type: 'removed_from_workspace'; ws: string; by: string }
  | { type: 'role_changed'; ws: string; role: Role };

/** Derived presence. */
export type Presence = 'online' | 'away' | 'offline';

/** Published on `presenceSubject(ws, user)` when the user's presence changes. */
export type PresenceEvent = { type: 'presence'; ws: string; user: string; presence: Presence };

/** Published on `workspaceSubject(ws)`. */
export type WorkspaceEvent =
  | { type: 'member_joined'; ws: string; user: string; role: Role }
  | { type: 'member_removed'; ws: string; user: string; by: string }
  | { type: 'role_changed'; ws: string; user: string; role: Role; by: string }
  | { type: 'channel_created'; ws: string; ch: string; name: string; kind: 'public' }
  | { type: 'settings_changed'; ws: string; name: string; settings: WorkspaceSettings };

/** Workspace settings and their defaults. */
export interface WorkspaceSettings {
  /** Default false. */
  allowGuestsToCreateChannels: boolean;
  /** Members (not only admins) may mint member/guest invites. Default false. */
  allowMembersToInvite: boolean;
}

/** A channel as `listChannels` shows it. */
export interface ChannelListing {
  ch: string;
  name: string;
  kind: ChannelKind;
  /** True when the workspace's mirror says the caller is a member (eventually consistent; the channel decides). */
  member: boolean;
  /** DM members (fixed for the DM's life). */
  members?: string[];
}

/** One channel of `unreads`. */
export interface UnreadEntry {
  ch: string;
  kind: ChannelKind;
  name: string;
  readSeq: number;
  latestSeq: number;
  /** Top-level messages from others after the cursor, not deleted (capped at 1000). */
  unread: number;
  mentions: number;
  /** True when `latestSeq`/`unread` are the last known values because the channel did not answer. */
  stale?: true;
  level: NotifyLevel;
}
