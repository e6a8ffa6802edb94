/** Message search for the composition root: the search projection and startSearch (docs/search.md). */
export * from './search-projection.ts';
export * from './start-search.ts';
