import type { ActorId } from '../ids.ts';

/** Options of one ask. */
export interface AskOptions {
  /** Give up after this long (default: the node's askTimeoutMs, 5000 ms). */
  timeoutMs?: number;
}

/** The part of a node a ref needs; kept narrow so refs stay cheap plain objects. */
export interface RefTarget {
  tellActor(id: ActorId, msg: unknown): void;
  askActor<R>(id: ActorId, msg: unknown, opts?: AskOptions): Promise<R>;
}

/**
 * A location-transparent handle to a virtual actor. Creating one activates
 * nothing; it works before, during and after activations, on any node.
 */
export class ActorRef {
  constructor(readonly id: ActorId, private readonly target: RefTarget) {}
  /** Fire and forget; at-most-once. */
  tell(msg: unknown): void {
    this.target.tellActor(this.id, msg);
  }
  /** Request/reply; rejects with a ChorusError (`code`) on timeout or failure. Retries across placement changes until the deadline. */
  ask<R = unknown>(msg: unknown, opts?: AskOptions): Promise<R> {
    return this.target.askActor<R>(this.id, msg, opts);
  }
  toString(): string {
    return `${this.id.type}/${this.id.key}`;
  }
}
