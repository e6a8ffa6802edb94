import type { DependencyContainer } from 'tsyringe';
import { PromMetrics } from '../adapters/metrics/index.ts';
import { EVENT_LOG, KV_STORE, LOGGER, METRICS, SNAPSHOT_STORE, TRANSPORT, type ActorType, type Logger } from '../runtime/index.ts';
import { ChorusNode } from './chorus-node.ts';
import type { ChorusConfig } from './config.ts';
import { CLOSERS, createNodeContainer, type NodePorts } from './container.ts';
import { HttpServer } from './http-server.ts';

/** A running node with its HTTP side. */
export interface RunningNode {
  readonly config: ChorusConfig;
  readonly node: ChorusNode;
  readonly http: HttpServer;
  readonly container: DependencyContainer;
  /** The port the HTTP server listens on. */
  readonly port: number;
  readonly url: string;
  /** Graceful stop: actors persisted and released, membership left, connections closed. */
  stop(): Promise<void>;
  /** Hands every actor to the other nodes, then stops. */
  drain(onProgress?: (remaining: number) => void): Promise<void>;
}

/** Extra parts a caller (tests, benches) can supply. */
export interface StartOptions {
  types?: readonly ActorType[];
  ports?: NodePorts;
  logger?: Logger;
}

/** Starts a node from a config: the composition root used by `npm start`, tests and benches. */
export async function startNode(config: ChorusConfig, opts: StartOptions = {}): Promise<RunningNode> {
  const c = await createNodeContainer(config, { ...(opts.ports ? { ports: opts.ports } : {}), ...(opts.logger ? { logger: opts.logger } : {}) });
  const logger = c.resolve<Logger>(LOGGER);
  const metrics = c.resolve(PromMetrics);
  const node = new ChorusNode({
    nodeId: config.nodeId,
    transport: c.resolve(TRANSPORT),
    kv: c.resolve(KV_STORE),
    log: c.resolve(EVENT_LOG),
    snapshots: c.resolve(SNAPSHOT_STORE),
    metrics: c.resolve(METRICS),
    logger,
    types: opts.types ?? [],
    region: config.region,
    weight: config.weight,
    askTimeoutMs: config.askTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    timing: { heartbeatMs: config.heartbeatMs, fenceAfterMs: config.fenceAfterMs, failureTimeoutMs: config.failureTimeoutMs, leaseMs: config.leaseMs },
  });
  const http = new HttpServer({
    metrics: async () => ({ text: await metrics.text(), contentType: metrics.contentType }),
    readiness: {
      member: () => node.actors.table.members.some((m) => m.id === config.nodeId) || 'not in the placement table yet',
      owner: () => !node.actors.fenced || 'fenced: not taking actor work',
      log: async (): Promise<true> => {
        await c.resolve<{ lastPos(s: string): Promise<number> }>(EVENT_LOG).lastPos('chorus.readyz');
        return true;
      },
    },
  });
  const port = await http.listen(config.port, config.host);
  const url = config.publicUrl ?? `http://${config.host}:${port}`;
  await node.start();
  logger.info({ url, profile: config.profile }, 'chorus node started');
  const closers = c.resolve<Array<() => Promise<void>>>(CLOSERS);
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    await node.stop();
    await http.close();
    for (const close of closers.reverse()) await close().catch(() => {});
  })());
  return {
    config, node, http, container: c, port, url, stop,
    async drain(onProgress) {
      await node.drain({ ...(onProgress ? { onProgress } : {}) });
      await stop();
    },
  };
}
