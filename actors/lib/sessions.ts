/**
 * A user's live sessions (sockets) across devices and edge nodes, and the
 * presence derived from them. Ephemeral by design: sessions live in the user
 * actor's memory only, expire unless the edge node holding them refreshes
 * them, and are rebuilt from the edges' next refresh after the actor moves.
 */
import type { Presence } from '../events.ts';

/** One session. */
export interface Session {
  node: string;
  device: string;
  idle: boolean;
  openedAt: number;
  expiresAt: number;
}

/** `filter` leaves room for 16 more elements; a copy of its result has none (concat and map size exactly). */
function tight<T>(a: T[]): T[] {
  return a.slice();
}

interface Entry extends Session {
  readonly id: string;
}

/**
 * The sessions of one user, in an array replaced (never grown in place) when
 * one opens or closes: a user has a handful at most (bounded by the edges'
 * per-user connection limit), a node holds a table per connected user, and a
 * Map costs about 200 bytes more than a one-element array.
 */
export class SessionTable {
  private sessions: readonly Entry[] = [];
  constructor(private readonly ttlMs: number) {}

  /** Number of sessions (call `sweep` first for an exact count). */
  get size(): number {
    return this.sessions.length;
  }
  /** Adds or replaces a session. */
  open(id: string, node: string, device: string, now: number): void {
    const e: Entry = { id, node, device, idle: false, openedAt: now, expiresAt: now + this.ttlMs };
    const i = this.sessions.findIndex((x) => x.id === id);
    this.sessions = i < 0 ? this.sessions.concat(e) : this.sessions.map((x, k) => (k === i ? e : x));
  }
  /** Removes a session; unknown ids are ignored. */
  close(id: string): void {
    if (this.sessions.some((x) => x.id === id)) this.sessions = tight(this.sessions.filter((x) => x.id !== id));
  }
  /**
   * `node` holds exactly `ids` of this user's sessions: extend those (adding
   * unknown ones, device 'unknown'), drop the node's others.
   */
  refresh(node: string, ids: readonly string[], now: number): void {
    const keep = new Set(ids);
    if (this.sessions.some((x) => x.node === node && !keep.has(x.id))) this.sessions = tight(this.sessions.filter((x) => x.node !== node || keep.has(x.id)));
    for (const id of keep) {
      const s = this.sessions.find((x) => x.id === id);
      if (s) {
        s.node = node;
        s.expiresAt = now + this.ttlMs;
      } else this.open(id, node, 'unknown', now);
    }
  }
  /** Marks a session idle or active; unknown ids are ignored. */
  setIdle(id: string, idle: boolean): void {
    const s = this.sessions.find((x) => x.id === id);
    if (s) s.idle = idle;
  }
  /** Drops expired sessions. */
  sweep(now: number): void {
    if (this.sessions.some((x) => x.expiresAt <= now)) this.sessions = tight(this.sessions.filter((x) => x.expiresAt > now));
  }
  /** online: some active session and not set away; away: sessions, but all idle or set away; offline: none. */
  presence(awaySet: boolean): Presence {
    if (this.sessions.length === 0) return 'offline';
    if (awaySet) return 'away';
    return this.sessions.some((x) => !x.idle) ? 'online' : 'away';
  }
  /** A copy of the sessions, for `me`. */
  list(): Array<{ sessionId: string } & Session> {
    return this.sessions.map(({ id, ...s }) => ({ sessionId: id, ...s }));
  }
}
