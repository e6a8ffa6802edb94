/**
 * WorkspaceActor (type 'workspace', key = workspace id): members and roles,
 * invites, settings and the channel directory (with DMs). It is the source
 * of truth for workspace membership: channel and user actors ask it for
 * roles (`memberRole`) and cache the answer briefly; it tells them when a
 * member is removed or changes role. It never asks another actor, so the
 * asks between domain actors form no cycle.
 */
import type { ActorType } from '../runtime/index.ts';
import { CHAT_CONFLICT, CHAT_FORBIDDEN, CHAT_NOT_FOUND, CHAT_NOT_MEMBER, QUOTA_EXCEEDED, chatError } from './errors.ts';
import type { ChannelListing, UserEvent, WorkspaceEvent } from './events.ts';
import { ChatActor, isAdmin, opFor, type ChatOptions, type OpHandler } from './lib/chat-actor.ts';
import { get } from './lib/dict.ts';
import { dmChannelId } from './lib/hash.ts';
import { ChannelSpecQuery, MemberRole, MirrorMember, type ChannelSpec, type MemberRoleReply } from './lib/internal.ts';
import { expectKey } from './lib/validate.ts';
import {
  applyWorkspace, initialWorkspace, nameKey, type ChannelEntry, type WorkspaceEventRec, type WorkspaceState,
} from './lib/workspace-state.ts';
import {
  CreateChannel, CreateInvite, CreateWorkspace, JoinWorkspace, ListChannels, ListMembers, OpenDm, RemoveMember, SetRole,
  UpdateSettings, WorkspaceInfo, channelKey, userKey, userSubject, workspaceSubject, type Command, type Role,
} from './protocol.ts';

/**
 * Per-workspace quotas (ChatOptions.workspaceQuotas). A write that would pass
 * one is refused with QUOTA_EXCEEDED, `details: { quota, limit }`. They are
 * the operator's (the composition root's), not a setting admins can change.
 */
export interface WorkspaceQuotas {
  /** Channels, DMs included. Default 10,000. */
  readonly maxChannels: number;
  /** Members of every role. Default 100,000. */
  readonly maxMembers: number;
  /** Live invite codes (expired ones are pruned when a new one is minted). Default 1,000. */
  readonly maxLiveInvites: number;
}
/** The defaults of WorkspaceQuotas. */
export const DEFAULT_WORKSPACE_QUOTAS: WorkspaceQuotas = Object.freeze({ maxChannels: 10_000, maxMembers: 100_000, maxLiveInvites: 1000 });
/** Most channels (DMs included) one workspace may hold by default. */
export const MAX_CHANNELS_PER_WORKSPACE = DEFAULT_WORKSPACE_QUOTAS.maxChannels;
/** Most live invite codes per workspace by default. */
export const MAX_LIVE_INVITES = DEFAULT_WORKSPACE_QUOTAS.maxLiveInvites;
/** Default invite life: 7 days. */
export const DEFAULT_INVITE_TTL_MS = 7 * 86_400_000;

const op = opFor<WorkspaceActor>();

/** The workspace actor. */
export class WorkspaceActor extends ChatActor<WorkspaceState, WorkspaceEventRec> {

  protected initialState(): WorkspaceState {
    return initialWorkspace();
  }
  protected applyEvent(s: WorkspaceState, e: WorkspaceEventRec): WorkspaceState {
    return applyWorkspace(s, e);
  }

  /** The ops this actor answers: one table for every instance (a handler gets the actor as `a`). */
  private static readonly OPS: Readonly<Record<string, OpHandler>> = {
    createWorkspace: op(CreateWorkspace, (a, m) => a.create(m)),
    workspaceInfo: op(WorkspaceInfo, (a, m) => a.info(m)),
    updateSettings: op(UpdateSettings, (a, m) => a.updateSettings(m)),
    createInvite: op(CreateInvite, (a, m) => a.createInvite(m)),
    joinWorkspace: op(JoinWorkspace, (a, m) => a.join(m)),
    removeMember: op(RemoveMember, (a, m) => a.removeMember(m)),
    setRole: op(SetRole, (a, m) => a.setRole(m)),
    listMembers: op(ListMembers, (a, m) => a.listMembers(m)),
    createChannel: op(CreateChannel, (a, m) => a.createChannel(m)),
    openDm: op(OpenDm, (a, m) => a.openDm(m)),
    listChannels: op(ListChannels, (a, m) => a.listChannels(m)),
    memberRole: op(MemberRole, (a, m): MemberRoleReply => {
      expectKey(a.ctx.id.key, m.ws);
      return { role: a.roleOf(m.user) };
    }),
    channelSpec: op(ChannelSpecQuery, (a, m) => a.channelSpec(m)),
    mirrorMember: op(MirrorMember, (a, m) => a.mirror(m)),
  };

