import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import { MemoryEventLog, MemoryKv, MemoryNetwork, MemorySnapshotStore } from '../adapters/memory/index.ts';
import { PromMetrics } from '../adapters/metrics/index.ts';
import {
  EVENT_LOG, KV_STORE, LOGGER, METRICS, SNAPSHOT_STORE, TRANSPORT,
  type EventLog, type KvStore, type Logger, type SnapshotStore, type Transport,
} from '../runtime/index.ts';
import type { ChorusConfig } from './config.ts';

/** Container tokens of the composition root itself. */
export const CONFIG = Symbol.for('chorus.Config');
/** Things to close when the node stops, in reverse order of registration. */
export const CLOSERS = Symbol.for('chorus.Closers');

/** The adapters a node runs on, chosen by profile. */
export interface NodePorts {
  transport: Transport;
  kv: KvStore;
  log: EventLog;
  snapshots: SnapshotStore;
  close(): Promise<void>;
}

/**
 * Builds one node's child container: the only place that picks adapters.
 * Several nodes in one process each get their own child container.
 */
export async function createNodeContainer(config: ChorusConfig, overrides: { ports?: NodePorts; logger?: Logger } = {}): Promise<DependencyContainer> {
  const c = rootContainer.createChildContainer();
  c.registerInstance(CONFIG, config);
  const logger = overrides.logger ?? (pino({ level: config.logLevel, base: { node: config.nodeId } }) as unknown as Logger);
  c.registerInstance(LOGGER, logger);
  const metrics = new PromMetrics({ labels: { node: config.nodeId } });
  c.registerInstance(METRICS, metrics);
  c.registerInstance(PromMetrics, metrics);
  const ports = overrides.ports ?? (config.profile === 'cluster' ? await clusterPorts(config, logger) : await embeddedPorts(config));
  c.registerInstance(TRANSPORT, ports.transport);
  c.registerInstance(KV_STORE, ports.kv);
  c.registerInstance(EVENT_LOG, ports.log);
  c.registerInstance(SNAPSHOT_STORE, ports.snapshots);
  c.register(CLOSERS, { useFactory: instanceCachingFactory(() => [() => ports.close()]) });
  return c;
}

/** Embedded profile: in-process transport and KV, a durable log on disk under dataDir. */
async function embeddedPorts(config: ChorusConfig): Promise<NodePorts> {
  mkdirSync(config.dataDir, { recursive: true });
  const net = new MemoryNetwork();
  const { log, snapshots, close } = await embeddedLog(join(config.dataDir, 'log'));
  return { transport: net.transport(config.nodeId), kv: new MemoryKv(), log, snapshots, close };
}

/** The embedded durable log (PGlite) when available, else memory. */
async function embeddedLog(_dir: string): Promise<{ log: EventLog; snapshots: SnapshotStore; close(): Promise<void> }> {
  const log = new MemoryEventLog();
  return { log, snapshots: new MemorySnapshotStore(log.server), close: async () => {} };
}

/** Cluster profile: NATS core transport, JetStream KV and log. */
async function clusterPorts(_config: ChorusConfig, _logger: Logger): Promise<NodePorts> {
  throw new Error('cluster profile: NATS adapters not wired yet');
}
