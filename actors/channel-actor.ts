/**
 * ChannelActor (type 'channel', key `${ws}.${ch}`): public and private
 * channels and DMs. It owns the channel's membership, the per-channel gapless
 * message sequence, threads, edits, deletes, reactions, pins and topic, and
 * decides every permission on the channel itself (the workspace's mirror is
 * only for listings). Workspace roles come from the workspace actor through a
 * short-lived cache.
 *
 * Every write: validate, check permission, persist (one record, dedup id
 * `${by}:${clientMsgId}`), then publish on channelSubject, then tell the user
 * actors concerned, then reply. Nothing is published or acknowledged before
 * the append is durable.
 */
import type { ActorType } from '../runtime/index.ts';
import { CHAT_FORBIDDEN, CHAT_INVALID, CHAT_NOT_FOUND, CHAT_NOT_MEMBER, chatError } from './errors.ts';
import type { ChannelEvent, FileRef, NotifyKind } from './events.ts';
import { historyPage, memberList, sincePage, threadPage, unreadCount } from './lib/channel-queries.ts';
import {
  MAX_PINS, MAX_REACTIONS, applyChannel, clientIndex, initialChannel, messageAt, view, type ChannelEventRec, type ChannelState, type StoredMessage,
} from './lib/channel-state.ts';
import { MessageChunks } from './lib/message-chunks.ts';
import { ChatActor, isAdmin, opFor, type ChatOptions, type OpHandler } from './lib/chat-actor.ts';
import type { QueryStore } from './query-store.ts';
import { get, has } from './lib/dict.ts';
import { Init, MemberChanged, ReadState, type ChannelSpec, type ReadStateReply } from './lib/internal.ts';
import { parseMentions, preview } from './lib/mentions.ts';
import { expectKey } from './lib/validate.ts';
import {
  AuthorizeFile, ChannelInfo, ChannelMembers, Delete, Edit, FileAdded, History, InviteToChannel, JoinChannel, LeaveChannel, Pin, Post, React,
  RemoveFromChannel, SetTopic, Since, Thread, Typing, Unpin, Unreact, LIMITS, channelKey, channelSubject, userKey, type Command, type EdgeCommand, type Role,
} from './protocol.ts';

type Addr = { by: string; ws: string; ch: string };

/** Options of the channel actor: the chat options (its reads go through `queryStore` when set). */
export type ChannelOptions = ChatOptions;

const op = opFor<ChannelActor>();

/** The channel actor. */
export class ChannelActor extends ChatActor<ChannelState, ChannelEventRec> {
  /** Ephemeral: last typing event per user. */
  private readonly typingAt = new Map<string, number>();
  private get queryStore(): QueryStore | undefined {
    return this.opts.queryStore;
  }

  protected initialState(): ChannelState {
    return initialChannel();
  }
  protected applyEvent(s: ChannelState, e: ChannelEventRec): ChannelState {
    this.chunks.applied(e);
    return applyChannel(s, e);
  }

  /**
   * Snapshots carry the messages as chunks, unchanged ones reused as bytes
   * (see MessageChunks), and not `byClient`, an index of the messages rebuilt
   * when read: encoding a million-key map cost seconds per snapshot.
   */
  private readonly chunks = new MessageChunks(this.codec);
  protected override encodeState(s: ChannelState): Uint8Array {
    // `messages` is left out, not emptied: a build that predates chunks fails on such a state instead of renumbering from 1
    const { messages, byClient: _index, ...rest } = s;
    return this.codec.encode({ ...rest, messageChunks: this.chunks.encode(messages) });
  }
  protected override decodeState(data: Uint8Array): ChannelState {
    const raw = this.codec.decode(data) as ChannelState & { messageChunks?: Uint8Array[] };
    if (raw.messageChunks === undefined) {
      this.chunks.reset(); // a snapshot from before chunks: `messages` as a plain array, `byClient` with it
      return raw;
    }
    const { messageChunks, ...rest } = raw;
    const messages = this.chunks.decode(messageChunks);
    return { ...rest, messages, byClient: clientIndex(messages) };
  }

