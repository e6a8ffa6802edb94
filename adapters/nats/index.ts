/**
 * adapters/nats: the cluster profile's Transport (NATS core) and KvStore
 * (JetStream KV). Imports runtime/ ports and the @nats-io clients only.
 */
export * from './options.ts';
export * from './connect.ts';
export * from './nats-transport.ts';
export * from './nats-kv.ts';
export * from './jetstream-event-log.ts';
export * from './jetstream-snapshot-store.ts';
