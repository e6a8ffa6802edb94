/**
 * V8 flags every Chorus node process starts with. They cannot be set from
 * inside the process (V8 sizes its heap when the isolate is created), so each
 * launcher passes them: package.json `start`, scripts/cluster.sh, the k8s
 * manifests (NODE_OPTIONS), the test and bench launchers (imported from
 * here); test/cluster/node-flags.test.ts keeps the copies in step.
 *
 * `--max-semi-space-size=64` (MiB; Node 20's default is 16): a node's young
 * generation holds what a post allocates while it is in flight (frames,
 * commands, log records, projection batches). With 16 MiB the scavenger ran
 * about 8 times a second at saturation, each pause 10-27 ms because much of it
 * was still alive, 8-10 % of the node's thread; with 64 MiB about 2 a second,
 * 3-4 %. Shape A fan-out at saturation (three 5 s phases, twice each):
 * 29,000 deliveries/s at 53 CPU-s per 1M with the default, 33,000-35,700 at
 * 44-45 with 64 (128 gave little more). Idle memory per connection did not
 * grow: the young generation only grows under allocation.
 */
export const NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=64']);
