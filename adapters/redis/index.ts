export * from './redis-cache-store.ts';
