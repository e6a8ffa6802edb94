/**
 * A short-lived cache of workspace roles, kept in memory by channel and user
 * actors so a hot channel does not ask the workspace actor on every turn.
 * Entries live `ttlMs`; the workspace tells affected actors when a member is
 * removed or changes role, and they drop the entry at once. A lost tell is
 * bounded by the TTL. Negative answers (not a member) are cached for at most
 * `NEGATIVE_TTL_MS`, so someone who just joined is not kept out for long.
 */
import type { Role } from '../protocol.ts';

/** Default time to live of an entry: 10 s. */
export const MEMBER_CACHE_TTL_MS = 10_000;

/** Life of a cached "not a member" answer: 2 s (or the TTL, if shorter). */
export const NEGATIVE_TTL_MS = 2000;

interface Entry {
  readonly user: string;
  readonly role: Role | null;
  readonly until: number;
}

/**
 * user -> role or null (not a member), with expiry; at most `max` entries
 * (oldest evicted). The first user is kept in a field and a Map made only for
 * a second: a user actor caches one role, its own, and a node holds a user
 * actor per connected user (a Map with one entry is about 250 bytes).
 */
export class MemberCache {
  private one: Entry | undefined;
  private entries: Map<string, Entry> | undefined;
  constructor(private readonly ttlMs = MEMBER_CACHE_TTL_MS, private readonly max = 10_000) {}

  /** The cached role (null = known non-member), or undefined when unknown or expired. */
  get(user: string, now: number): Role | null | undefined {
    const e = this.one?.user === user ? this.one : this.entries?.get(user);
    if (!e) return undefined;
    if (e.until <= now) {
      this.drop(user);
      return undefined;
    }
    return e.role;
  }
  /** Caches an answer. */
  set(user: string, role: Role | null, now: number): void {
    const e: Entry = { user, role, until: now + (role === null ? Math.min(this.ttlMs, NEGATIVE_TTL_MS) : this.ttlMs) };
    if (!this.entries && (!this.one || this.one.user === user)) {
      this.one = e;
      return;
    }
    if (!this.entries) {
      this.entries = new Map([[this.one!.user, this.one!]]);
      this.one = undefined;
    }
    this.entries.delete(user);
    this.entries.set(user, e);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }
  /** Forgets one user (membership changed). */
  drop(user: string): void {
    if (this.one?.user === user) this.one = undefined;
    this.entries?.delete(user);
  }
}