  protected ops(): Readonly<Record<string, OpHandler>> {
    return WorkspaceActor.OPS;
  }

  // ---- guards ----------------------------------------------------------

  private roleOf(user: string): Role | null {
    return this.state.created ? (get(this.state.members, user)?.role ?? null) : null;
  }
  /** The caller's role; CHAT_NOT_FOUND before creation, CHAT_NOT_MEMBER for outsiders. */
  private member(m: { ws: string; by: string }): Role {
    expectKey(this.ctx.id.key, m.ws);
    if (!this.state.created) throw chatError(CHAT_NOT_FOUND, `no workspace ${m.ws}`);
    const r = this.roleOf(m.by);
    if (!r) throw chatError(CHAT_NOT_MEMBER, `${m.by} is not a member of workspace ${m.ws}`);
    return r;
  }
  /** Refuses a write that would take `count` past the quota `q` (QUOTA_EXCEEDED). */
  private quota(q: keyof WorkspaceQuotas, count: number, what: string): void {
    const limit = (this.opts.workspaceQuotas ?? DEFAULT_WORKSPACE_QUOTAS)[q];
    if (count >= limit) throw chatError(QUOTA_EXCEEDED, `workspace ${this.ctx.id.key} is at its quota of ${limit} ${what}`, { quota: q, limit });
  }

  private publishWs(e: WorkspaceEvent): void {
    this.ctx.publish(workspaceSubject(this.ctx.id.key), e);
  }
  private publishUser(user: string, e: UserEvent): void {
    this.ctx.publish(userSubject(this.ctx.id.key, user), e);
  }
  /** Tells every channel and the user's own actor to forget the cached role of `user`. */
  private broadcastMemberChanged(user: string, removed: boolean, role?: Role): void {
    const ws = this.ctx.id.key;
    const msg = { op: 'memberChanged', ws, user, removed, ...(role ? { role } : {}) };
    for (const ch of Object.keys(this.state.channels)) this.tellActor('channel', channelKey(ws, ch), msg);
    this.tellActor('user', userKey(ws, user), msg);
  }

  // ---- commands ---------------------------------------------------------

  private async create(m: Command<'createWorkspace'>) {
    expectKey(this.ctx.id.key, m.ws);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replayOf(key, 'createWorkspace');
    if (seen.hit) return seen.result;
    if (this.state.created) throw chatError(CHAT_CONFLICT, `workspace ${m.ws} already exists`);
    return this.commit({ key, op: 'createWorkspace', events: [{ type: 'created', name: m.name, by: m.by, at: this.now() }], result: { ws: m.ws, name: m.name, role: 'owner' as Role } });
  }

  private info(m: Command<'workspaceInfo'>) {
    const role = this.member(m);
    const s = this.state;
    return {
      ws: m.ws, name: s.name, settings: { ...s.settings }, createdBy: s.createdBy, createdAt: s.createdAt, role,
      memberCount: Object.keys(s.members).length, channelCount: Object.keys(s.channels).length,
    };
  }

  private async updateSettings(m: Command<'updateSettings'>) {
    const role = this.member(m);
    if (!isAdmin(role)) throw chatError(CHAT_FORBIDDEN, 'only admins change workspace settings');
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replayOf(key, 'updateSettings');
    if (seen.hit) return seen.result;
    const ev: WorkspaceEventRec = { type: 'settings' };
    if (m.name !== undefined) ev.name = m.name;
    if (m.allowGuestsToCreateChannels !== undefined) ev.allowGuestsToCreateChannels = m.allowGuestsToCreateChannels;
    if (m.allowMembersToInvite !== undefined) ev.allowMembersToInvite = m.allowMembersToInvite;
    const after = { ...this.state.settings, ...stripUndefined({ allowGuestsToCreateChannels: ev.allowGuestsToCreateChannels, allowMembersToInvite: ev.allowMembersToInvite }) };
    const result = await this.commit({ key, op: 'updateSettings', events: [ev], result: { name: ev.name ?? this.state.name, settings: after } });
    this.publishWs({ type: 'settings_changed', ws: m.ws, name: result.name, settings: result.settings });
    return result;
  }

