/**
 * A placement table is the whole input of actor placement: every node that
 * holds the same table computes the same owner for every actor, with no
 * directory look-up. The placement supervisor is the only writer; each new
 * table has a strictly greater epoch.
 */

/** One cluster member as placement sees it. */
export interface PlacementMember {
  /** Stable node id (unique in the cluster). */
  readonly id: string;
  /** Relative capacity; 1 is the default. A weight of 2 gets about twice the keys. 0 means "owns nothing" (draining). */
  readonly weight: number;
}

/** The members, weights and overrides of one epoch. */
export interface PlacementSnapshot {
  /** Strictly increasing version of the table; used to fence stale owners. */
  readonly epoch: number;
  /** Active members, in any order (the ring sorts them). */
  readonly members: readonly PlacementMember[];
  /** Explicit moves decided by the supervisor: actor key string -> node id. Ignored when the node is not a member. */
  readonly overrides: Readonly<Record<string, string>>;
}

/**
 * The table a node acts on: the current snapshot plus the previous one, so a
 * new owner can tell which node to ask for a handoff of a moved actor.
 */
export interface PlacementTable extends PlacementSnapshot {
  /** The snapshot this one replaced, if any (one level only). */
  readonly prev?: PlacementSnapshot;
}

/** The empty table every node starts from before it hears of a real one. */
export const EMPTY_TABLE: PlacementTable = Object.freeze({ epoch: 0, members: [], overrides: {} });
