/**
 * The workspace actor's state and events: everything here is persisted (a
 * fold of the workspace's log). Bounded by the workspace's size: members,
 * live invites (expired ones are pruned when a new one is minted), the
 * channel directory with its membership mirror, and the dedup window.
 */
import type { WorkspaceSettings } from '../events.ts';
import type { ChannelKind, Role } from '../protocol.ts';
import { emptyDone, type DoneLog } from './dedup.ts';
import { get, type Dict } from './dict.ts';

/** A directory entry. */
export interface ChannelEntry {
  ch: string;
  name: string;
  kind: ChannelKind;
  createdBy: string;
  createdAt: number;
  topic: string;
  /** DMs only: the fixed member set, sorted. */
  dmMembers?: string[];
  /**
   * Membership mirror for listings: user -> [version, member?]. Fed by the
   * channel's mirrorMember tells; last writer by channel membership version
   * wins, so reordered or duplicated tells converge. Never used to grant access.
   */
  mirror: Dict<[number, boolean]>;
}

/** A live invite code. */
export interface Invite {
  role: Exclude<Role, 'owner'>;
  expiresAt: number;
  maxUses: number;
  uses: number;
  createdBy: string;
}

/** Persisted workspace state. */
export interface WorkspaceState {
  created: boolean;
  name: string;
  createdBy: string;
  createdAt: number;
  settings: WorkspaceSettings;
  members: Dict<{ role: Role; joinedAt: number }>;
  invites: Dict<Invite>;
  channels: Dict<ChannelEntry>;
  /** `n:` + lower-cased name -> channel id (public and private channels). */
  names: Dict<string>;
  /** Next number for `c<n>` channel ids. */
  nextChannel: number;
  done: DoneLog;
}

/** Workspace events (one command's events form one log record). */
export type WorkspaceEventRec =
  | { type: 'created'; name: string; by: string; at: number }
  | { type: 'settings'; name?: string; allowGuestsToCreateChannels?: boolean; allowMembersToInvite?: boolean }
  | { type: 'invite'; code: string; role: Exclude<Role, 'owner'>; expiresAt: number; maxUses: number; by: string; prune: string[] }
  | { type: 'joined'; user: string; role: Role; code?: string; at: number }
  | { type: 'removed'; user: string; by: string }
  | { type: 'role'; user: string; role: Role; by: string }
  | { type: 'channel'; entry: Omit<ChannelEntry, 'mirror'>; members: string[] }
  | { type: 'mirror'; ch: string; user: string; joined: boolean; version: number };

/** State of a workspace nobody created yet. */
export function initialWorkspace(): WorkspaceState {
  return {
    created: false, name: '', createdBy: '', createdAt: 0,
    settings: { allowGuestsToCreateChannels: false, allowMembersToInvite: false },
    members: {}, invites: {}, channels: {}, names: {}, nextChannel: 1, done: emptyDone(),
  };
}

/** The key of a channel name in `names`. */
export function nameKey(name: string): string {
  return `n:${name.trim().toLowerCase()}`;
}

/** Applies one event (deterministic, no I/O). */
export function applyWorkspace(s: WorkspaceState, e: WorkspaceEventRec): WorkspaceState {
  switch (e.type) {
    case 'created':
      s.created = true;
      s.name = e.name;
      s.createdBy = e.by;
      s.createdAt = e.at;
      s.members[e.by] = { role: 'owner', joinedAt: e.at };
      break;
    case 'settings':
      if (e.name !== undefined) s.name = e.name;
      if (e.allowGuestsToCreateChannels !== undefined) s.settings.allowGuestsToCreateChannels = e.allowGuestsToCreateChannels;
      if (e.allowMembersToInvite !== undefined) s.settings.allowMembersToInvite = e.allowMembersToInvite;
      break;
    case 'invite':
      for (const c of e.prune) delete s.invites[c];
      s.invites[e.code] = { role: e.role, expiresAt: e.expiresAt, maxUses: e.maxUses, uses: 0, createdBy: e.by };
      break;
    case 'joined': {
      s.members[e.user] = { role: e.role, joinedAt: e.at };
      const inv = e.code !== undefined ? get(s.invites, e.code) : undefined;
      if (inv && ++inv.uses >= inv.maxUses) delete s.invites[e.code!];
      break;
    }
    case 'removed':
      delete s.members[e.user];
      // the channels will report the removal too; until then the mirror must not list the user
      for (const c of Object.values(s.channels)) {
        const m = get(c.mirror, e.user);
        if (m) m[1] = false;
      }
      break;
    case 'role': {
      const m = get(s.members, e.user);
      if (m) m.role = e.role;
      break;
    }
    case 'channel': {
      const mirror: Dict<[number, boolean]> = {};
      for (const u of e.members) mirror[u] = [0, true];
      s.channels[e.entry.ch] = { ...e.entry, mirror };
      if (e.entry.kind !== 'dm') s.names[nameKey(e.entry.name)] = e.entry.ch;
      s.nextChannel++;
      break;
    }
    case 'mirror': {
      const c = get(s.channels, e.ch);
      if (!c) break;
      const m = get(c.mirror, e.user);
      if (!m || m[0] < e.version) c.mirror[e.user] = [e.version, e.joined];
      break;
    }
  }
  return s;
}
