/**
 * The user actor's persisted state and events: profile, manual away, notify
 * preferences, and per channel the read cursor, pending mention seqs and the
 * latest seq known. Sessions and presence are not here (see sessions.ts).
 */
import type { ChannelKind, NotifyLevel } from '../protocol.ts';
import { emptyDone, type DoneLog } from './dedup.ts';
import { get, type Dict } from './dict.ts';

/** Pending mention seqs kept per channel; beyond that the oldest are forgotten (the count saturates at this number). */
export const MAX_MENTIONS_TRACKED = 100;

/** What the user actor knows of one channel. */
export interface UserChannel {
  kind: ChannelKind;
  name: string;
  member: boolean;
  /** Read cursor: every seq <= read has been read. Only moves forward. */
  read: number;
  /** Latest seq the user actor heard of (from notifies, membership tells, markRead). */
  latest: number;
  /** Seqs of unread mentions, ascending, at most MAX_MENTIONS_TRACKED. */
  mentions: number[];
}

/** Persisted user state. */
export interface UserState {
  profile: { displayName?: string; title?: string; avatarUrl?: string; tz?: string; updatedAt: number };
  away: boolean;
  prefs: { default: NotifyLevel; channels: Dict<NotifyLevel> };
  chans: Dict<UserChannel>;
  done: DoneLog;
}

/** User events. */
export type UserEventRec =
  | { type: 'profile'; displayName?: string; title?: string; avatarUrl?: string; tz?: string; at: number }
  | { type: 'away'; away: boolean }
  | { type: 'prefs'; ch?: string; level: NotifyLevel }
  | { type: 'read'; ch: string; seq: number }
  | { type: 'notified'; ch: string; seq: number; kind: ChannelKind; name: string }
  | { type: 'membership'; ch: string; joined: boolean; kind: ChannelKind; name: string; latestSeq: number };

/** A new user's state. Default notify level: 'all'. */
export function initialUser(): UserState {
  return { profile: { updatedAt: 0 }, away: false, prefs: { default: 'all', channels: {} }, chans: {}, done: emptyDone() };
}

function chan(s: UserState, ch: string, kind: ChannelKind = 'public', name = ''): UserChannel {
  let c = get(s.chans, ch);
  if (!c) s.chans[ch] = c = { kind, name, member: false, read: 0, latest: 0, mentions: [] };
  return c;
}

/** Applies one event (deterministic, no I/O). */
export function applyUser(s: UserState, e: UserEventRec): UserState {
  switch (e.type) {
    case 'profile': {
      const { type: _t, at, ...fields } = e;
      s.profile = { ...s.profile, ...fields, updatedAt: at };
      break;
    }
    case 'away':
      s.away = e.away;
      break;
    case 'prefs':
      if (e.ch === undefined) s.prefs.default = e.level;
      else s.prefs.channels[e.ch] = e.level;
      break;
    case 'read': {
      const c = chan(s, e.ch);
      c.read = Math.max(c.read, e.seq);
      c.latest = Math.max(c.latest, c.read);
      c.mentions = c.mentions.filter((m) => m > c.read);
      break;
    }
    case 'notified': {
      const c = chan(s, e.ch, e.kind, e.name);
      c.member = true;
      c.latest = Math.max(c.latest, e.seq);
      if (e.seq > c.read && !c.mentions.includes(e.seq)) {
        c.mentions.push(e.seq);
        c.mentions.sort((a, b) => a - b);
        if (c.mentions.length > MAX_MENTIONS_TRACKED) c.mentions.shift();
      }
      break;
    }
    case 'membership': {
      if (!e.joined) {
        delete s.chans[e.ch];
        break;
      }
      const c = chan(s, e.ch, e.kind, e.name);
      c.member = true;
      c.kind = e.kind;
      c.name = e.name;
      c.latest = Math.max(c.latest, e.latestSeq);
      // joining is not a backlog of unread history: start reading from the present
      if (c.read === 0) c.read = e.latestSeq;
      break;
    }
  }
  return s;
}
