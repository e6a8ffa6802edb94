/**
 * Placement: the placement table (data), the consistent-hash ring that maps
 * actor keys to nodes from it, and the bounded-load planner the placement
 * supervisor uses to move hot actors. Everything here is pure: no I/O, no
 * clocks, so every node computes the same answers from the same table.
 */
export * from './placement-table.ts';
export * from './hash-ring.ts';
export * from './bounded-load.ts';
