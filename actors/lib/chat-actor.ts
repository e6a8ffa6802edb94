/**
 * The common base of the three domain actors: an event-sourced actor with a
 * validated op table, idempotent commits (one persist per command, dedup by
 * `${by}:${clientMsgId}`, the result remembered in state), short internal
 * asks, and the workspace role cache.
 */
import type { z } from 'zod';
import { BadMessageError, EventSourcedActor, type Clock, type MessageMeta } from '../../runtime/index.ts';
import { CHAT_CONFLICT, chatError } from '../errors.ts';
import type { Notifier } from '../notifier.ts';
import type { QueryStore } from '../query-store.ts';
import type { WorkspaceQuotas } from '../workspace-actor.ts';
import type { Search } from '../search.ts';
import type { Role } from '../protocol.ts';
import { recall, remember, type DoneLog } from './dedup.ts';
import type { MemberRoleReply } from './internal.ts';
import { MemberCache } from './member-cache.ts';
import { opOf, parse } from './validate.ts';

/** Settings of the chat actors; every duration in ms. */
export interface ChatOptions {
  /** Offline notifications go here. */
  notifier: Notifier;
  /** Overrides the node clock for timestamps (default: the actor context's clock). */
  clock?: Clock;
  /** Life of a cached workspace role in channel and user actors. Default 10000. */
  memberCacheTtlMs: number;
  /** A session not refreshed by its node for this long is dropped. Default 60000. */
  sessionTtlMs: number;
  /** At most one typing event per user and channel per this long. Default 2000. */
  typingThrottleMs: number;
  /** Timeout of asks between domain actors (role look-ups, read state). Default 2000. */
  internalAskTimeoutMs: number;
  /** Per-workspace quotas (workspace actor). Default DEFAULT_WORKSPACE_QUOTAS. */
  workspaceQuotas?: WorkspaceQuotas | undefined;
  /** The read side (optional): history, threads, member lists and profiles are read through it after the permission check; without it, from actor memory. */
  queryStore?: QueryStore | undefined;
  /** Message search (optional): without it the `search` op answers CHAT_INVALID. */
  search?: Search | undefined;
}

/** The defaults of ChatOptions (without the notifier). */
export const CHAT_DEFAULTS = Object.freeze({ memberCacheTtlMs: 10_000, sessionTtlMs: 60_000, typingThrottleMs: 2000, internalAskTimeoutMs: 2000 });

/** The event that remembers a write's result under its idempotency key. */
export interface DoneEvent {
  type: 'done';
  key: string;
  result: unknown;
}

/** One op: its schema and its handler. */
export interface OpHandler {
  readonly schema: z.ZodType;
  run(actor: never, msg: unknown, meta: MessageMeta): unknown;
}

/**
 * A binder of schemas to handlers of actor class A. Each class builds its op
 * table once (a static field) and a handler gets the actor as its first
 * argument: a table of closures per instance cost about 2 KB per activation,
 * and a node keeps one user actor per connected user.
 */
export function opFor<A>(): <T>(schema: z.ZodType<T>, run: (actor: A, msg: T, meta: MessageMeta) => unknown) => OpHandler {
  return (schema, run) => ({ schema, run: run as OpHandler['run'] });
}

/** Base of the workspace, channel and user actors. */
export abstract class ChatActor<S extends { done: DoneLog }, E extends { type: string }> extends EventSourcedActor<S, E | DoneEvent> {
  private roleCache: MemberCache | undefined;

  constructor(protected readonly opts: ChatOptions) {
    super();
  }

  /**
   * Reads through the query store when there is one, after the caller's
   * permission check. Read-your-writes: the store must reflect this
   * activation's last appended position (it may wait briefly for its
   * projection, see QueryStore); if it cannot, or fails, `local` answers from
   * memory, which holds the whole state today.
   */
  protected async viaStore<T>(read: (qs: QueryStore, fresh: { minPos: number }) => Promise<T | null>, local: () => T): Promise<T> {
    const qs = this.opts.queryStore;
    if (!qs) return local();
    try {
      const r = await read(qs, { minPos: this.lastPos });
      if (r !== null) return r;
    } catch (err) {
      this.ctx.logger.warn({ err: (err as Error).message, key: this.ctx.id.key }, 'query store read failed; serving from memory');
    }
    return local();
  }

