export * from './sql-client.ts';
export * from './sql-metrics.ts';
export * from './pglite-client.ts';
export * from './pg-client.ts';
export * from './migrations.ts';
export * from './pg-event-log.ts';
export * from './query.ts';
export * from './sql-file-catalog.ts';
