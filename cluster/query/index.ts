/**
 * The query side's wiring (docs/query-side.md): the projection runner, the
 * two-level cache, the cached QueryStore, and `startQuerySide` for the
 * composition root.
 */
export * from './projection-runner.ts';
export * from './cache-store.ts';
export * from './tiered-cache.ts';
export * from './cached-query-store.ts';
export * from './start-query-side.ts';
export * from './projection-lease.ts';
