/**
 * The channel actor's persisted state and events. Everything here is a fold
 * of the channel's log. What is in memory: the founding facts, topic,
 * members, every message (until the query store takes history over), an
 * index clientMsgId -> seq (so a replayed post always finds its seq), pins,
 * and a bounded ring of recent updates that `since` replays. A snapshot
 * carries the messages in chunks and leaves the index out (see
 * message-chunks.ts and ChannelActor.encodeState).
 */
import type { ChannelUpdate, FileRef, MessageView } from '../events.ts';
import type { ChannelKind } from '../protocol.ts';
import { emptyDone, type DoneLog } from './dedup.ts';
import { get, has, type Dict } from './dict.ts';

/** Updates kept for `since`; older ones fall out (and a reconnect that needs them gets `resync`). A constant: replay folds the same way everywhere. */
export const UPDATES_WINDOW = 500;
/** Most pinned messages per channel. */
export const MAX_PINS = 100;
/** Most distinct reactions per message. */
export const MAX_REACTIONS = 50;

/** A stored message. A deleted one keeps seq, user, ts, parent and thread counters (a tombstone). */
export interface StoredMessage {
  seq: number;
  user: string;
  ts: number;
  text: string;
  cmid: string;
  parent?: number;
  replies?: number[];
  lastReplyAt?: number;
  editedAt?: number;
  deleted?: true;
  reactions?: Dict<string[]>;
  pinned?: true;
  mentions?: string[];
  channelMention?: true;
  /** Attached files (the `files` field of the stored `posted` event). */
  files?: FileRef[];
}

/** The founding facts of a channel. */
export interface ChannelFacts {
  ws: string;
  ch: string;
  name: string;
  kind: ChannelKind;
  createdBy: string;
  createdAt: number;
}

/** Persisted channel state. */
export interface ChannelState {
  facts: ChannelFacts | null;
  topic: string;
  members: Dict<{ joinedAt: number; by: string }>;
  memberCount: number;
  /** Bumped on every membership change; orders the workspace's mirror. */
  membersVersion: number;
  /** messages[seq - 1]; seqs are 1..n without gaps. */
  messages: StoredMessage[];
  /** `${user}:${clientMsgId}` -> seq. */
  byClient: Dict<number>;
  pins: number[];
  /** Recent updates, oldest first, at most UPDATES_WINDOW. */
  updates: ChannelUpdate[];
  /** Highest `atSeq` among updates that fell out of the ring; -1 when none did. */
  droppedAtSeq: number;
  done: DoneLog;
  /** Files uploaded to this channel (id -> uploader and ref), so posts can attach them. Absent in states saved before files existed. */
  files?: Dict<{ by: string; ref: FileRef }>;
}

/** Channel events. */
export type ChannelEventRec =
  | { type: 'created'; facts: ChannelFacts; topic: string; members: string[] }
  | { type: 'joined'; user: string; by: string; at: number }
  | { type: 'left'; user: string; by: string; reason: 'left' | 'removed' | 'left_workspace' }
  | { type: 'topic'; topic: string; by: string; at: number }
  | { type: 'posted'; msg: StoredMessage }
  | { type: 'edited'; seq: number; text: string; mentions: string[]; channelMention: boolean; by: string; at: number }
  | { type: 'deleted'; seq: number; by: string; at: number }
  | { type: 'reaction'; seq: number; emoji: string; user: string; add: boolean }
  | { type: 'pinned'; seq: number; pinned: boolean; by: string }
  | { type: 'fileAdded'; by: string; file: FileRef };

/** State of a channel that was never created. */
export function initialChannel(): ChannelState {
  return {
    facts: null, topic: '', members: {}, memberCount: 0, membersVersion: 0, messages: [], byClient: {}, pins: [],
    updates: [], droppedAtSeq: -1, done: emptyDone(),
  };
}

/** `byClient` of these messages (as the `posted` events built it). */
export function clientIndex(messages: readonly StoredMessage[]): Dict<number> {
  const index: Dict<number> = {};
  for (const m of messages) index[clientKey(m)] = m.seq;
  return index;
}

function clientKey(m: StoredMessage): string {
  return `${m.user}:${m.cmid}`;
}

/** The message with this seq, if any. */
export function messageAt(s: ChannelState, seq: number): StoredMessage | undefined {
  return Number.isSafeInteger(seq) && seq >= 1 ? s.messages[seq - 1] : undefined;
}