  /** The ops this actor answers: one table for every instance (a handler gets the actor as `a`). */
  private static readonly OPS: Readonly<Record<string, OpHandler>> = {
    post: op(Post, (a, m) => a.post(m)),
    edit: op(Edit, (a, m) => a.edit(m)),
    delete: op(Delete, (a, m) => a.remove(m)),
    react: op(React, (a, m) => a.react(m, true)),
    unreact: op(Unreact, (a, m) => a.react(m, false)),
    pin: op(Pin, (a, m) => a.pin(m, true)),
    unpin: op(Unpin, (a, m) => a.pin(m, false)),
    setTopic: op(SetTopic, (a, m) => a.setTopic(m)),
    joinChannel: op(JoinChannel, (a, m) => a.join(m)),
    leaveChannel: op(LeaveChannel, (a, m) => a.leave(m)),
    inviteToChannel: op(InviteToChannel, (a, m) => a.invite(m)),
    removeFromChannel: op(RemoveFromChannel, (a, m) => a.kick(m)),
    history: op(History, async (a, m) => (await a.reader(m), a.history(m))),
    thread: op(Thread, async (a, m) => (await a.reader(m), a.thread(m))),
    since: op(Since, async (a, m) => (await a.reader(m), sincePage(a.state, m.seq, m.limit))),
    channelInfo: op(ChannelInfo, (a, m) => a.info(m)),
    channelMembers: op(ChannelMembers, async (a, m) => (await a.reader(m),
      a.viaStore((qs, fresh) => qs.channelMembers(m.ws, m.ch, fresh), () => memberList(a.state)))),
    typing: op(Typing, (a, m) => a.typing(m)),
    authorizeFile: op(AuthorizeFile, async (a, m) => {
      if (m.access === 'read') await a.reader(m);
      else (await a.wsMember(m), a.requireMember(m));
      return { ok: true };
    }),
    fileAdded: op(FileAdded, (a, m) => a.fileAdded(m)),
    init: op(Init, (a, m) => a.init(m.spec)),
    memberChanged: op(MemberChanged, (a, m) => a.memberChanged(m)),
    readState: op(ReadState, async (a, m): Promise<ReadStateReply> => {
      await a.reader(m);
      return { latestSeq: a.state.messages.length, unread: unreadCount(a.state, m.by, m.after) };
    }),
  };

  protected ops(): Readonly<Record<string, OpHandler>> {
    return ChannelActor.OPS;
  }

  // ---- existence and permissions ---------------------------------------------

  private get facts() {
    return this.state.facts!;
  }
  private isMember(user: string): boolean {
    return has(this.state.members, user);
  }

  /** Creates the channel from the workspace directory if it does not exist yet (lazy init: a lost init tell costs nothing). */
  private async ensure(m: Addr): Promise<void> {
    expectKey(this.ctx.id.key, channelKey(m.ws, m.ch));
    if (this.state.facts) return;
    let spec: ChannelSpec & { role: Role };
    try {
      spec = await this.askActor<ChannelSpec & { role: Role }>('workspace', m.ws, { op: 'channelSpec', ws: m.ws, ch: m.ch, by: m.by });
    } catch (err) {
      this.ctx.passivate(); // nothing to keep for a channel that does not exist
      throw err;
    }
    this.cacheRole(m.by, spec.role);
    if (!this.state.facts) await this.init(spec);
  }

  private async init(spec: ChannelSpec): Promise<void> {
    expectKey(this.ctx.id.key, channelKey(spec.ws, spec.ch));
    if (this.state.facts) return;
    const { members, topic, ...facts } = spec;
    const r = await this.persist([{ type: 'created', facts, topic, members }], '~init'); // `~` never occurs in `${by}:${clientMsgId}` ids
    if (r.duplicate) return;
    for (const u of members) this.tellMembership(u, true, facts.createdBy);
  }

