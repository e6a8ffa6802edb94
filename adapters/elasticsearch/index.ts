/**
 * Elasticsearch implementations of Chorus seams: the Search port and its
 * index writer (`ElasticsearchSearch`), with the seed's workspace index
 * strategy (`IndexManager`) and bulk indexing (`BulkWriter`). See README.md.
 */
export * from './options.ts';
export * from './mappings.ts';
export * from './bulk.ts';
export * from './index-manager.ts';
export * from './es-search.ts';
