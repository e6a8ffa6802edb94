import type { Clock } from '../clock.ts';
import type { ActorId } from '../ids.ts';
import type { EventLog } from '../log/event-log.ts';
import type { SnapshotStore } from '../log/snapshot-store.ts';
import type { Logger } from '../metrics.ts';
import type { ActorRef } from './actor-ref.ts';

/** How a message reached the actor. */
export interface MessageMeta {
  /** 'ask' expects the turn's return value as the reply; 'tell' discards it. */
  readonly kind: 'tell' | 'ask';
  /** Node the message came from. */
  readonly senderNode: string;
}

/** What an actor can do besides computing its reply. Valid for the actor's whole activation. */
export interface ActorContext {
  /** The actor's own name. */
  readonly id: ActorId;
  /** The node this activation lives on. */
  readonly nodeId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The durable log (event-sourced actors use it through EventSourcedActor). */
  readonly log: EventLog;
  readonly snapshots: SnapshotStore;
  /** A ref to any actor, local or remote; activates nothing by itself. */
  ref(type: string, key: string): ActorRef;
  /** A ref to this actor. */
  readonly self: ActorRef;
  /**
   * Starts (or restarts) a named timer owned by this activation: after `delayMs`
   * `msg` is delivered to the actor as a tell, in its own turn. Timers die with
   * the activation; a timer's turn counts as activity, so a repeating timer
   * keeps its actor from being passivated as idle.
   */
  setTimer(name: string, delayMs: number, msg: unknown, opts?: { repeat?: boolean }): void;
  /** Cancels a named timer; unknown names are ignored. */
  cancelTimer(name: string): void;
  /** Publishes a value on a transport subject (fan-out to edges). */
  publish(subject: string, value: unknown): void;
  /** Asks the runtime to deactivate this actor after the current turn. */
  passivate(): void;
}

/**
 * A virtual actor. The runtime creates one instance per activation and calls
 * `receive` one message at a time (unless the type is reentrant), so an
 * actor may await I/O inside a turn without another turn interleaving.
 */
export interface Actor {
  /** Loads state; runs before the first message. A throw fails the messages that caused the activation. */
  onActivate?(ctx: ActorContext): Promise<void> | void;
  /** Persists what must survive; runs after the last turn, on passivation, handoff and graceful stop (not on a crash). */
  onDeactivate?(ctx: ActorContext): Promise<void> | void;
  /** Handles one message. For an ask the resolved value is the reply; a throw becomes a typed error for the asker. */
  receive(msg: unknown, ctx: ActorContext, meta: MessageMeta): unknown;
}

/** An actor type: a name, a factory and per-type settings. */
export interface ActorType {
  /** Unique name, the `type` of every ActorId of this type. Letters, digits, `-` and `_`. */
  readonly name: string;
  /** Creates the instance for one activation. */
  create(id: ActorId): Actor;
  /** Let turns interleave at awaits (default false: strictly one turn at a time). */
  readonly reentrant?: boolean;
  /** Idle time before passivation, overriding the node's default. */
  readonly idleTimeoutMs?: number;
}