  /** The caller's workspace role; CHAT_NOT_MEMBER for outsiders of the workspace. */
  private async wsMember(m: Addr): Promise<Role> {
    await this.ensure(m);
    const role = await this.wsRole(m.ws, m.by);
    if (!role) throw chatError(CHAT_NOT_MEMBER, `${m.by} is not a member of workspace ${m.ws}`);
    return role;
  }
  /** May read: workspace members on public channels (guests only where invited), members elsewhere. */
  private async reader(m: Addr): Promise<Role> {
    const role = await this.wsMember(m);
    if (this.facts.kind === 'public' && role !== 'guest') return role;
    if (!this.isMember(m.by)) throw chatError(CHAT_NOT_MEMBER, `${m.by} is not a member of ${this.facts.kind === 'dm' ? 'this DM' : 'this channel'}`);
    return role;
  }
  /** May write: channel members only. */
  private requireMember(m: Addr): void {
    if (!this.isMember(m.by)) throw chatError(CHAT_NOT_MEMBER, `${m.by} is not a member of ${this.facts.kind === 'dm' ? 'this DM' : 'this channel'}`);
  }
  private liveMessage(seq: number): StoredMessage {
    const msg = messageAt(this.state, seq);
    if (!msg || msg.deleted) throw chatError(CHAT_NOT_FOUND, `no message ${seq}`);
    return msg;
  }
  private replay(key: string, op: string): { hit: true; result: unknown } | { hit: false } {
    return this.replayOf(key, op);
  }

  // ---- fan-out ---------------------------------------------------------------

  private publish(e: ChannelEvent): void {
    this.ctx.publish(channelSubject(this.facts.ws, this.facts.ch), e);
  }
  /** Publishes the update the last commit appended to the ring. */
  private publishLastUpdate(): void {
    const u = this.state.updates[this.state.updates.length - 1];
    if (u) this.publish(u);
  }
  private tellMembership(user: string, joined: boolean, by: string, reason?: string): void {
    const f = this.facts;
    this.tellActor('user', userKey(f.ws, user), {
      op: 'membership', ws: f.ws, user, ch: f.ch, joined, kind: f.kind, name: f.name, by, latestSeq: this.state.messages.length,
      ...(reason ? { reason } : {}),
    });
  }
  /** After a membership change: the user's actor, the workspace mirror, the channel subject. */
  private membershipChanged(user: string, joined: boolean, by: string, reason?: string): void {
    this.tellMembership(user, joined, by, reason);
    this.tellActor('workspace', this.facts.ws, { op: 'mirrorMember', ws: this.facts.ws, ch: this.facts.ch, user, joined, version: this.state.membersVersion });
    this.publishLastUpdate();
  }

  // ---- messages ----------------------------------------------------------------

