export * from './actor.ts';
export * from './actor-ref.ts';
export * from './actor-node.ts';
export * from './event-sourced.ts';
export type { Envelope, Reply } from './envelope.ts';
