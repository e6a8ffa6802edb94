/**
 * The chat protocol: every command a client (through the WebSocket edge) or
 * the edge itself may send to a domain actor, as zod schemas and TS types,
 * plus the routing table, actor keys and fan-out subjects.
 *
 * A command is `{ op, by, ws, ...params }`. `by` is the authenticated user id
 * that the edge sets from the token (never from the client frame); `ws` (and
 * `ch` for channel ops, `user` for user ops on someone else) tell the edge
 * which actor to ask: see `COMMANDS` and `routeOf`. Schemas strip unknown
 * keys, so the edge should forward the parsed value, not the raw frame. The
 * actors validate again (defence in depth) and answer a failing command with
 * CHORUS_BAD_MESSAGE.
 *
 * Writes carry a `clientMsgId` (1..64 chars) and are idempotent per
 * (`by`, `clientMsgId`) and target actor: sending the same write twice
 * stores it once and returns the first result. A clientMsgId must therefore
 * be unique per user and target across all ops, not only per op.
 */
import { z } from 'zod';

/** Ids of workspaces, channels, users and sessions: NATS-subject-safe tokens. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Reaction names (`thumbsup`, `+1`, `white_check_mark`). */
export const EMOJI_PATTERN = /^[a-z0-9_+-]{1,32}$/;

/** Limits enforced by the schemas. */
export const LIMITS = Object.freeze({
  /** Message text, in UTF-16 code units. */
  text: 4000,
  topic: 250,
  /** Workspace, channel and display names. */
  name: 80,
  /** History, thread and since pages. */
  pageMax: 200,
  /** Default page size when `limit` is omitted. */
  pageDefault: 50,
  /** Other users in one DM (a group DM has at most 9 people). */
  dmUsers: 8,
  /** Session ids in one sessionsRefresh. */
  refreshSessions: 1000,
  /** Files attached to one message. */
  files: 10,
  /** Users one connection may watch the presence of, per workspace (`presenceSub`). */
  presenceUsers: 500,
});

// `__proto__` matches the id patterns but must never become a record key.
const notProto = (s: string) => s !== '__proto__';

/** A workspace, channel, user or session id. */
export const Id = z.string().regex(ID_PATTERN, 'must match /^[A-Za-z0-9_-]{1,64}$/').refine(notProto, 'reserved id');
/** A client-chosen idempotency key of a write. */
export const ClientMsgId = z.string().min(1).max(64);
/** Message text. */
export const Text = z.string().min(1).max(LIMITS.text);
/** A human name (workspace, channel, display name): trimmed, 1..80 chars. */
export const Name = z.string().trim().min(1).max(LIMITS.name);
/** A reaction name. */
export const Emoji = z.string().regex(EMOJI_PATTERN, 'must match /^[a-z0-9_+-]{1,32}$/').refine(notProto, 'reserved name');
/** A channel sequence number (1, 2, 3 ...). */
export const Seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** A cursor position: 0 means "before the first message". */
export const Cursor = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** A page size. */
export const Limit = z.number().int().min(1).max(LIMITS.pageMax);
/** Workspace roles, strongest first. */
export const Role = z.enum(['owner', 'admin', 'member', 'guest']);
/** A workspace role. */
export type Role = z.infer<typeof Role>;
/** Roles that can be granted (ownership is never granted). */
export const GrantableRole = z.enum(['admin', 'member', 'guest']);
/** Notification level: every notify, direct mentions and DMs only, or nothing. */
export const NotifyLevel = z.enum(['all', 'mentions', 'none']);
/** A notification level. */
export type NotifyLevel = z.infer<typeof NotifyLevel>;
/** Channel kinds. */
export type ChannelKind = 'public' | 'private' | 'dm';

const ws = { by: Id, ws: Id };
const chan = { by: Id, ws: Id, ch: Id };
const usr = { by: Id, ws: Id, user: Id.optional() };
const write = { clientMsgId: ClientMsgId };

// ---- workspace (actor 'workspace', key ws) ---------------------------------

