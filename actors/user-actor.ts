/**
 * UserActor (type 'user', key `${ws}.${user}`): one person in one workspace.
 * Persisted: profile, manual away, notification preferences, read cursors and
 * mention counts. Ephemeral (memory only): sessions on devices and edge
 * nodes, the presence derived from them, the latest seqs learned from
 * channels. Channels tell it about mentions/DMs (`notify`) and membership;
 * when the user has no session and the preferences allow, it calls the
 * Notifier.
 *
 * Unread counts: `unreads` asks each channel the user is in for its latest
 * seq and the count of unread top-level messages after the read cursor
 * (`readState`), in parallel; a channel that does not answer in time is
 * reported with the last seq this actor heard of (`stale`). Between two
 * `unreads` calls clients keep the counts current from the channel subjects.
 */
import type { ActorType } from '../runtime/index.ts';
import { CHAT_FORBIDDEN, CHAT_INVALID, CHAT_NOT_MEMBER, chatError } from './errors.ts';
import type { ChannelListing, NotifyKind, Presence, UnreadEntry, UserEvent } from './events.ts';
import { ChatActor, opFor, type ChatOptions, type OpHandler } from './lib/chat-actor.ts';
import { searchAs } from './lib/search-access.ts';
import { get } from './lib/dict.ts';
import { MemberChanged, Membership, Notify, SweepSessions, type ReadStateReply } from './lib/internal.ts';
import { SessionTable } from './lib/sessions.ts';
import { applyUser, initialUser, type UserEventRec, type UserState } from './lib/user-state.ts';
import { expectKey } from './lib/validate.ts';
import {
  GetPresence, GetProfile, MarkRead, Me, SearchMessages, SessionClosed, SessionIdle, SessionOpened, SessionsRefresh, SetAway, SetNotifyPrefs,
  Unreads, UpdateProfile, channelKey, userKey, presenceSubject, userSubject, type Command, type NotifyLevel,
} from './protocol.ts';
import type { z } from 'zod';

type Addr = { by: string; ws: string; user?: string | undefined };

const op = opFor<UserActor>();

/** The session sweep timer's message and options: one object for every user actor (a node holds one per connected user). */
const SWEEP_SESSIONS = Object.freeze({ op: 'sweepSessions' as const });
const REPEAT = Object.freeze({ repeat: true });

/** The user actor. */
export class UserActor extends ChatActor<UserState, UserEventRec> {
  private sessionTable: SessionTable | undefined;
  private lastPresence: Presence | undefined;
  /** Ephemeral: latest seqs learned from channels' readState answers. */
  private latestSeen: Map<string, number> | undefined;

  protected initialState(): UserState {
    return initialUser();
  }
  protected applyEvent(s: UserState, e: UserEventRec): UserState {
    return applyUser(s, e);
  }

  private get sessions(): SessionTable {
    return (this.sessionTable ??= new SessionTable(this.opts.sessionTtlMs));
  }
  /** The user this actor is. */
  private get me(): string {
    const k = this.ctx.id.key;
    return k.slice(k.indexOf('.') + 1);
  }
  private get ws(): string {
    const k = this.ctx.id.key;
    return k.slice(0, k.indexOf('.'));
  }

  /** The ops this actor answers: one table for every instance (a handler gets the actor as `a`). */
  private static readonly OPS: Readonly<Record<string, OpHandler>> = {
    getProfile: op(GetProfile, async (a, m) => {
      await a.member(m);
      return a.viaStore((qs, fresh) => qs.profile(a.ws, a.me, fresh), () => ({ user: a.me, ...a.profileView() }));
    }),
    updateProfile: op(UpdateProfile, (a, m) => a.updateProfile(m)),
    setAway: op(SetAway, (a, m) => a.write(m, 'setAway', [{ type: 'away', away: m.away }], { away: m.away }).then((r) => (a.presenceChanged(), r))),
    getPresence: op(GetPresence, async (a, m) => (await a.member(m), { user: a.me, presence: a.presence() })),
    markRead: op(MarkRead, (a, m) => a.markRead(m)),
    unreads: op(Unreads, (a, m) => a.unreads(m)),
    setNotifyPrefs: op(SetNotifyPrefs, (a, m) => a.write(m, 'setNotifyPrefs', [{ type: 'prefs', level: m.level, ...(m.ch ? { ch: m.ch } : {}) }], { ch: m.ch ?? null, level: m.level })),
    search: op(SearchMessages, (a, m) => a.search(m)),
    me: op(Me, async (a, m) => {
      await a.own(m);
      const s = a.state;
      return { user: a.me, ...a.profileView(), away: s.away, presence: a.presence(), prefs: structuredClone(s.prefs), sessions: a.sessions.list() };
    }),
    sessionOpened: op(SessionOpened, async (a, m) => {
      await a.own(m);
      a.sessions.open(m.sessionId, m.node, m.device, a.now());
      return a.sessionsChanged();
    }),
    sessionClosed: op(SessionClosed, (a, m) => a.cheapOwn(m, () => a.sessions.close(m.sessionId))),
    sessionsRefresh: op(SessionsRefresh, (a, m) => a.cheapOwn(m, () => a.sessions.refresh(m.node, m.sessionIds, a.now()))),
    sessionIdle: op(SessionIdle, (a, m) => a.cheapOwn(m, () => a.sessions.setIdle(m.sessionId, m.idle))),
    sweepSessions: op(SweepSessions, (a) => a.sessionsChanged()),
    notify: op(Notify, (a, m) => a.onNotify(m)),
    membership: op(Membership, (a, m) => a.onMembership(m)),
    memberChanged: op(MemberChanged, (a, m) => {
      expectKey(a.ctx.id.key, userKey(m.ws, m.user));
      a.forgetRole(m.user);
    }),
  };

