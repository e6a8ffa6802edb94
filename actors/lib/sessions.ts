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

/** The sessions of one user. */
export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  constructor(private readonly ttlMs: number) {}

  /** Number of sessions (call `sweep` first for an exact count). */
  get size(): number {
    return this.sessions.size;
  }
  /** Adds or replaces a session. */
  open(id: string, node: string, device: string, now: number): void {
    this.sessions.set(id, { node, device, idle: false, openedAt: now, expiresAt: now + this.ttlMs });
  }
  /** Removes a session; unknown ids are ignored. */
  close(id: string): void {
    this.sessions.delete(id);
  }
  /**
   * `node` holds exactly `ids` of this user's sessions: extend those (adding
   * unknown ones, device 'unknown'), drop the node's others.
   */
  refresh(node: string, ids: readonly string[], now: number): void {
    const keep = new Set(ids);
    for (const [id, s] of this.sessions) if (s.node === node && !keep.has(id)) this.sessions.delete(id);
    for (const id of keep) {
      const s = this.sessions.get(id);
      if (s) {
        s.node = node;
        s.expiresAt = now + this.ttlMs;
      } else this.open(id, node, 'unknown', now);
    }
  }
  /** Marks a session idle or active; unknown ids are ignored. */
  setIdle(id: string, idle: boolean): void {
    const s = this.sessions.get(id);
    if (s) s.idle = idle;
  }
  /** Drops expired sessions. */
  sweep(now: number): void {
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }
  /** online: some active session and not set away; away: sessions, but all idle or set away; offline: none. */
  presence(awaySet: boolean): Presence {
    if (this.sessions.size === 0) return 'offline';
    if (awaySet) return 'away';
    for (const s of this.sessions.values()) if (!s.idle) return 'online';
    return 'away';
  }
  /** A copy of the sessions, for `me`. */
  list(): Array<{ sessionId: string } & Session> {
    return [...this.sessions].map(([sessionId, s]) => ({ sessionId, ...s }));
  }
}