/** Creates the workspace; the caller becomes its owner. Fails with CHAT_CONFLICT if it exists. */
export const CreateWorkspace = z.object({ op: z.literal('createWorkspace'), ...ws, ...write, name: Name });
/** Name, settings, the caller's role, counts. */
export const WorkspaceInfo = z.object({ op: z.literal('workspaceInfo'), ...ws });
/** Changes the name or settings (admin+). */
export const UpdateSettings = z.object({
  op: z.literal('updateSettings'), ...ws, ...write,
  name: Name.optional(), allowGuestsToCreateChannels: z.boolean().optional(), allowMembersToInvite: z.boolean().optional(),
});
/** Mints an invite code for a role (admin+, or members when allowed; admins cannot mint admins). */
export const CreateInvite = z.object({
  op: z.literal('createInvite'), ...ws, ...write,
  role: GrantableRole,
  /** Default 7 days; 1 minute .. 30 days. */
  expiresInMs: z.number().int().min(60_000).max(30 * 86_400_000).optional(),
  /** Default 1. */
  maxUses: z.number().int().min(1).max(1000).optional(),
});
/** Joins the workspace with an invite code. */
export const JoinWorkspace = z.object({ op: z.literal('joinWorkspace'), ...ws, ...write, code: Id });
/** Removes a member (admin+; the owner cannot be removed; only the owner removes admins). */
export const RemoveMember = z.object({ op: z.literal('removeMember'), ...ws, ...write, user: Id });
/** Changes a member's role (owner: any non-owner; admin: members and guests only). */
export const SetRole = z.object({ op: z.literal('setRole'), ...ws, ...write, user: Id, role: GrantableRole });
/** Members and roles. */
export const ListMembers = z.object({ op: z.literal('listMembers'), ...ws });
/** Creates a public or private channel with a workspace-unique name (case-insensitive). */
export const CreateChannel = z.object({
  op: z.literal('createChannel'), ...ws, ...write,
  name: Name, kind: z.enum(['public', 'private']), topic: z.string().max(LIMITS.topic).optional(),
});
/** Opens (or finds) the DM between the caller and `users`; the id is deterministic. */
export const OpenDm = z.object({ op: z.literal('openDm'), ...ws, ...write, users: z.array(Id).min(1).max(LIMITS.dmUsers) });
/** Channels the caller can see: public ones (not for guests) and those it is a member of. */
export const ListChannels = z.object({ op: z.literal('listChannels'), ...ws });

// ---- channel (actor 'channel', key `${ws}.${ch}`) --------------------------

/** Posts a message, or a thread reply when `parent` is set. Replies `{ seq, ts }`. */
export const Post = z.object({
  op: z.literal('post'), ...chan, ...write, text: Text, parent: Seq.optional(),
  /** Ids of files the poster uploaded to this channel (POST /api/files), at most LIMITS.files, no repeats. */
  files: z.array(Id).min(1).max(LIMITS.files).refine((a) => new Set(a).size === a.length, 'repeated file id').optional(),
});
/** Replaces the text of a message (author or workspace admin/owner). */
export const Edit = z.object({ op: z.literal('edit'), ...chan, ...write, seq: Seq, text: Text });
/** Deletes a message, leaving a tombstone with its seq (author or workspace admin/owner). */
export const Delete = z.object({ op: z.literal('delete'), ...chan, ...write, seq: Seq });
/** Adds the caller's reaction (once per user and emoji). */
export const React = z.object({ op: z.literal('react'), ...chan, ...write, seq: Seq, emoji: Emoji });
/** Removes the caller's reaction. */
export const Unreact = z.object({ op: z.literal('unreact'), ...chan, ...write, seq: Seq, emoji: Emoji });
/** Pins a message (any member). */
export const Pin = z.object({ op: z.literal('pin'), ...chan, ...write, seq: Seq });
/** Unpins a message (any member). */
export const Unpin = z.object({ op: z.literal('unpin'), ...chan, ...write, seq: Seq });
/** Sets the topic (empty string clears it). */
export const SetTopic = z.object({ op: z.literal('setTopic'), ...chan, ...write, topic: z.string().max(LIMITS.topic) });
/** Joins a public channel (workspace members, not guests). */
export const JoinChannel = z.object({ op: z.literal('joinChannel'), ...chan, ...write });
/** Leaves a channel (not a DM). */
export const LeaveChannel = z.object({ op: z.literal('leaveChannel'), ...chan, ...write });
/** Adds a workspace member to a public or private channel (by a non-guest member of it). */
export const InviteToChannel = z.object({ op: z.literal('inviteToChannel'), ...chan, ...write, user: Id });
/** Removes someone from a channel (workspace admin/owner). */
export const RemoveFromChannel = z.object({ op: z.literal('removeFromChannel'), ...chan, ...write, user: Id });
/**
 * A page of top-level messages (replies are read with `thread`). Candidates
 * are seq in (after, before); `order` 'newest' takes the highest `limit`
 * newest-first, 'oldest' the lowest `limit` oldest-first. Default order:
 * 'oldest' when only `after` is given, else 'newest'. Deleted messages are
 * returned as tombstones.
 */