  private async createInvite(m: Command<'createInvite'>) {
    const role = this.member(m);
    const can = role === 'owner' || (role === 'admin' && m.role !== 'admin')
      || (role === 'member' && this.state.settings.allowMembersToInvite && m.role !== 'admin');
    if (!can) throw chatError(CHAT_FORBIDDEN, `a ${role} cannot invite a ${m.role}`);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replayOf(key, 'createInvite');
    if (seen.hit) return seen.result;
    const now = this.now();
    const prune = Object.entries(this.state.invites).filter(([, i]) => i.expiresAt <= now).map(([c]) => c);
    this.quota('maxLiveInvites', Object.keys(this.state.invites).length - prune.length, 'live invites');
    const code = randomCode();
    const expiresAt = now + (m.expiresInMs ?? DEFAULT_INVITE_TTL_MS);
    const maxUses = m.maxUses ?? 1;
    return this.commit({ key, op: 'createInvite', events: [{ type: 'invite', code, role: m.role, expiresAt, maxUses, by: m.by, prune }], result: { code, role: m.role, expiresAt, maxUses } });
  }

  private async join(m: Command<'joinWorkspace'>) {
    expectKey(this.ctx.id.key, m.ws);
    if (!this.state.created) throw chatError(CHAT_NOT_FOUND, `no workspace ${m.ws}`);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replayOf(key, 'joinWorkspace');
    if (seen.hit) return seen.result;
    const current = this.roleOf(m.by);
    if (current) return { ws: m.ws, role: current, already: true };
    const inv = get(this.state.invites, m.code);
    if (!inv) throw chatError(CHAT_NOT_FOUND, 'no such invite (unknown, used up or revoked)');
    if (inv.expiresAt <= this.now()) throw chatError(CHAT_FORBIDDEN, 'this invite has expired');
    this.quota('maxMembers', Object.keys(this.state.members).length, 'members');
    const result = await this.commit({ key, op: 'joinWorkspace', events: [{ type: 'joined', user: m.by, role: inv.role, code: m.code, at: this.now() }], result: { ws: m.ws, role: inv.role as Role } });
    // channels may hold a short-lived "not a member" answer for this user (see MemberCache); the user actor is told now
    this.tellActor('user', userKey(m.ws, m.by), { op: 'memberChanged', ws: m.ws, user: m.by, removed: false, role: inv.role });
    this.publishWs({ type: 'member_joined', ws: m.ws, user: m.by, role: inv.role });
    return result;
  }