/** Applies one event (deterministic, no I/O). */
export function applyChannel(s: ChannelState, e: ChannelEventRec): ChannelState {
  const f = s.facts;
  const atSeq = s.messages.length;
  const base = f ? { ws: f.ws, ch: f.ch } : { ws: '', ch: '' };
  switch (e.type) {
    case 'created':
      if (s.facts) break;
      s.facts = e.facts;
      s.topic = e.topic;
      for (const u of e.members) addMember(s, u, e.facts.createdBy, e.facts.createdAt);
      break;
    case 'joined':
      if (has(s.members, e.user)) break;
      addMember(s, e.user, e.by, e.at);
      s.membersVersion++;
      pushUpdate(s, { type: 'member_joined', ...base, user: e.user, by: e.by, atSeq });
      break;
    case 'left':
      if (!has(s.members, e.user)) break;
      delete s.members[e.user];
      s.memberCount--;
      s.membersVersion++;
      pushUpdate(s, { type: 'member_left', ...base, user: e.user, by: e.by, reason: e.reason, atSeq });
      break;
    case 'topic':
      s.topic = e.topic;
      pushUpdate(s, { type: 'topic', ...base, topic: e.topic, by: e.by, atSeq });
      break;
    case 'posted': {
      const m = { ...e.msg };
      s.messages.push(m);
      s.byClient[clientKey(m)] = m.seq;
      const parent = m.parent !== undefined ? messageAt(s, m.parent) : undefined;
      if (parent) {
        (parent.replies ??= []).push(m.seq);
        parent.lastReplyAt = m.ts;
      }
      break;
    }
    case 'edited': {
      const m = messageAt(s, e.seq);
      if (!m || m.deleted) break;
      m.text = e.text;
      m.editedAt = e.at;
      if (e.mentions.length) m.mentions = e.mentions; else delete m.mentions;
      if (e.channelMention) m.channelMention = true; else delete m.channelMention;
      pushUpdate(s, { type: 'message_edited', ...base, seq: e.seq, text: e.text, editedAt: e.at, by: e.by, mentions: e.mentions, atSeq });
      break;
    }
    case 'deleted': {
      const m = messageAt(s, e.seq);
      if (!m || m.deleted) break;
      m.deleted = true;
      m.text = '';
      delete m.reactions;
      delete m.mentions;
      delete m.channelMention;
      if (m.pinned) {
        delete m.pinned;
        s.pins = s.pins.filter((p) => p !== e.seq);
      }
      pushUpdate(s, { type: 'message_deleted', ...base, seq: e.seq, by: e.by, atSeq });
      break;
    }
    case 'reaction': {
      const m = messageAt(s, e.seq);
      if (!m || m.deleted) break;
      const r = (m.reactions ??= {});
      const users = get(r, e.emoji) ?? [];
      const next = e.add ? (users.includes(e.user) ? users : [...users, e.user]) : users.filter((u) => u !== e.user);
      if (next.length) r[e.emoji] = next; else delete r[e.emoji];
      if (!Object.keys(r).length) delete m.reactions;
      pushUpdate(s, { type: 'reaction', ...base, seq: e.seq, emoji: e.emoji, users: [...next], atSeq });
      break;
    }
    case 'pinned': {
      const m = messageAt(s, e.seq);
      if (!m || m.deleted) break;
      if (e.pinned && !m.pinned) {
        m.pinned = true;
        s.pins.push(e.seq);
      } else if (!e.pinned && m.pinned) {
        delete m.pinned;
        s.pins = s.pins.filter((p) => p !== e.seq);
      }
      pushUpdate(s, { type: 'pin', ...base, seq: e.seq, pinned: e.pinned, by: e.by, atSeq });
      break;
    }
    case 'fileAdded':
      (s.files ??= {})[e.file.id] = { by: e.by, ref: { ...e.file } };
      break;
  }
  return s;
}

function addMember(s: ChannelState, user: string, by: string, at: number): void {
  if (has(s.members, user)) return;
  s.members[user] = { joinedAt: at, by };
  s.memberCount++;
}

function pushUpdate(s: ChannelState, u: ChannelUpdate): void {
  s.updates.push(u);
  while (s.updates.length > UPDATES_WINDOW) s.droppedAtSeq = Math.max(s.droppedAtSeq, s.updates.shift()!.atSeq);
}

/** A stored message as clients see it. */
export function view(m: StoredMessage): MessageView {
  const v: MessageView = { seq: m.seq, user: m.user, ts: m.ts };
  if (m.parent !== undefined) v.parent = m.parent;
  if (m.replies?.length) {
    v.replyCount = m.replies.length;
    if (m.lastReplyAt !== undefined) v.lastReplyAt = m.lastReplyAt;
  }
  if (m.deleted) {
    v.deleted = true;
    return v;
  }
  v.text = m.text;
  v.clientMsgId = m.cmid;
  if (m.editedAt !== undefined) v.editedAt = m.editedAt;
  if (m.reactions) v.reactions = Object.fromEntries(Object.entries(m.reactions).map(([k, us]) => [k, [...us]]));
  if (m.pinned) v.pinned = true;
  if (m.mentions?.length) v.mentions = [...m.mentions];
  if (m.channelMention) v.channelMention = true;
  if (m.files?.length) v.files = m.files.map((f) => ({ ...f }));
  return v;
}