export const History = z.object({
  op: z.literal('history'), ...chan,
  before: Seq.optional(), after: Cursor.optional(), limit: Limit.optional(), order: z.enum(['newest', 'oldest']).optional(),
});
/** A thread: the parent and its replies with seq > `after`, oldest first. */
export const Thread = z.object({ op: z.literal('thread'), ...chan, parent: Seq, after: Cursor.optional(), limit: Limit.optional() });
/**
 * Reconnect catch-up: every message (replies included) with seq > `seq`,
 * oldest first, exactly once and gapless, plus the updates (edits, deletes,
 * reactions, pins, topic, membership) made since message `seq` was the
 * latest, at least once and idempotent. `resync` tells the client the update
 * window was exceeded and it should reload history.
 */
export const Since = z.object({ op: z.literal('since'), ...chan, seq: Cursor, limit: Limit.optional() });
/** Name, kind, topic, pins, latest seq, member count. */
export const ChannelInfo = z.object({ op: z.literal('channelInfo'), ...chan });
/** The member list. */
export const ChannelMembers = z.object({ op: z.literal('channelMembers'), ...chan });
/** Ephemeral "user is typing": never persisted, published on the channel subject, throttled per user. */
export const Typing = z.object({ op: z.literal('typing'), ...chan });

// ---- user (actor 'user', key `${ws}.${user ?? by}`) -------------------------

/** A user's profile (any workspace member may read it). */
export const GetProfile = z.object({ op: z.literal('getProfile'), ...usr });
/** Updates the caller's own profile. */
export const UpdateProfile = z.object({
  op: z.literal('updateProfile'), ...usr, ...write,
  displayName: Name.optional(),
  title: z.string().max(100).optional(),
  avatarUrl: z.string().max(512).regex(/^https:\/\/[^\s]+$/, 'must be an https URL').optional(),
  tz: z.string().regex(/^[A-Za-z0-9_+\-/]{1,64}$/, 'must be an IANA zone name').optional(),
});
/** Sets or clears the caller's manual "away". */
export const SetAway = z.object({ op: z.literal('setAway'), ...usr, ...write, away: z.boolean() });
/** A user's presence: online, away or offline. */
export const GetPresence = z.object({ op: z.literal('getPresence'), ...usr });
/** Moves the caller's read cursor of a channel forward (never back). */
export const MarkRead = z.object({ op: z.literal('markRead'), ...usr, ...write, ch: Id, seq: Cursor });
/** Unread and mention counts per channel the caller is in (asks the channels for their latest seq). */
export const Unreads = z.object({ op: z.literal('unreads'), ...usr });
/** Sets the notification level of one channel, or the default when `ch` is omitted. */
export const SetNotifyPrefs = z.object({ op: z.literal('setNotifyPrefs'), ...usr, ...write, ch: Id.optional(), level: NotifyLevel });
/** The caller's own profile, prefs, presence and sessions. */
export const Me = z.object({ op: z.literal('me'), ...usr });
/**
 * Searches the messages the caller can read in the workspace (syntax in
 * docs/search.md: words, "phrases", in:, from:, before:/after:/on:, has:file).
 * Replies `{ hits, next? }`; pass `next` as `cursor` for the following page.
 */
