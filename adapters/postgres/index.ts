export * from './sql-client.ts';
export * from './pglite-client.ts';
export * from './pg-client.ts';
export * from './migrations.ts';
export * from './pg-event-log.ts';
export * from './query.ts';
