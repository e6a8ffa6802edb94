/**
 * The actor testing harness, exported as `chorus/testing`: TestCluster (N
 * nodes in one process on a virtual clock, with faults), TestProbe, seeded
 * randomness and helpers.
 */
export * from './test-cluster.ts';
export * from './test-probe.ts';
export * from './rng.ts';
export { waitFor as eventuallyReal } from '../helpers/ports.ts';
