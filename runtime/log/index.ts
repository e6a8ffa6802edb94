export * from './event-log.ts';
export * from './snapshot-store.ts';
