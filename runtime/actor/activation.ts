import { LogConflictError, toChorusError, type ChorusError } from '../errors.ts';
import { idString, type ActorId } from '../ids.ts';
import type { ActorTimer, TimerOwner } from './actor-timers.ts';
import type { Actor, ActorContext, ActorType, MessageMeta } from './actor.ts';

/** One queued message. `reply` settles an ask (local promise or remote reply). */
export interface MailItem {
  readonly msg: unknown;
  readonly meta: MessageMeta;
  readonly resolve?: (v: unknown) => void;
  readonly reject?: (e: ChorusError) => void;
  /** Set once the message was retried after a log conflict, so it is retried at most once. */
  retried?: boolean;
  /** Set once delivery waited for a newer placement table the sender had. */
  waitedForTable?: boolean;
}

/** Lifecycle of an activation. */
export type ActivationState = 'activating' | 'active' | 'deactivating' | 'stopped';

/** What an activation needs from its node. */
export interface ActivationHost {
  makeContext(a: Activation): ActorContext;
  /** Waits until the previous owner released the actor (handoff). */
  awaitHandoff(id: ActorId): Promise<void>;
  /** Called once the activation is gone; `leftover` are messages it did not process, to be routed again. */
  onStopped(a: Activation, leftover: MailItem[]): void;
  onTurnFailed(a: Activation, err: unknown): void;
  /** `tookMs`: how long the actor's onActivate (state recovery) ran. */
  onActivated(a: Activation, tookMs: number): void;
  /** Called once handoff is done and the instance is about to load its state: from here on it is live. */
  beforeActivate(a: Activation): void;
  /** Cancels every timer the activation set (it is stopping). */
  cancelTimers(a: Activation): void;
}

/**
 * One live instance of a virtual actor with its mailbox. Turns run one at a
 * time in arrival order (all at once for reentrant types); activation runs
 * before the first turn and deactivation after the last.
 */
export class Activation implements TimerOwner {
  readonly key: string;
  state: ActivationState = 'activating';
  lastActive: number;
  readonly actor: Actor;
  readonly ctx: ActorContext;
  /** Replaced by a fresh array whenever it drains: an emptied array keeps its grown backing store, and a node holds an activation per connected user. */
  private queue: MailItem[] = [];
  private running = 0;
  private pumping = false;
  private stopRequested: string | undefined;
  /** Allocated when first needed, as idleWaiters. */
  private stopWaiters: Array<() => void> | undefined;
  /** The actor's named timers (ctx.setTimer, kept by the node's ActorTimers); allocated on first use: most actors never set one, and a node holds one activation per connected user. */
  timers: ActorTimer[] | undefined;
  /** True from the end of handoff until the activation stops (what the single-activation check counts). */
  live = false;
  /** Deactivate after the current turn (ctx.passivate). */
  passivateRequested = false;

  constructor(readonly id: ActorId, readonly type: ActorType, private readonly host: ActivationHost, now: number) {
    this.key = idString(id);
    this.lastActive = now;
    this.actor = type.create(id);
    this.ctx = host.makeContext(this);
    void this.pump();
  }

  /** True while it accepts new messages. */
  get accepting(): boolean {
    return this.state === 'activating' || this.state === 'active';
  }
  /** Queued and running messages. */
  get backlog(): number {
    return this.queue.length + this.running;
  }

  enqueue(item: MailItem): void {
    this.queue.push(item);
    void this.pump();
  }

  /**
   * Stops taking turns, lets the current one finish, runs onDeactivate
   * (unless `persist` is false: a crash or a fence), and hands back what was
   * still queued. Resolves when the activation is stopped.
   */
  deactivate(reason: string, persist = true): Promise<void> {
    if (this.state === 'stopped') return Promise.resolve();
    if (!this.stopRequested) {
      this.stopRequested = reason;
      if (!persist) this.skipPersist = true;
      if (this.state === 'active') this.state = 'deactivating';
    }
    const p = new Promise<void>((r) => (this.stopWaiters ??= []).push(r));
    void this.pump();
    return p;
  }
  private skipPersist = false;

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      if (this.state === 'activating') {
        try {
          await this.host.awaitHandoff(this.id);
          if (this.state !== 'activating') return; // killed while waiting
          this.host.beforeActivate(this);
          const started = this.ctx.clock.now();
          await this.actor.onActivate?.(this.ctx);
          if (this.state === 'activating') this.state = this.stopRequested ? 'deactivating' : 'active';
          this.host.onActivated(this, this.ctx.clock.now() - started);
        } catch (err) {
          // the messages that caused the activation fail; nothing else is affected
          const e = toChorusError(err, this.key);
          for (const item of this.queue.splice(0)) item.reject?.(e);
          this.host.onTurnFailed(this, err);
          this.finish([], false);
          return;
        }
      }
      while (this.state === 'active' && this.queue.length > 0 && !this.stopRequested) {
        const item = this.queue.shift()!;
        if (this.queue.length === 0) this.queue = [];
        if (this.type.reentrant) {
          void this.turn(item);
        } else {
          await this.turn(item);
        }
        if (this.passivateRequested) this.stopRequested ??= 'passivate';
      }
      if (this.stopRequested && this.state !== 'stopped') {
        this.state = 'deactivating';
        while (this.running > 0) await new Promise<void>((r) => (this.idleWaiters ??= []).push(r));
        this.clearTimers();
        if (!this.skipPersist) {
          try {
            await this.actor.onDeactivate?.(this.ctx);
          } catch (err) {
            this.host.onTurnFailed(this, err);
          }
        }
        this.finish(this.queue.splice(0), true);
      }
    } finally {
      this.pumping = false;
    }
  }
  private idleWaiters: Array<() => void> | undefined;

  private async turn(item: MailItem): Promise<void> {
    this.running++;
    this.lastActive = this.ctx.clock.now();
    try {
      const v = await this.actor.receive(item.msg, this.ctx, item.meta);
      item.resolve?.(v);
    } catch (err) {
      if (err instanceof LogConflictError && !item.retried) {
        // another activation wrote to our stream: our state is stale. Stop
        // without persisting and route the message again (it will activate
        // afresh from the log, here or at the real owner).
        item.retried = true;
        this.queue.unshift(item);
        this.skipPersist = true;
        this.stopRequested ??= 'log conflict';
      } else {
        this.host.onTurnFailed(this, err);
        item.reject?.(toChorusError(err, this.key));
      }
    } finally {
      this.running--;
      this.lastActive = this.ctx.clock.now();
      if (this.running === 0 && this.idleWaiters) {
        const ws = this.idleWaiters;
        this.idleWaiters = undefined;
        for (const w of ws) w();
      }
    }
  }

  private finish(leftover: MailItem[], _graceful: boolean): void {
    this.state = 'stopped';
    this.clearTimers();
    this.host.onStopped(this, leftover);
    this.releaseStopWaiters();
  }

  private releaseStopWaiters(): void {
    const ws = this.stopWaiters;
    this.stopWaiters = undefined;
    if (ws) for (const w of ws) w();
  }

  private clearTimers(): void {
    if (this.timers) this.host.cancelTimers(this);
  }

  /** Drops the activation at once, as a crash does: no onDeactivate, queued messages are failed by the caller. */
  kill(): MailItem[] {
    this.state = 'stopped';
    this.stopRequested ??= 'killed';
    this.clearTimers();
    this.releaseStopWaiters();
    return this.queue.splice(0);
  }
}