  protected ops(): Readonly<Record<string, OpHandler>> {
    return UserActor.OPS;
  }

  // ---- guards ---------------------------------------------------------------

  /** The caller must be a workspace member (any user actor of the workspace answers members only). */
  private async member(m: Addr): Promise<void> {
    expectKey(this.ctx.id.key, userKey(m.ws, m.user ?? m.by));
    if (!(await this.wsRole(m.ws, m.by))) throw chatError(CHAT_NOT_MEMBER, `${m.by} is not a member of workspace ${m.ws}`);
  }
  /** The caller must be this user, and a workspace member. */
  private async own(m: Addr): Promise<void> {
    await this.member(m);
    if (m.by !== this.me) throw chatError(CHAT_FORBIDDEN, 'only the user may do this');
  }
  /** Session upkeep from the edge: own user only, no workspace look-up (must stay cheap). */
  private cheapOwn(m: Addr, fn: () => void): { presence: Presence; sessions: number } {
    expectKey(this.ctx.id.key, userKey(m.ws, m.user ?? m.by));
    if (m.by !== this.me) throw chatError(CHAT_FORBIDDEN, 'only the user may do this');
    fn();
    return this.sessionsChanged();
  }

  /** A persisted write of the user's own state, idempotent per clientMsgId. */
  private async write<R>(m: Addr & { clientMsgId: string }, op: string, events: UserEventRec[], result: R): Promise<R> {
    await this.own(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replayOf(key, op);
    if (seen.hit) return seen.result as R;
    return this.commit({ key, op, events, result });
  }

  // ---- profile, presence -----------------------------------------------------------

  private profileView() {
    const { displayName, title, avatarUrl, tz } = this.state.profile;
    return { displayName: displayName ?? this.me, title: title ?? '', avatarUrl: avatarUrl ?? null, tz: tz ?? 'UTC' };
  }

  private updateProfile(m: Command<'updateProfile'>) {
    const ev: UserEventRec = { type: 'profile', at: this.now() };
    if (m.displayName !== undefined) ev.displayName = m.displayName;
    if (m.title !== undefined) ev.title = m.title;
    if (m.avatarUrl !== undefined) ev.avatarUrl = m.avatarUrl;
    if (m.tz !== undefined) ev.tz = m.tz;
    return this.write(m, 'updateProfile', [ev], { updatedAt: ev.at });
  }

  private presence(): Presence {
    this.sessions.sweep(this.now());
    return this.sessions.presence(this.state.away);
  }

  /** Sweeps, keeps the sweep timer running while sessions exist, publishes presence on change. */
  private sessionsChanged(): { presence: Presence; sessions: number } {
    const p = this.presenceChanged();
    const n = this.sessions.size;
    if (n > 0) this.ctx.setTimer('sessions', Math.max(1000, Math.floor(this.opts.sessionTtlMs / 2)), SWEEP_SESSIONS, REPEAT);
    else this.ctx.cancelTimer('sessions');
    return { presence: p, sessions: n };
  }
  private presenceChanged(): Presence {
    const p = this.presence();
    if (p !== this.lastPresence && !(this.lastPresence === undefined && p === 'offline')) {
      this.ctx.publish(presenceSubject(this.ws, this.me), { type: 'presence', ws: this.ws, user: this.me, presence: p });
    }
    this.lastPresence = p;
    return p;
  }

  // ---- read cursors, unreads ---------------------------------------------------------

  private async markRead(m: Command<'markRead'>) {
    await this.own(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replayOf(key, 'markRead');
    if (seen.hit) return seen.result;
    const c = get(this.state.chans, m.ch);
    if (c && m.seq <= c.read) return { ch: m.ch, seq: c.read, mentions: c.mentions.length };
    await this.commit({ key, op: 'markRead', events: [{ type: 'read', ch: m.ch, seq: m.seq }], result: null });
    const after = get(this.state.chans, m.ch)!;
    this.publishUser({ type: 'read', ws: m.ws, ch: m.ch, seq: after.read, mentions: after.mentions.length });
    return { ch: m.ch, seq: after.read, mentions: after.mentions.length };
  }

  private async unreads(m: Addr): Promise<UnreadEntry[]> {
    await this.own(m);
    const chans = Object.entries(this.state.chans).filter(([, c]) => c.member);
    const answers = await Promise.allSettled(chans.map(([ch, c]) =>
      this.askActor<ReadStateReply>('channel', channelKey(this.ws, ch), { op: 'readState', ws: this.ws, ch, by: this.me, after: c.read })));
    return chans.map(([ch, c], i) => {
      const a = answers[i]!;
      const known = Math.max(c.latest, this.latestSeen?.get(ch) ?? 0);
      const e: UnreadEntry = { ch, kind: c.kind, name: c.name, readSeq: c.read, latestSeq: known, unread: Math.max(0, known - c.read), mentions: c.mentions.length, level: this.level(ch) };
      if (a.status === 'fulfilled') {
        (this.latestSeen ??= new Map()).set(ch, a.value.latestSeq);
        e.latestSeq = Math.max(known, a.value.latestSeq);
        e.unread = a.value.unread;
      } else e.stale = true;
      return e;
    });
  }

  /** Searches the messages the caller may read (lib/search-access.ts decides which channels; the query enforces it). */
  private async search(m: Command<'search'>) {
    await this.own(m);
    const search = this.opts.search;
    if (!search) throw chatError(CHAT_INVALID, 'search is not available on this node');
    const role = (await this.wsRole(m.ws, m.by))!;
    return searchAs({
      ws: this.ws, me: this.me, role, search,
      own: Object.entries(this.state.chans).filter(([, c]) => c.member).map(([ch, c]) => ({ ch, kind: c.kind, name: c.name })),
      listChannels: () => this.askActor<ChannelListing[]>('workspace', this.ws, { op: 'listChannels', ws: this.ws, by: this.me }),
      canRead: (ch) => this.askActor('channel', channelKey(this.ws, ch), { op: 'channelInfo', ws: this.ws, ch, by: this.me }).then(() => true, () => false),
    }, m);
  }

  private level(ch: string): NotifyLevel {
    return get(this.state.prefs.channels, ch) ?? this.state.prefs.default;
  }

  // ---- tells from channels -------------------------------------------------------

  private async onNotify(n: z.infer<typeof Notify>): Promise<void> {
    expectKey(this.ctx.id.key, userKey(n.ws, n.user));
    // `~` never occurs in client dedup ids (`${by}:${clientMsgId}`, ids have no `~`)
    const r = await this.persist([{ type: 'notified', ch: n.ch, seq: n.seq, kind: n.chKind, name: n.chName }], `~notify:${n.ch}:${n.seq}`);
    if (r.duplicate) return; // the network delivered it twice
    const c = get(this.state.chans, n.ch);
    this.publishUser({ type: 'mention', ws: n.ws, ch: n.ch, seq: n.seq, kind: n.kind, from: n.from, preview: n.preview, mentions: c?.mentions.length ?? 0 });
    if (this.presence() !== 'offline' || !allows(this.level(n.ch), n.kind)) return;
    const title = n.kind === 'dm' ? `${n.from} (direct message)` : n.kind === 'mention' ? `${n.from} mentioned you in #${n.chName}` : `${n.from} in #${n.chName}`;
    const notifier = this.opts.notifier;
    // never inside the turn: a slow or failing notifier must not hold up or fail the user actor
    Promise.resolve()
      .then(() => notifier.notify(userKey(n.ws, n.user), { title, body: n.preview, ws: n.ws, ch: n.ch, seq: n.seq }))
      .catch((err: unknown) => this.ctx.logger.warn({ err: String(err), ch: n.ch, seq: n.seq }, 'notifier failed'));
  }

  private async onMembership(m: z.infer<typeof Membership>): Promise<void> {
    expectKey(this.ctx.id.key, userKey(m.ws, m.user));
    const c = get(this.state.chans, m.ch);
    if (m.joined && c?.member && c.kind === m.kind && c.name === m.name && c.latest >= m.latestSeq) return;
    if (!m.joined && !c) return;
    await this.commit({ op: 'membership', events: [{ type: 'membership', ch: m.ch, joined: m.joined, kind: m.kind, name: m.name, latestSeq: m.latestSeq }], result: undefined });
    this.publishUser(m.joined
      ? { type: 'channel_joined', ws: m.ws, ch: m.ch, kind: m.kind, name: m.name, by: m.by }
      : { type: 'channel_left', ws: m.ws, ch: m.ch, reason: m.reason ?? 'left' });
  }

  private publishUser(e: UserEvent): void {
    this.ctx.publish(userSubject(this.ws, this.me), e);
  }
}

/** Whether a notify of `kind` reaches the user at `level`: all = everything; mentions = DMs and direct mentions (not @channel); none = nothing. */
export function allows(level: NotifyLevel, kind: NotifyKind): boolean {
  return level === 'all' || (level === 'mentions' && kind !== 'channel');
}

/** The user actor type. */
export function userActorType(opts: ChatOptions): ActorType {
  return { name: 'user', create: () => new UserActor(opts) };
}