  /** The ops this actor accepts (client, edge and internal), by name. */
  protected abstract ops(): Readonly<Record<string, OpHandler>>;
  /** Applies one domain event. */
  protected abstract applyEvent(state: S, event: E): S;

  protected apply(state: S, event: E | DoneEvent): S {
    if (event.type === 'done') {
      const d = event as DoneEvent;
      remember(state.done, d.key, d.result);
      return state;
    }
    return this.applyEvent(state, event as E);
  }

  protected handle(msg: unknown, meta: MessageMeta): unknown {
    const op = opOf(msg);
    const table = this.ops();
    const h = Object.hasOwn(table, op) ? table[op] : undefined;
    if (!h) throw new BadMessageError(`unknown op ${JSON.stringify(op.slice(0, 64))} for ${this.ctx.id.type}`);
    return h.run(this as never, parse(h.schema, msg), meta);
  }

  /** Now, by the configured clock. */
  protected now(): number {
    return (this.opts.clock ?? this.ctx.clock).now();
  }

  /**
   * The result of an earlier write with this key, if remembered; a key
   * reused for a different op is a CHAT_CONFLICT (one clientMsgId, one write).
   */
  protected replayOf(key: string, op: string): { hit: true; result: unknown } | { hit: false } {
    const r = recall(this.state.done, key);
    if (!r.hit) return r;
    const prior = r.result as { op: string; result: unknown };
    if (prior.op !== op) throw chatError(CHAT_CONFLICT, `clientMsgId already used for ${prior.op}`, { key });
    return { hit: true, result: prior.result };
  }

  /**
   * Persists one command's events as one record, with the log dedup id `key`,
   * and remembers `result` under `key` for `op` unless `remember` is false
   * (when the actor can find the result in its state by itself). Resolves
   * after the durable append. If the log already holds `key` although state
   * forgot it (outside the dedup window), `lost()` supplies the answer
   * (default: CHAT_CONFLICT).
   */
  protected async commit<R>(w: { key?: string | undefined; op: string; events: E[]; result: R; remember?: boolean; lost?: () => R }): Promise<R> {
    const all: Array<E | DoneEvent> = [...w.events];
    if (w.key !== undefined && w.remember !== false) all.push({ type: 'done', key: w.key, result: { op: w.op, result: w.result } });
    const r = await this.persist(all, w.key);
    if (!r.duplicate) return w.result;
    if (w.lost) return w.lost();
    throw chatError(CHAT_CONFLICT, 'this clientMsgId was already used, too long ago to repeat its result', { key: w.key ?? null });
  }

  /** Asks another domain actor with the internal timeout. */
  protected askActor<R>(type: string, key: string, msg: unknown): Promise<R> {
    return this.ctx.ref(type, key).ask<R>(msg, { timeoutMs: this.opts.internalAskTimeoutMs });
  }

  /** Tells another domain actor (at most once). */
  protected tellActor(type: string, key: string, msg: unknown): void {
    this.ctx.ref(type, key).tell(msg);
  }

  /** The workspace role of `user` (null: not a member), from the cache or the workspace actor. */
  protected async wsRole(ws: string, user: string): Promise<Role | null> {
    const cache = (this.roleCache ??= new MemberCache(this.opts.memberCacheTtlMs));
    const hit = cache.get(user, this.now());
    if (hit !== undefined) return hit;
    const r = await this.askActor<MemberRoleReply>('workspace', ws, { op: 'memberRole', ws, user });
    cache.set(user, r.role, this.now());
    return r.role;
  }

  /** Seeds the role cache with an answer obtained another way. */
  protected cacheRole(user: string, role: Role | null): void {
    (this.roleCache ??= new MemberCache(this.opts.memberCacheTtlMs)).set(user, role, this.now());
  }

  /** Forgets the cached role of `user`. */
  protected forgetRole(user: string): void {
    this.roleCache?.drop(user);
  }
}

/** True for owner and admin. */
export function isAdmin(role: Role | null | undefined): boolean {
  return role === 'owner' || role === 'admin';
}
