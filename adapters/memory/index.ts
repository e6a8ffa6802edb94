export * from './memory-network.ts';
export * from './memory-kv.ts';
export * from './memory-event-log.ts';
export * from './memory-metrics.ts';