  private async removeMember(m: Command<'removeMember'>) {
    const role = this.member(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replayOf(key, 'removeMember');
    if (seen.hit) return seen.result;
    const target = get(this.state.members, m.user);
    if (!target) throw chatError(CHAT_NOT_FOUND, `${m.user} is not a member`);
    if (target.role === 'owner') throw chatError(CHAT_FORBIDDEN, 'the owner cannot be removed');
    if (m.by !== m.user) {
      if (!isAdmin(role)) throw chatError(CHAT_FORBIDDEN, 'only admins remove members');
      if (target.role === 'admin' && role !== 'owner') throw chatError(CHAT_FORBIDDEN, 'only the owner removes admins');
    }
    const result = await this.commit({ key, op: 'removeMember', events: [{ type: 'removed', user: m.user, by: m.by }], result: { removed: m.user } });
    this.broadcastMemberChanged(m.user, true);
    this.publishWs({ type: 'member_removed', ws: m.ws, user: m.user, by: m.by });
    this.publishUser(m.user, { type: 'removed_from_workspace', ws: m.ws, by: m.by });
    return result;
  }

  private async setRole(m: Command<'setRole'>) {
    const role = this.member(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replayOf(key, 'setRole');
    if (seen.hit) return seen.result;
    const target = get(this.state.members, m.user);
    if (!target) throw chatError(CHAT_NOT_FOUND, `${m.user} is not a member`);
    if (target.role === 'owner') throw chatError(CHAT_FORBIDDEN, "the owner's role cannot be changed");
    const ok = role === 'owner' || (role === 'admin' && target.role !== 'admin' && m.role !== 'admin');
    if (!ok) throw chatError(CHAT_FORBIDDEN, `a ${role} cannot make a ${target.role} a ${m.role}`);
    const result = await this.commit({ key, op: 'setRole', events: [{ type: 'role', user: m.user, role: m.role, by: m.by }], result: { user: m.user, role: m.role as Role } });
    this.broadcastMemberChanged(m.user, false, m.role);
    this.publishWs({ type: 'role_changed', ws: m.ws, user: m.user, role: m.role, by: m.by });
    this.publishUser(m.user, { type: 'role_changed', ws: m.ws, role: m.role });
    return result;
  }

  private listMembers(m: Command<'listMembers'>) {
    this.member(m);
    const local = () => Object.entries(this.state.members)
      .map(([user, v]) => ({ user, role: v.role, joinedAt: v.joinedAt }))
      .sort((a, b) => a.joinedAt - b.joinedAt || (a.user < b.user ? -1 : 1));
    return this.viaStore((qs, fresh) => qs.workspaceMembers(m.ws, fresh), local);
  }

  private async createChannel(m: Command<'createChannel'>) {
    const role = this.member(m);
    if (role === 'guest' && !this.state.settings.allowGuestsToCreateChannels) throw chatError(CHAT_FORBIDDEN, 'guests cannot create channels here');
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replayOf(key, 'createChannel');
    if (seen.hit) return seen.result;
    if (get(this.state.names, nameKey(m.name))) throw chatError(CHAT_CONFLICT, `a channel named ${JSON.stringify(m.name)} exists`);
    this.quota('maxChannels', Object.keys(this.state.channels).length, 'channels');
    let n = this.state.nextChannel;
    while (get(this.state.channels, `c${n}`)) n++;
    const entry = { ch: `c${n}`, name: m.name, kind: m.kind, createdBy: m.by, createdAt: this.now(), topic: m.topic ?? '' };
    const result = await this.commit({ key, op: 'createChannel', events: [{ type: 'channel', entry, members: [m.by] }], result: { ch: entry.ch, name: entry.name, kind: entry.kind } });
    this.initChannel(entry.ch);
    if (entry.kind === 'public') this.publishWs({ type: 'channel_created', ws: m.ws, ch: entry.ch, name: entry.name, kind: 'public' });
    return result;
  }

  private async openDm(m: Command<'openDm'>) {
    this.member(m);
    for (const u of m.users) if (!this.roleOf(u)) throw chatError(CHAT_NOT_FOUND, `${u} is not a member of the workspace`);
    const members = [...new Set([m.by, ...m.users])].sort();
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replayOf(key, 'openDm');
    if (seen.hit) return seen.result;
    for (let attempt = 0; ; attempt++) {
      const ch = dmChannelId(members, attempt);
      const existing = get(this.state.channels, ch);
      if (existing?.kind === 'dm' && existing.dmMembers?.join() === members.join()) {
        this.initChannel(ch); // harmless if it exists; repairs a lost init
        return { ch, members, created: false };
      }
      if (existing) continue; // digest collision: next candidate
      this.quota('maxChannels', Object.keys(this.state.channels).length, 'channels');
      const entry = { ch, name: members.join(','), kind: 'dm' as const, createdBy: m.by, createdAt: this.now(), topic: '', dmMembers: members };
      const result = await this.commit({ key, op: 'openDm', events: [{ type: 'channel', entry, members }], result: { ch, members, created: true } });
      this.initChannel(ch);
      return result;
    }
  }

  private listChannels(m: Command<'listChannels'>): ChannelListing[] {
    const role = this.member(m);
    const out: ChannelListing[] = [];
    for (const c of Object.values(this.state.channels)) {
      const member = get(c.mirror, m.by)?.[1] === true;
      if (!member && !(c.kind === 'public' && role !== 'guest')) continue;
      out.push({ ch: c.ch, name: c.name, kind: c.kind, member, ...(c.dmMembers ? { members: [...c.dmMembers] } : {}) });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  // ---- internal ---------------------------------------------------------

  private specOf(c: ChannelEntry): ChannelSpec {
    return {
      ws: this.ctx.id.key, ch: c.ch, name: c.name, kind: c.kind, createdBy: c.createdBy, createdAt: c.createdAt, topic: c.topic,
      members: c.dmMembers ? [...c.dmMembers] : [c.createdBy],
    };
  }

  /** Tells the channel to create itself (a tell, not an ask: the channel asks us, so we never wait on it). */
  private initChannel(ch: string): void {
    const c = get(this.state.channels, ch);
    if (c) this.tellActor('channel', channelKey(this.ctx.id.key, ch), { op: 'init', spec: this.specOf(c) });
  }

  private channelSpec(m: { ws: string; ch: string; by: string }): ChannelSpec & { role: Role } {
    const role = this.member(m);
    const c = get(this.state.channels, m.ch);
    if (!c) throw chatError(CHAT_NOT_FOUND, `no channel ${m.ch} in ${m.ws}`);
    return { ...this.specOf(c), role };
  }

  private async mirror(m: { ws: string; ch: string; user: string; joined: boolean; version: number }): Promise<void> {
    expectKey(this.ctx.id.key, m.ws);
    const c = get(this.state.channels, m.ch);
    if (!c) return;
    const cur = get(c.mirror, m.user);
    if (cur && cur[0] >= m.version) return; // older or same news
    await this.commit({ op: 'mirrorMember', events: [{ type: 'mirror', ch: m.ch, user: m.user, joined: m.joined, version: m.version }], result: undefined });
  }
}

/** An unguessable invite code: 96 random bits from Web Crypto (a standard global, no import), as 24 hex digits. */
function randomCode(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (x) => x.toString(16).padStart(2, '0')).join('');
}

function stripUndefined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The workspace actor type. */
export function workspaceActorType(opts: ChatOptions): ActorType {
  return { name: 'workspace', create: () => new WorkspaceActor(opts) };
}
