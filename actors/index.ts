/**
 * The chat domain: WorkspaceActor, ChannelActor and UserActor, their
 * protocol (commands, events, subjects) and the Notifier port. Imports only
 * runtime/ and zod. The composition root registers `chatActorTypes(...)` on
 * every node.
 */
import type { ActorType } from '../runtime/index.ts';
import { channelActorType } from './channel-actor.ts';
import { CHAT_DEFAULTS, type ChatOptions } from './lib/chat-actor.ts';
import type { Notifier } from './notifier.ts';
import type { QueryStore } from './query-store.ts';
import { userActorType } from './user-actor.ts';
import { workspaceActorType } from './workspace-actor.ts';

export * from './protocol.ts';
export * from './events.ts';
export * from './errors.ts';
export * from './notifier.ts';
export * from './query-store.ts';
export * from './search.ts';
export * from './search-query.ts';
export { CHAT_DEFAULTS, type ChatOptions } from './lib/chat-actor.ts';
export type { HistoryPage, SincePage } from './lib/channel-queries.ts';
export { WorkspaceActor, workspaceActorType } from './workspace-actor.ts';
export { ChannelActor, channelActorType, type ChannelOptions } from './channel-actor.ts';
export { UserActor, userActorType, allows } from './user-actor.ts';

/**
 * What the chat actors need from the composition root; every field but
 * `notifier` has a default (CHAT_DEFAULTS). `queryStore` (optional): channel
 * history, threads, member lists (channel and workspace) and profiles are
 * read through it after the permission check; without it they come from
 * actor memory.
 */
export type ChatDeps = { notifier: Notifier; queryStore?: QueryStore | undefined } & Partial<Omit<ChatOptions, 'notifier'>>;

/** The three chat actor types ('workspace', 'channel', 'user'), sharing one set of options. */
export function chatActorTypes(deps: ChatDeps): ActorType[] {
  const opts: ChatOptions = Object.freeze({ ...CHAT_DEFAULTS, ...stripUndefined(deps), notifier: deps.notifier });
  return [workspaceActorType(opts), channelActorType(opts), userActorType(opts)];
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
