import type { Clock, TimerHandle } from '../clock.ts';

/** One named actor timer (ctx.setTimer). */
export interface ActorTimer {
  readonly name: string;
  /** Due time on the node's clock. */
  at: number;
  /** Creation order among timers due at the same time. */
  seq: number;
  /** Period of a repeating timer; 0 for a one-shot. */
  readonly every: number;
  readonly msg: unknown;
  /** Index in the heap; -1 once it left it. */
  i: number;
  readonly owner: TimerOwner;
}

/** What ActorTimers needs of an activation: where its timers are listed (delivery is the constructor's `fire`). */
export interface TimerOwner {
  /** The owner's timers (few: a linear search by name is the cheapest map); allocated on first use. */
  timers: ActorTimer[] | undefined;
}

/** Takes a timer off its owner's list (the list goes when empty). */
function unlist(t: ActorTimer): void {
  const list = t.owner.timers;
  const k = list ? list.indexOf(t) : -1;
  if (k < 0) return;
  list!.splice(k, 1);
  if (!list!.length) t.owner.timers = undefined;
}

/**
 * Every actor timer of a node on one clock timer: a binary heap by due time
 * (then creation), with the clock armed for its head. A node holds a user
 * actor per connected user, each with a session sweep timer; one Node.js
 * timer per actor cost a Timeout, a closure and a Map per activation (about
 * 550 bytes), an entry here about 100. The same idea as Akka's scheduler or
 * Orleans' timer wheel: actor timers are many and coarse, the clock need
 * not know each one.
 *
 * Timers due at the same instant fire in creation order, as separate clock
 * timers did; a repeating timer is due again `every` ms after it fired.
 */
export class ActorTimers<O extends TimerOwner> {
  private readonly heap: ActorTimer[] = [];
  private seq = 0;
  private armed: { at: number; handle: TimerHandle } | undefined;
  private stopped = false;

  /** @param fire delivers a due timer's message to its owner (called synchronously from the clock's callback). */
  constructor(private readonly clock: Clock, private readonly fire: (owner: O, msg: unknown) => void) {}

  /** Timers waiting (for metrics and tests). */
  get size(): number {
    return this.heap.length;
  }

  /** Sets (or restarts) `owner`'s timer `name`. */
  set(owner: O, name: string, delayMs: number, msg: unknown, repeat: boolean): void {
    this.cancel(owner, name);
    const t: ActorTimer = { name, at: this.clock.now() + Math.max(0, delayMs), seq: this.seq++, every: repeat ? Math.max(1, delayMs) : 0, msg, i: this.heap.length, owner };
    (owner.timers ??= []).push(t);
    this.heap.push(t);
    this.up(t.i);
    this.arm();
  }

  /** Cancels `owner`'s timer `name`, if set. */
  cancel(owner: O, name: string): void {
    const t = owner.timers?.find((x) => x.name === name);
    if (!t) return;
    this.remove(t);
    unlist(t);
  }

  /** Cancels every timer of `owner` (it stopped). */
  cancelAll(owner: O): void {
    const list = owner.timers;
    if (!list) return;
    owner.timers = undefined;
    for (const t of list) this.remove(t);
  }

  /** Cancels the clock timer; nothing fires afterwards. */
  stop(): void {
    this.stopped = true;
    if (this.armed) this.clock.clearTimeout(this.armed.handle);
    this.armed = undefined;
  }

  private onClock(): void {
    this.armed = undefined;
    if (this.stopped) return;
    const now = this.clock.now();
    while (this.heap.length && this.heap[0]!.at <= now) {
      const t = this.heap[0]!;
      if (t.every) {
        t.at = now + t.every;
        t.seq = this.seq++;
        this.down(0);
      } else {
        this.remove(t);
        unlist(t);
      }
      this.fire(t.owner as O, t.msg);
    }
    this.arm();
  }

  /** Points the clock timer at the head of the heap (earlier than it is armed for, or not armed). */
  private arm(): void {
    if (this.stopped) return;
    const head = this.heap[0];
    if (!head) return;
    if (this.armed && this.armed.at <= head.at) return;
    if (this.armed) this.clock.clearTimeout(this.armed.handle);
    const at = head.at;
    this.armed = { at, handle: this.clock.setTimeout(() => this.onClock(), at - this.clock.now()) };
  }

  private remove(t: ActorTimer): void {
    const i = t.i;
    if (i < 0) return;
    t.i = -1;
    const last = this.heap.pop()!;
    if (last === t) return;
    this.heap[i] = last;
    last.i = i;
    this.down(i);
    this.up(i);
  }

  private before(a: ActorTimer, b: ActorTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private up(i: number): void {
    const h = this.heap;
    const t = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(t, h[p]!)) break;
      h[i] = h[p]!;
      h[i]!.i = i;
      i = p;
    }
    h[i] = t;
    t.i = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const t = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= h.length) break;
      if (c + 1 < h.length && this.before(h[c + 1]!, h[c]!)) c++;
      if (!this.before(h[c]!, t)) break;
      h[i] = h[c]!;
      h[i]!.i = i;
      i = c;
    }
    h[i] = t;
    t.i = i;
  }
}
