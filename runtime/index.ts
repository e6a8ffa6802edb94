/**
 * Chorus runtime: virtual actors, placement, ports. Imports nothing of ours
 * outside runtime/ and no driver package.
 */
export * from './actor/index.ts';
export * from './clock.ts';
export * from './codec.ts';
export * from './errors.ts';
export * from './files/index.ts';
export * from './ids.ts';
export * from './kv/kv.ts';
export * from './log/index.ts';
export * from './metrics.ts';
export * from './placement/index.ts';
export * from './transport/transport.ts';
