/**
 * The query side on PostgreSQL / PGlite (docs/query-side.md): the projection
 * of the chat log into the query tables, the QueryStore, read replicas,
 * sharding by workspace and the shard move tool, plus everything the base
 * `index.ts` exports. (Kept apart from index.ts so the query side can be
 * adopted without touching it; index.ts may re-export this file.)
 */
export * from './index.ts';
export * from './replica-router.ts';
export * from './shard-router.ts';
export * from './query-projection.ts';
export * from './query-sink.ts';
export * from './query-tables.ts';
export * from './pg-query-store.ts';
export * from './shard-move.ts';
export * from './pg-search.ts';