export const SearchMessages = z.object({
  op: z.literal('search'), ...ws,
  query: z.string().max(500),
  order: z.enum(['newest', 'relevance']).optional(),
  limit: z.number().int().min(1).max(100).optional(),
  cursor: z.string().max(200).optional(),
});

// ---- edge-only user ops (the edge sends them; never accepted from a client frame)

/** A socket of the user opened on `node`. */
export const SessionOpened = z.object({ op: z.literal('sessionOpened'), ...usr, sessionId: Id, node: Id, device: z.string().min(1).max(64) });
/** A socket of the user closed. */
export const SessionClosed = z.object({ op: z.literal('sessionClosed'), ...usr, sessionId: Id });
/** `node` still holds exactly these sessions of the user; others it held are closed, missing ones re-added. */
export const SessionsRefresh = z.object({ op: z.literal('sessionsRefresh'), ...usr, node: Id, sessionIds: z.array(Id).max(LIMITS.refreshSessions) });
/** A session went idle (no input for a while) or active again. */
export const SessionIdle = z.object({ op: z.literal('sessionIdle'), ...usr, sessionId: Id, idle: z.boolean() });

// ---- edge-only channel ops (the edge's file API sends them)

/** May `by` upload a file to (`upload`: a channel member) or read a file of (`read`: the history rule) this channel? Replies `{ ok: true }` or fails with CHAT_NOT_MEMBER. */
export const AuthorizeFile = z.object({ op: z.literal('authorizeFile'), ...chan, access: z.enum(['upload', 'read']) });
/** A file `by` uploaded to this channel is stored: the channel records it so a post of `by` may attach it. Idempotent by file id. */
export const FileAdded = z.object({
  op: z.literal('fileAdded'), ...chan,
  file: z.object({ id: Id, name: z.string().min(1).max(255), type: z.string().min(3).max(255), size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) }),
});

/** Which actor type a command goes to. */
export type Target = 'workspace' | 'channel' | 'user';
/** One row of the routing table. */
export interface CommandSpec {
  readonly target: Target;
  readonly schema: z.ZodType;
}

/** Client commands by op: where they go and how to validate them. The edge accepts these ops from clients, nothing else. */
export const COMMANDS = {
  createWorkspace: { target: 'workspace', schema: CreateWorkspace },
  workspaceInfo: { target: 'workspace', schema: WorkspaceInfo },
  updateSettings: { target: 'workspace', schema: UpdateSettings },
  createInvite: { target: 'workspace', schema: CreateInvite },
  joinWorkspace: { target: 'workspace', schema: JoinWorkspace },
  removeMember: { target: 'workspace', schema: RemoveMember },
  setRole: { target: 'workspace', schema: SetRole },
  listMembers: { target: 'workspace', schema: ListMembers },
  createChannel: { target: 'workspace', schema: CreateChannel },
  openDm: { target: 'workspace', schema: OpenDm },
  listChannels: { target: 'workspace', schema: ListChannels },
  post: { target: 'channel', schema: Post },
  edit: { target: 'channel', schema: Edit },
  delete: { target: 'channel', schema: Delete },
  react: { target: 'channel', schema: React },
  unreact: { target: 'channel', schema: Unreact },
  pin: { target: 'channel', schema: Pin },
  unpin: { target: 'channel', schema: Unpin },
  setTopic: { target: 'channel', schema: SetTopic },
  joinChannel: { target: 'channel', schema: JoinChannel },
  leaveChannel: { target: 'channel', schema: LeaveChannel },
  inviteToChannel: { target: 'channel', schema: InviteToChannel },
  removeFromChannel: { target: 'channel', schema: RemoveFromChannel },
  history: { target: 'channel', schema: History },
  thread: { target: 'channel', schema: Thread },
  since: { target: 'channel', schema: Since },
  channelInfo: { target: 'channel', schema: ChannelInfo },
  channelMembers: { target: 'channel', schema: ChannelMembers },
  typing: { target: 'channel', schema: Typing },
  getProfile: { target: 'user', schema: GetProfile },
  updateProfile: { target: 'user', schema: UpdateProfile },
  setAway: { target: 'user', schema: SetAway },
  getPresence: { target: 'user', schema: GetPresence },
  markRead: { target: 'user', schema: MarkRead },
  unreads: { target: 'user', schema: Unreads },
  setNotifyPrefs: { target: 'user', schema: SetNotifyPrefs },
  me: { target: 'user', schema: Me },
  search: { target: 'user', schema: SearchMessages },
} as const satisfies Record<string, CommandSpec>;

