import { codec as defaultCodec, type Codec } from '../codec.ts';
import { LogConflictError } from '../errors.ts';
import type { ActorContext, Actor, MessageMeta } from './actor.ts';

/**
 * Base for durable actors: state is a fold of events over the log, recovered
 * by snapshot + replay on whatever node activates the actor. All events of
 * one `persist` call form one log record, so a turn is stored whole or not at
 * all, and every append is fenced by the last position this activation saw: a
 * stale activation's write fails with LogConflictError instead of forking the
 * log (the runtime then reactivates from the log and retries the message).
 *
 * Subclasses implement `initialState`, `apply` and `handle`.
 */
export abstract class EventSourcedActor<S, E> implements Actor {
  /** Current state (initial state until activation has replayed the log). */
  protected state!: S;
  /** Position of the last record applied. */
  protected lastPos = 0;
  /** Records applied since the last snapshot. */
  private sinceSnapshot = 0;
  protected ctx!: ActorContext;
  /** Take a snapshot every this many records at least (default 100). */
  protected snapshotEvery = 100;
  /**
   * A big state is snapshotted less often: every max(snapshotEvery, size of
   * the last snapshot / this) records, so what snapshots cost per record stays
   * about constant instead of growing with the state (each snapshot encodes and
   * writes the whole state). Default 1024 bytes.
   */
  protected snapshotBytesPerRecord = 1024;
  /** At most this many records between snapshots however big the state: bounds the replay on activation. Default 10000. */
  protected snapshotEveryMax = 10_000;
  /** Size of the last snapshot saved or loaded. */
  private lastSnapshotBytes = 0;

  /** Records between two snapshots now (see snapshotBytesPerRecord). */
  private get snapshotInterval(): number {
    return Math.min(this.snapshotEveryMax, Math.max(this.snapshotEvery, Math.ceil(this.lastSnapshotBytes / this.snapshotBytesPerRecord)));
  }
  protected codec: Codec = defaultCodec;

  /** Encodes the state for a snapshot; default `codec.encode`. Override to reuse the encoding of parts that did not change (the channel actor does). */
  protected encodeState(state: S): Uint8Array {
    return this.codec.encode(state);
  }
  /** Decodes a snapshot made by `encodeState`; default `codec.decode`. */
  protected decodeState(data: Uint8Array): S {
    return this.codec.decode(data) as S;
  }

  /** The state of a brand-new actor. */
  protected abstract initialState(): S;
  /** Applies one event; must be deterministic and free of I/O. May mutate and return `state`. */
  protected abstract apply(state: S, event: E): S;
  /** Handles one message (the turn body). */
  protected abstract handle(msg: unknown, meta: MessageMeta): unknown;

  /** Log stream name; default `<type>.<key>`. Override to group streams (e.g. per workspace). */
  protected streamName(): string {
    return `${this.ctx.id.type}.${this.ctx.id.key}`;
  }

  async onActivate(ctx: ActorContext): Promise<void> {
    this.ctx = ctx;
    const stream = this.streamName();
    const snap = await ctx.snapshots.load(stream);
    if (snap) {
      this.state = this.decodeState(snap.data);
      this.lastPos = snap.pos;
      this.lastSnapshotBytes = snap.data.byteLength;
    } else {
      this.state = this.initialState();
      this.lastPos = 0;
    }
    for (;;) {
      const batch = await ctx.log.read(stream, this.lastPos, 1000);
      for (const entry of batch) {
        for (const ev of this.codec.decode(entry.data) as E[]) this.state = this.apply(this.state, ev);
        this.lastPos = entry.pos;
        this.sinceSnapshot++;
      }
      if (batch.length < 1000) break;
    }
  }

  async onDeactivate(): Promise<void> {
    if (this.sinceSnapshot > 0) await this.snapshot();
  }

  receive(msg: unknown, ctx: ActorContext, meta: MessageMeta): unknown {
    this.ctx = ctx;
    return this.handle(msg, meta);
  }

  /**
   * Durably appends `events` as one record, then applies them. Resolves after
   * the append is acknowledged by the log. With a `dedupId` already stored,
   * nothing is appended or applied and `duplicate` is true; if that record
   * lies past this activation's last position, it throws LogConflictError
   * instead (state is stale: the runtime reactivates and retries).
   */
  protected async persist(events: E[], dedupId?: string): Promise<{ pos: number; duplicate: boolean }> {
    const stream = this.streamName();
    const res = await this.ctx.log.append(stream, { data: this.codec.encode(events), ...(dedupId !== undefined ? { dedupId } : {}) }, { expectedLastPos: this.lastPos });
    // A duplicate past our last position is a record this activation has not
    // applied: typically our own earlier attempt whose ack was lost (a
    // timed-out append, a stream leader that died after storing). Our state
    // is behind the log, so fence ourselves: the runtime reactivates from the
    // log and retries the message, which then finds its own result.
    if (res.duplicate && res.pos > this.lastPos) throw new LogConflictError(stream, this.lastPos, res.pos);
    if (res.duplicate) return res;
    for (const ev of events) this.state = this.apply(this.state, ev);
    this.lastPos = res.pos;
    if (++this.sinceSnapshot >= this.snapshotInterval) {
      // The write is durable already: the snapshot is taken now (encoding is
      // synchronous, so it is this exact state) but saved in the background,
      // so a large state does not stall the turn; a failed save only means a
      // longer replay later. Saves are chained so they land in order.
      const snap = { pos: this.lastPos, data: this.encodeState(this.state) };
      this.sinceSnapshot = 0;
      this.lastSnapshotBytes = snap.data.byteLength;
      const saved: Promise<void> = (this.pendingSnapshot ?? Promise.resolve())
        .then(() => this.ctx.snapshots.save(this.streamName(), snap))
        .catch((err) => this.ctx.logger.warn({ err: (err as Error).message }, 'snapshot failed'))
        .finally(() => {
          if (this.pendingSnapshot === saved) this.pendingSnapshot = undefined;
        });
      this.pendingSnapshot = saved;
    }
    return res;
  }

  /** The background snapshot save in flight, if any (nothing kept once it lands: a node holds an actor per connected user). */
  private pendingSnapshot: Promise<void> | undefined;

  /** Stores a snapshot of the current state at the current position (after any background save). */
  protected async snapshot(): Promise<void> {
    await this.pendingSnapshot;
    const data = this.encodeState(this.state);
    await this.ctx.snapshots.save(this.streamName(), { pos: this.lastPos, data });
    this.sinceSnapshot = 0;
    this.lastSnapshotBytes = data.byteLength;
  }
}
