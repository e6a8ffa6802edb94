import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import { MemoryKv, MemoryNetwork } from '../adapters/memory/index.ts';
import { connectNats, JetStreamEventLog, JetStreamSnapshotStore, NatsKv, NatsTransport, natsOptions } from '../adapters/nats/index.ts';
import { pgliteClient, PostgresEventLog, timedSql, type SqlClient } from '../adapters/postgres/index.ts';
import { FileSnapshotStore } from '../adapters/local/index.ts';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
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
  /** Describes the durable log's streams and consumers, with lag (the inspector's `streams`). */
  describeLog?(): Promise<LogStreamInfo[]>;
  /** The embedded profile's SQL client (PGlite), shared with the query side so one database serves both. */
  sql?: SqlClient;
  /** The cluster profile's NATS connection and subject prefix (the admin operations answer on it too). */
  nats?: { connection: NatsConnection; prefix: string };
}

/** One stream of the durable log as the inspector shows it. */
export interface LogStreamInfo {
  name: string;
  messages: number;
  bytes: number;
  replicas: number;
  consumers: Array<{ name: string; pending: number; ackPending: number }>;
}

/** Container token of the ports object (for `describeLog`). */
export const NODE_PORTS = Symbol.for('chorus.NodePorts');

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
  const ports = overrides.ports ?? (config.profile === 'cluster' ? await clusterPorts(config, logger, metrics) : await embeddedPorts(config, metrics));
  c.registerInstance(TRANSPORT, ports.transport);
  c.registerInstance(KV_STORE, ports.kv);
  c.registerInstance(EVENT_LOG, ports.log);
  c.registerInstance(SNAPSHOT_STORE, ports.snapshots);
  c.registerInstance(NODE_PORTS, ports);
  c.register(CLOSERS, { useFactory: instanceCachingFactory(() => [() => ports.close()]) });
  return c;
}

/** Embedded profile: in-process transport and KV, a durable log on disk under dataDir. */
async function embeddedPorts(config: ChorusConfig, metrics: PromMetrics): Promise<NodePorts> {
  mkdirSync(config.dataDir, { recursive: true });
  const net = new MemoryNetwork();
  const { log, snapshots, close, describe, client } = await embeddedLog(join(config.dataDir, 'log'), join(config.dataDir, 'snapshots'), metrics);
  return { transport: net.transport(config.nodeId), kv: new MemoryKv(), log, snapshots, close, describeLog: describe, sql: client };
}

/**
 * The embedded durable log: PGlite in `dir` (a PostgreSQL in WebAssembly, nothing to install); snapshots as
 * files in `snapshotDir` (off the log's one connection, see FileSnapshotStore).
 */
async function embeddedLog(dir: string, snapshotDir: string, metrics: PromMetrics): Promise<{ log: EventLog; snapshots: SnapshotStore; close(): Promise<void>; describe(): Promise<LogStreamInfo[]>; client: SqlClient }> {
  // the log's database (the query side has its own, in a worker): timed once here (database_query_duration_seconds{db="main"})
  const client = timedSql(await pgliteClient(dir), { metrics, db: 'main' });
  // the only writer of its PGlite directory: caught-up tails (the projections) take new records from memory. Under a
  // burst the projections (on the query side's worker, which shares the cores) fall behind by tens of thousands of
  // records; a tail that overflowed its feed reads them back from PGlite on this thread, which cost the fan-out bench
  // its p99 long after the burst (half saturation: 105-326 ms with 10,000, 54-97 ms with 200,000). At most some
  // 100 MB of recent records.
  // Group commit over 5 ms (minBatchIntervalMs): a PGlite batch costs a large fixed share of this thread whatever it
  // holds, and appends arriving one by one (1,500/s) each got their own: 500-750 us of CPU per append against 220-330
  // with 5 ms, for about 3 ms more to each ack (adapters/postgres/README.md). Under saturation a batch takes longer
  // than 5 ms anyway.
  const log = new PostgresEventLog(client, { singleWriter: true, feedLimit: 200_000, minBatchIntervalMs: 5 });
  const snapshots = new FileSnapshotStore(snapshotDir);
  // No VACUUM/ANALYZE rounds here (the query side runs them on its own database, in its worker): this database is
  // the append-only log, whose statements are written to use their indexes without statistics, and ANALYZE of a
  // large log holds this thread for a quarter of a second.
  return {
    log, snapshots, client,
    describe: async () => {
      // one row per actor type: the PGlite log is one table
      const rows = await client.query<{ kind: string; n: string | number; bytes: string | number }>(
        `SELECT split_part(stream, '.', 1) AS kind, count(*) AS n, coalesce(sum(octet_length(data)), 0) AS bytes FROM chorus_log GROUP BY 1 ORDER BY 1`, []);
      return rows.map((r) => ({ name: `chorus_log:${r.kind}`, messages: Number(r.n), bytes: Number(r.bytes), replicas: 1, consumers: [] }));
    },
    close: async () => {
      await log.close();
      await snapshots.close();
      await client.close();
    },
  };
}

/** Cluster profile: NATS core transport, JetStream KV and log, on one connection per node. */
async function clusterPorts(config: ChorusConfig, logger: Logger, metrics: PromMetrics): Promise<NodePorts> {
  const opts = natsOptions({ servers: config.natsUrls, name: `chorus-${config.nodeId}`, replicas: config.natsReplicas });
  const nc = await connectNats(opts, { logger });
  const connected = metrics.gauge('chorus_nats_connected', '1 while the node has a NATS connection, else 0');
  connected.set(1);
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') connected.set(0);
      else if (s.type === 'reconnect') connected.set(1);
    }
  })().catch(() => {});
  const replicas = config.natsReplicas;
  const transport = new NatsTransport(nc, { prefix: opts.prefix });
  const kv = new NatsKv(nc, { replicas, apiTimeoutMs: opts.apiTimeoutMs });
  const log = new JetStreamEventLog(nc, { subjectPrefix: opts.prefix, replicas, requestTimeoutMs: opts.apiTimeoutMs });
  const snapshots = new JetStreamSnapshotStore(nc, { replicas });
  return {
    transport, kv, log, snapshots, nats: { connection: nc, prefix: opts.prefix },
    describeLog: async () => {
      const jsm = await jetstreamManager(nc);
      const out: LogStreamInfo[] = [];
      const seen = new Set<string>();
      for await (const si of jsm.streams.list()) {
        // the list is paged by offset: a stream created meanwhile shifts the pages, and one may come twice
        if (seen.has(si.config.name)) continue;
        seen.add(si.config.name);
        const consumers: LogStreamInfo['consumers'] = [];
        for await (const ci of jsm.consumers.list(si.config.name)) consumers.push({ name: ci.name, pending: ci.num_pending, ackPending: ci.num_ack_pending });
        out.push({ name: si.config.name, messages: si.state.messages, bytes: si.state.bytes, replicas: si.config.num_replicas, consumers });
      }
      return out;
    },
    close: async () => {
      for (const c of [transport, kv, log, snapshots]) await c.close().catch(() => {});
      await nc.drain().catch(() => nc.close());
    },
  };
}
