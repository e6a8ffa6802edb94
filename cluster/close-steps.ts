import type { Logger } from '../runtime/metrics.ts';

/**
 * Close steps of a part being built (connections, caches, leases): `push`
 * them as they are made; `close()` runs them last-made first, logging (not
 * throwing) a step that fails so the others still run. Used by the query
 * and search sides, which also close on a failed start.
 */
export function closeSteps(logger: Logger, what: string): { push(step: () => Promise<void>): void; close(): Promise<void> } {
  const steps: Array<() => Promise<void>> = [];
  return {
    push: (step) => void steps.push(step),
    close: async () => {
      for (const step of steps.splice(0).reverse()) await step().catch((err) => logger.warn({ err: (err as Error).message }, `${what} close step failed`));
    },
  };
}