  private async post(m: Command<'post'>) {
    await this.wsMember(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const prior = get(this.state.byClient, key);
    if (prior !== undefined) {
      // A retry: the first attempt may have been stored but never published
      // (its node died in between). Publish again; edges drop seqs they sent.
      const stored = this.state.messages[prior - 1]!;
      if (!stored.deleted) this.publish({ type: 'message', ws: m.ws, ch: m.ch, seq: prior, message: view(stored) });
      return { seq: prior, ts: stored.ts };
    }
    this.replay(key, 'post'); // a clientMsgId used by another op is a conflict
    this.requireMember(m);
    if (m.parent !== undefined) {
      const p = this.liveMessage(m.parent);
      if (p.parent !== undefined) throw chatError(CHAT_INVALID, 'replies go to the thread parent, not to a reply');
    }
    const seq = this.state.messages.length + 1;
    const ts = this.now();
    const mentions = parseMentions(m.text, (u) => this.isMember(u));
    const msg: StoredMessage = { seq, user: m.by, ts, text: m.text, cmid: m.clientMsgId };
    if (m.files) msg.files = this.attachable(m.by, m.files);
    if (m.parent !== undefined) msg.parent = m.parent;
    if (mentions.users.length) msg.mentions = mentions.users;
    if (mentions.channel) msg.channelMention = true;
    const result = await this.commit({
      key, op: 'post', events: [{ type: 'posted', msg }], result: { seq, ts }, remember: false,
    });
    const stored = this.state.messages[seq - 1]!;
    const parent = stored.parent !== undefined ? messageAt(this.state, stored.parent) : undefined;
    this.publish({
      type: 'message', ws: m.ws, ch: m.ch, seq, message: view(stored),
      ...(parent ? { thread: { parent: parent.seq, replyCount: parent.replies?.length ?? 0, lastReplyAt: parent.lastReplyAt ?? ts } } : {}),
    });
    this.notify(stored, mentions.users, mentions.channel);
    return result;
  }

  /** The refs of files `by` uploaded to this channel; CHAT_NOT_FOUND for an unknown id, CHAT_FORBIDDEN for someone else's file. */
  private attachable(by: string, ids: string[]): FileRef[] {
    return ids.map((id) => {
      const f = get(this.state.files ?? {}, id);
      if (!f) throw chatError(CHAT_NOT_FOUND, `no file ${id} in this channel`);
      if (f.by !== by) throw chatError(CHAT_FORBIDDEN, `file ${id} was uploaded by someone else`);
      return { ...f.ref };
    });
  }

  /** Records a stored upload so its uploader can attach it (edge-only; idempotent by file id). */
  private async fileAdded(m: EdgeCommand<'fileAdded'>): Promise<{ ok: true }> {
    await this.wsMember(m);
    this.requireMember(m);
    if (get(this.state.files ?? {}, m.file.id)) return { ok: true };
    await this.persist([{ type: 'fileAdded', by: m.by, file: m.file }], `~file:${m.file.id}`);
    return { ok: true };
  }

  /** Tells the user actors a message concerns: DM members, mentioned members, everyone on `<!channel>`. */
  private notify(msg: StoredMessage, mentioned: string[], channelWide: boolean): void {
    const f = this.facts;
    if (f.kind !== 'dm' && !channelWide && mentioned.length === 0) return; // most posts: nobody to notify
    const kinds = new Map<string, NotifyKind>();
    if (f.kind === 'dm') for (const u of Object.keys(this.state.members)) kinds.set(u, 'dm');
    else {
      if (channelWide) for (const u of Object.keys(this.state.members)) kinds.set(u, 'channel');
      for (const u of mentioned) kinds.set(u, 'mention');
    }
    kinds.delete(msg.user);
    if (kinds.size === 0) return;
    const text = preview(msg.text);
    for (const [user, kind] of kinds) {
      this.tellActor('user', userKey(f.ws, user), {
        op: 'notify', ws: f.ws, user, ch: f.ch, seq: msg.seq, kind, from: msg.user, preview: text, chName: f.name, chKind: f.kind,
      });
    }
  }

  private async edit(m: Command<'edit'>) {
    const role = await this.wsMember(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replay(key, 'edit');
    if (seen.hit) return seen.result;
    this.requireMember(m);
    const msg = this.liveMessage(m.seq);
    if (msg.user !== m.by && !isAdmin(role)) throw chatError(CHAT_FORBIDDEN, 'only the author or a workspace admin edits a message');
    const mentions = parseMentions(m.text, (u) => this.isMember(u));
    const at = this.now();
    const result = await this.commit({
      key, op: 'edit', result: { seq: m.seq, editedAt: at },
      events: [{ type: 'edited', seq: m.seq, text: m.text, mentions: mentions.users, channelMention: mentions.channel, by: m.by, at }],
    });
    this.publishLastUpdate();
    return result;
  }

  private async remove(m: Command<'delete'>) {
    const role = await this.reader(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replay(key, 'delete');
    if (seen.hit) return seen.result;
    const msg = messageAt(this.state, m.seq);
    if (!msg) throw chatError(CHAT_NOT_FOUND, `no message ${m.seq}`);
    if (msg.user !== m.by && !isAdmin(role)) throw chatError(CHAT_FORBIDDEN, 'only the author or a workspace admin deletes a message');
    if (msg.deleted) return { seq: m.seq, deleted: true };
    const result = await this.commit({ key, op: 'delete', events: [{ type: 'deleted', seq: m.seq, by: m.by, at: this.now() }], result: { seq: m.seq, deleted: true } });
    this.publishLastUpdate();
    return result;
  }

  private async react(m: Command<'react'> | Command<'unreact'>, add: boolean) {
    await this.wsMember(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replay(key, m.op);
    if (seen.hit) return seen.result;
    this.requireMember(m);
    const msg = this.liveMessage(m.seq);
    const users = get(msg.reactions ?? {}, m.emoji) ?? [];
    if (users.includes(m.by) === add) return { seq: m.seq, emoji: m.emoji, users: [...users] };
    if (add && !users.length && Object.keys(msg.reactions ?? {}).length >= MAX_REACTIONS) throw chatError(CHAT_INVALID, `at most ${MAX_REACTIONS} different reactions per message`);
    await this.commit({ key, op: m.op, events: [{ type: 'reaction', seq: m.seq, emoji: m.emoji, user: m.by, add }], result: null });
    this.publishLastUpdate();
    const after = get(this.state.messages[m.seq - 1]!.reactions ?? {}, m.emoji) ?? [];
    return { seq: m.seq, emoji: m.emoji, users: [...after] };
  }

  private async pin(m: Command<'pin'> | Command<'unpin'>, pinned: boolean) {
    await this.wsMember(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replay(key, m.op);
    if (seen.hit) return seen.result;
    this.requireMember(m);
    const msg = this.liveMessage(m.seq);
    if (Boolean(msg.pinned) === pinned) return { seq: m.seq, pinned };
    if (pinned && this.state.pins.length >= MAX_PINS) throw chatError(CHAT_INVALID, `at most ${MAX_PINS} pins per channel`);
    const result = await this.commit({ key, op: m.op, events: [{ type: 'pinned', seq: m.seq, pinned, by: m.by }], result: { seq: m.seq, pinned } });
    this.publishLastUpdate();
    return result;
  }

  private async setTopic(m: Command<'setTopic'>) {
    await this.wsMember(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replay(key, 'setTopic');
    if (seen.hit) return seen.result;
    this.requireMember(m);
    const result = await this.commit({ key, op: 'setTopic', events: [{ type: 'topic', topic: m.topic, by: m.by, at: this.now() }], result: { topic: m.topic } });
    this.publishLastUpdate();
    return result;
  }

  // ---- membership ----------------------------------------------------------------

  private async join(m: Command<'joinChannel'>) {
    const role = await this.wsMember(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replay(key, 'joinChannel');
    if (seen.hit) return seen.result;
    if (this.facts.kind !== 'public') throw chatError(CHAT_FORBIDDEN, 'private channels and DMs are joined by invitation only');
    if (role === 'guest') throw chatError(CHAT_FORBIDDEN, 'guests join channels by invitation only');
    if (this.isMember(m.by)) return { ch: m.ch, joined: false };
    const result = await this.commit({ key, op: 'joinChannel', events: [{ type: 'joined', user: m.by, by: m.by, at: this.now() }], result: { ch: m.ch, joined: true } });
    this.membershipChanged(m.by, true, m.by);
    return result;
  }

  private async leave(m: Command<'leaveChannel'>) {
    await this.wsMember(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replay(key, 'leaveChannel');
    if (seen.hit) return seen.result;
    this.requireMember(m);
    if (this.facts.kind === 'dm') throw chatError(CHAT_FORBIDDEN, 'a DM cannot be left');
    const result = await this.commit({ key, op: 'leaveChannel', events: [{ type: 'left', user: m.by, by: m.by, reason: 'left' }], result: { ch: m.ch, left: true } });
    this.membershipChanged(m.by, false, m.by, 'left');
    return result;
  }

  private async invite(m: Command<'inviteToChannel'>) {
    const role = await this.wsMember(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replay(key, 'inviteToChannel');
    if (seen.hit) return seen.result;
    this.requireMember(m);
    if (this.facts.kind === 'dm') throw chatError(CHAT_FORBIDDEN, 'DM members are fixed; open another DM');
    if (role === 'guest') throw chatError(CHAT_FORBIDDEN, 'guests cannot invite');
    if (this.isMember(m.user)) return { ch: m.ch, user: m.user, invited: false };
    if (!(await this.wsRole(m.ws, m.user))) throw chatError(CHAT_NOT_FOUND, `${m.user} is not a member of the workspace`);
    const result = await this.commit({ key, op: 'inviteToChannel', events: [{ type: 'joined', user: m.user, by: m.by, at: this.now() }], result: { ch: m.ch, user: m.user, invited: true } });
    this.membershipChanged(m.user, true, m.by);
    return result;
  }

  private async kick(m: Command<'removeFromChannel'>) {
    const role = await this.wsMember(m);
    const key = `${m.by}:${m.clientMsgId}`;
    const seen = this.replay(key, 'removeFromChannel');
    if (seen.hit) return seen.result;
    if (!isAdmin(role)) throw chatError(CHAT_FORBIDDEN, 'only workspace admins remove people from channels');
    if (this.facts.kind === 'dm') throw chatError(CHAT_FORBIDDEN, 'DM members are fixed');
    if (!this.isMember(m.user)) throw chatError(CHAT_NOT_FOUND, `${m.user} is not in this channel`);
    const result = await this.commit({ key, op: 'removeFromChannel', events: [{ type: 'left', user: m.user, by: m.by, reason: 'removed' }], result: { ch: m.ch, user: m.user, removed: true } });
    this.membershipChanged(m.user, false, m.by, 'removed');
    return result;
  }

  /** The workspace says `user` was removed or changed role: forget the cached role; drop a removed user from the channel. */
  private async memberChanged(m: { ws: string; user: string; removed: boolean }): Promise<void> {
    if (this.ctx.id.key.split('.')[0] !== m.ws) return;
    this.forgetRole(m.user);
    if (!m.removed || !this.state.facts || !this.isMember(m.user)) return;
    await this.commit({ op: 'memberChanged', events: [{ type: 'left', user: m.user, by: m.user, reason: 'left_workspace' }], result: undefined });
    this.membershipChanged(m.user, false, m.user, 'left_workspace');
  }

  // ---- reads and ephemeral ------------------------------------------------------

  private history(m: Command<'history'>) {
    if (!this.queryStore) return historyPage(this.state, m);
    const order = m.order ?? (m.after !== undefined && m.before === undefined ? 'oldest' : 'newest');
    const q = { before: m.before, after: m.after, limit: m.limit ?? LIMITS.pageDefault, order } as const;
    return this.viaStore((qs, fresh) => qs.history(m.ws, m.ch, q, fresh), () => historyPage(this.state, m));
  }

  private thread(m: Command<'thread'>) {
    const local = () => threadPage(this.state, m);
    const p = messageAt(this.state, m.parent);
    // no store, or an unknown parent / a reply as parent: memory answers (and throws the usual errors)
    if (!this.queryStore || !p || p.parent !== undefined) return local();
    return this.viaStore((qs, fresh) => qs.thread(m.ws, m.ch, { parent: m.parent, after: m.after, limit: m.limit ?? LIMITS.pageDefault }, fresh), local);
  }

  private async info(m: Command<'channelInfo'>) {
    await this.reader(m);
    const f = this.facts;
    const s = this.state;
    return {
      ws: f.ws, ch: f.ch, name: f.name, kind: f.kind, topic: s.topic, createdBy: f.createdBy, createdAt: f.createdAt,
      memberCount: s.memberCount, latestSeq: s.messages.length, pins: [...s.pins], member: this.isMember(m.by),
    };
  }

  /** Ephemeral: never persisted; dropped (not an error) when the same user typed within the throttle window. */
  private async typing(m: Command<'typing'>) {
    await this.wsMember(m);
    this.requireMember(m);
    const now = this.now();
    const last = this.typingAt.get(m.by);
    if (last !== undefined && now - last < this.opts.typingThrottleMs) return { published: false };
    if (this.typingAt.size > 10_000) this.typingAt.clear();
    this.typingAt.set(m.by, now);
    this.publish({ type: 'typing', ws: m.ws, ch: m.ch, user: m.by });
    return { published: true };
  }
}

/** The channel actor type. */
export function channelActorType(opts: ChannelOptions): ActorType {
  return { name: 'channel', create: () => new ChannelActor(opts) };
}
