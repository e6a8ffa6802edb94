/**
 * Messages the domain actors send each other. They are not client commands:
 * the edge never routes them (it accepts only protocol.COMMANDS ops), and the
 * actors validate them like any other input.
 *
 * Directions (asks form no cycle, so non-reentrant actors cannot deadlock):
 *   channel -> workspace : ask memberRole, ask channelSpec, tell mirrorMember
 *   user    -> workspace : ask memberRole
 *   user    -> channel   : ask readState
 *   workspace -> channel : tell init, tell memberChanged
 *   workspace -> user    : tell memberChanged
 *   channel -> user      : tell notify, tell membership
 */
import { z } from 'zod';
import { Cursor, Id, Role, Seq } from '../protocol.ts';

/** What a channel needs to exist; the workspace directory is its source. */
export const ChannelSpec = z.object({
  ws: Id, ch: Id, name: z.string().min(1).max(200), kind: z.enum(['public', 'private', 'dm']),
  createdBy: Id, createdAt: z.number(), members: z.array(Id), topic: z.string(),
});
/** A channel's founding facts. */
export type ChannelSpec = z.infer<typeof ChannelSpec>;

/** workspace: the role of `user`, or null. */
export const MemberRole = z.object({ op: z.literal('memberRole'), ws: Id, user: Id });
/** workspace: the spec of channel `ch` for `by` (who must be a member); replies ChannelSpec & { role }. */
export const ChannelSpecQuery = z.object({ op: z.literal('channelSpec'), ws: Id, ch: Id, by: Id });
/** workspace: the channel's membership of `user` changed at membership `version` (mirror for listings). */
export const MirrorMember = z.object({ op: z.literal('mirrorMember'), ws: Id, ch: Id, user: Id, joined: z.boolean(), version: z.number().int().min(0) });

/** channel: create yourself from this spec if you do not exist yet. */
export const Init = z.object({ op: z.literal('init'), spec: ChannelSpec });
/** channel or user: `user`'s workspace membership or role changed; forget cached roles (and drop them if removed). */
export const MemberChanged = z.object({ op: z.literal('memberChanged'), ws: Id, user: Id, removed: z.boolean(), role: Role.optional() });
/** channel: latest seq and the unread count after `after` for member `by`. */
export const ReadState = z.object({ op: z.literal('readState'), ws: Id, ch: Id, by: Id, after: Cursor });

/** user: a message concerns you (mention, DM, @channel). */
export const Notify = z.object({
  op: z.literal('notify'), ws: Id, user: Id, ch: Id, seq: Seq, kind: z.enum(['dm', 'mention', 'channel']),
  from: Id, preview: z.string().max(200), chName: z.string().max(200), chKind: z.enum(['public', 'private', 'dm']),
});
/** user: you joined or left channel `ch`. */
export const Membership = z.object({
  op: z.literal('membership'), ws: Id, user: Id, ch: Id, joined: z.boolean(), kind: z.enum(['public', 'private', 'dm']),
  name: z.string().max(200), by: Id, reason: z.string().max(32).optional(), latestSeq: Cursor,
});
/** user: the session sweep timer fired. */
export const SweepSessions = z.object({ op: z.literal('sweepSessions') });

/** Reply of memberRole. */
export interface MemberRoleReply { role: Role | null }
/** Reply of readState. */
export interface ReadStateReply { latestSeq: number; unread: number }
