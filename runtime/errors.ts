/**
 * Every error a caller of the runtime can see has a stable `code`. The codes
 * are part of the public contract (docs/errors.md lists them; a test keeps the
 * list and this file in step) and travel over the wire as `{ code, message }`.
 */

/** Base class of every Chorus error: a stable machine-readable `code` plus a human message. */
export class ChorusError extends Error {
  /** Stable code, e.g. `CHORUS_ASK_TIMEOUT`. */
  readonly code: string;
  /** Extra fields a caller may act on (epochs, owner hints, limits). Always serialisable. */
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
  /** The wire form: code, message and details, nothing else (no stack). */
  toJSON(): WireError {
    return { code: this.code, message: this.message, ...(Object.keys(this.details).length ? { details: { ...this.details } } : {}) };
  }
}

/** The form of an error on the wire between nodes and to clients. */
export interface WireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** An ask got no reply within its timeout. */
export class AskTimeoutError extends ChorusError {
  constructor(readonly target: string, readonly timeoutMs: number) {
    super('CHORUS_ASK_TIMEOUT', `ask to ${target} got no reply within ${timeoutMs} ms`, { target, timeoutMs });
  }
}

/** The receiving node does not own the actor at its placement epoch; `owner` says where to go. */
export class NotOwnerError extends ChorusError {
  constructor(readonly target: string, readonly senderEpoch: number, readonly receiverEpoch: number, readonly owner: string | undefined) {
    super('CHORUS_NOT_OWNER', `this node does not own ${target} at epoch ${receiverEpoch} (sender epoch ${senderEpoch}); owner is ${owner ?? 'unknown'}`,
      { target, senderEpoch, receiverEpoch, owner: owner ?? null });
  }
}

/** The actor's turn threw an error that was not itself a ChorusError. */
export class ActorFailedError extends ChorusError {
  constructor(readonly target: string, reason: string, options?: { cause?: unknown }) {
    super('CHORUS_ACTOR_FAILED', `actor ${target} failed: ${reason}`, { target }, options);
  }
}

/** A message could not be decoded or does not have the shape the receiver expects. */
export class BadMessageError extends ChorusError {
  constructor(reason: string, details: Record<string, unknown> = {}) {
    super('CHORUS_BAD_MESSAGE', `bad message: ${reason}`, details);
  }
}

/** No actor type with this name is registered on the node. */
export class UnknownActorTypeError extends ChorusError {
  constructor(readonly actorType: string) {
    super('CHORUS_UNKNOWN_ACTOR_TYPE', `no actor type named "${actorType}" is registered`, { actorType });
  }
}

/** The node has stopped, or stopped taking actor work because it lost its cluster lease. */
export class NodeUnavailableError extends ChorusError {
  constructor(readonly nodeId: string, reason: string) {
    super('CHORUS_NODE_UNAVAILABLE', `node ${nodeId} is not taking actor work: ${reason}`, { nodeId, reason });
  }
}

/** No node can own actors right now (empty placement table). */
export class NoOwnerError extends ChorusError {
  constructor(readonly target: string) {
    super('CHORUS_NO_OWNER', `no node owns ${target}: the placement table has no active member`, { target });
  }
}

/** An append found another writer's entry at the position it expected to be last: a fenced, stale activation. */
export class LogConflictError extends ChorusError {
  constructor(readonly stream: string, readonly expectedLastPos: number, readonly actualLastPos: number | undefined) {
    super('CHORUS_LOG_CONFLICT', `stream ${stream}: expected last position ${expectedLastPos}, found ${actualLastPos ?? 'another'}`,
      { stream, expectedLastPos, actualLastPos: actualLastPos ?? null });
  }
}

/** A compare-and-set on the KV store lost: the entry changed or already exists. */
export class KvConflictError extends ChorusError {
  constructor(readonly key: string, reason: string) {
    super('CHORUS_KV_CONFLICT', `kv ${key}: ${reason}`, { key });
  }
}

/** A backing service (NATS, PostgreSQL, ...) failed; the driver error is the `cause`. */
export class BackendError extends ChorusError {
  constructor(readonly backend: string, reason: string, options?: { cause?: unknown }) {
    super('CHORUS_BACKEND', `${backend}: ${reason}`, { backend }, options);
  }
}

/** Turns anything thrown into a ChorusError, keeping codes of errors that have one. */
export function toChorusError(err: unknown, target = 'unknown'): ChorusError {
  if (err instanceof ChorusError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ActorFailedError(target, message, { cause: err });
}

/** Rebuilds an error received on the wire. The known classes are not reconstructed: callers branch on `code`. */
export function fromWire(w: WireError): ChorusError {
  return new ChorusError(w.code, w.message, w.details ?? {});
}