/** Ops the edge itself sends (session lifecycle to user actors, file checks to channel actors); a client frame carrying one of them must be refused. */
export const EDGE_COMMANDS = {
  sessionOpened: { target: 'user', schema: SessionOpened },
  sessionClosed: { target: 'user', schema: SessionClosed },
  sessionsRefresh: { target: 'user', schema: SessionsRefresh },
  sessionIdle: { target: 'user', schema: SessionIdle },
  authorizeFile: { target: 'channel', schema: AuthorizeFile },
  fileAdded: { target: 'channel', schema: FileAdded },
} as const satisfies Record<string, CommandSpec>;

/** A client op. */
export type CommandOp = keyof typeof COMMANDS;
/** An edge-only op. */
export type EdgeOp = keyof typeof EDGE_COMMANDS;
/** The parsed command of a client op, e.g. `Command<'post'>`. */
export type Command<Op extends CommandOp> = z.infer<(typeof COMMANDS)[Op]['schema']>;
/** The parsed command of an edge-only op. */
export type EdgeCommand<Op extends EdgeOp> = z.infer<(typeof EDGE_COMMANDS)[Op]['schema']>;

/** The actor key of a channel. */
export function channelKey(ws: string, ch: string): string {
  return `${ws}.${ch}`;
}
/** The actor key of a user within a workspace. */
export function userKey(ws: string, user: string): string {
  return `${ws}.${user}`;
}
/** Every event of a channel that its members should see live (messages, updates, typing). */
export function channelSubject(ws: string, ch: string): string {
  return `chorus.chan.${ws}.${ch}`;
}
/** Per-user events: mentions, unread and read-cursor changes, channel invites, DMs opened, removal. */
export function userSubject(ws: string, user: string): string {
  return `chorus.user.${ws}.${user}`;
}
/** Workspace-wide events: members joining/leaving, roles, public channels created. */
export function workspaceSubject(ws: string): string {
  return `chorus.ws.${ws}`;
}
/**
 * One user's presence changes in one workspace. Edges subscribe to it only
 * for users a connected client asked to watch (`presenceSub`), not for a
 * whole workspace: a workspace-wide presence event reaches every member, so
 * a reconnect storm of n members wrote n^2 frames.
 */
export function presenceSubject(ws: string, user: string): string {
  return `chorus.presence.${ws}.${user}`;
}

/**
 * Where a parsed command goes: actor type and key. Workspace ops go to
 * ('workspace', ws), channel ops to ('channel', `${ws}.${ch}`), user ops to
 * ('user', `${ws}.${user ?? by}`).
 */
export function routeOf(op: CommandOp | EdgeOp, msg: { by: string; ws: string; ch?: string; user?: string | undefined }): { type: Target; key: string } {
  const spec = (COMMANDS as Record<string, CommandSpec>)[op] ?? (EDGE_COMMANDS as Record<string, CommandSpec>)[op];
  if (!spec) throw new TypeError(`unknown op ${op}`);
  if (spec.target === 'workspace') return { type: 'workspace', key: msg.ws };
  if (spec.target === 'channel') return { type: 'channel', key: channelKey(msg.ws, msg.ch ?? '') };
  return { type: 'user', key: userKey(msg.ws, msg.user ?? msg.by) };
}
