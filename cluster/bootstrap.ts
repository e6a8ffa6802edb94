import type { DependencyContainer } from 'tsyringe';
import { PromMetrics } from '../adapters/metrics/index.ts';
import { EVENT_LOG, KV_STORE, LOGGER, METRICS, SNAPSHOT_STORE, TRANSPORT, systemClock, type ActorType, type Logger } from '../runtime/index.ts';
import { ChorusNode } from './chorus-node.ts';
import type { ChorusConfig } from './config.ts';
import { CLOSERS, createNodeContainer, NODE_PORTS, type NodePorts } from './container.ts';
import { HttpServer } from './http-server.ts';
import { randomBytes } from 'node:crypto';
import { chatActorTypes } from '../actors/index.ts';
import type { Notifier } from '../actors/notifier.ts';
import { TokenSigner } from './edge/auth.ts';
import { AdminService, mountAdminHttp, serveAdminOverNats, type StorageCostProvider } from './admin/index.ts';
import { ChatEdge, type EdgeOptions } from './edge/chat-edge.ts';
import { mountChatHttp } from './edge/http-api.ts';
import { LogNotifier } from './log-notifier.ts';
import { KvPushSettings, PushNotifier, WebhookProvider, WebPushProvider, type PushProvider } from '../adapters/push/index.ts';
import { mountPushApi } from './edge/push-api.ts';
import { querySideEnv, startQuerySide, type QuerySide } from './query/index.ts';
import { searchEnv, startSearch, type SearchSide } from './search/index.ts';
import { LogScaler, ScaleAdvisor, type Scaler } from './scaling/index.ts';
import { CpuMeter, RateMeter } from './rate-meter.ts';
import { startFiles, type Files } from './files/index.ts';
import { mountFilesApi } from './edge/files-api.ts';

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
  /** The WebSocket edge. */
  readonly edge: ChatEdge;
  /** Signs and verifies client tokens (tests use it to mint tokens). */
  readonly signer: TokenSigner;
  /** Uploads, downloads and tiering (docs/files.md); undefined when files are disabled (cluster without CHORUS_PG_URL). */
  readonly files: Files | undefined;
}

/** Extra parts a caller (tests, benches) can supply. */
export interface StartOptions {
  /** Actor types; default the chat actors. */
  types?: readonly ActorType[];
  notifier?: Notifier;
  edge?: EdgeOptions;
  /** Called after a drain (POST /admin/drain or SIGUSR2) finished; main.ts exits the process. */
  onDrained?: () => void;
  /** Applies scale decisions when this node leads. Default: log only. */
  scaler?: Scaler;
  /** Set false to run without the query side (reads served by the actors). Default: on in embedded, on in cluster when CHORUS_PG_URL/CHORUS_PG_SHARDS is set. */
  querySide?: boolean;
  /** Extra push providers (tests); the configured Web Push and webhook providers are added to these. */
  pushProviders?: PushProvider[];
  ports?: NodePorts;
  logger?: Logger;
  /** The storage-tier section of `chorus costs` (the file store's tiering plan). Default: reported as not configured. */
  storageCosts?: StorageCostProvider;
}

/** Starts a node from a config: the composition root used by `npm start`, tests and benches. */
export async function startNode(config: ChorusConfig, opts: StartOptions = {}): Promise<RunningNode> {
  const c = await createNodeContainer(config, { ...(opts.ports ? { ports: opts.ports } : {}), ...(opts.logger ? { logger: opts.logger } : {}) });
  const logger = c.resolve<Logger>(LOGGER);
  const metrics = c.resolve(PromMetrics);
  const secret = config.authSecret ?? randomBytes(24).toString('base64url');
  const signer = new TokenSigner(secret);
  let node: ChorusNode | undefined;
  let edge: ChatEdge | undefined;
  const http = new HttpServer({
    metrics: async () => ({ text: await metrics.text(), contentType: metrics.contentType }),
    readiness: {
      member: () => (node?.actors.table.members.some((m) => m.id === config.nodeId) ? true : 'not in the placement table yet'),
      owner: () => (node && !node.actors.fenced ? true : 'fenced: not taking actor work'),
      log: async (): Promise<true> => {
        await c.resolve<{ lastPos(s: string): Promise<number> }>(EVENT_LOG).lastPos('chorus.readyz');
        return true;
      },
    },
  });
  const port = await http.listen(config.port, config.host);
  const url = config.publicUrl ?? `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
  const transport = c.resolve<import('../runtime/index.ts').Transport>(TRANSPORT);
  // offline notifications: always logged; pushed when Web Push or a webhook is configured
  const pushStore = new KvPushSettings(c.resolve(KV_STORE));
  const providers: PushProvider[] = [...(opts.pushProviders ?? [])];
  if (config.pushWebhookSecret) providers.push(new WebhookProvider(config.pushWebhookSecret));
  if (config.vapidPublicKey && config.vapidPrivateKey && config.vapidSubject) {
    providers.push(new WebPushProvider({ subject: config.vapidSubject, publicKey: config.vapidPublicKey, privateKey: config.vapidPrivateKey }));
  }
  // the query side: projections of the log into SQL, read through a two-level cache
  const wantQuery = opts.querySide !== false && (config.profile === 'embedded' || Boolean(process.env.CHORUS_PG_URL || process.env.CHORUS_PG_SHARDS));
  const ports = c.resolve<NodePorts>(NODE_PORTS);
  let query: QuerySide | undefined;
  if (wantQuery) {
    try {
      query = await startQuerySide({
        // embedded: its own database (${dataDir}/query), run in a worker thread, not the log's
        profile: config.profile, log: c.resolve(EVENT_LOG), kv: c.resolve(KV_STORE), metrics, logger, nodeId: config.nodeId, dataDir: config.dataDir,
        ...(config.profile === 'cluster' ? querySideEnv(process.env) : {}),
      });
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'query side did not start: reads are served by the actors');
    }
  }
  // message search: Elasticsearch when CHORUS_ES_URL is set, else PostgreSQL full-text on the query side's databases
  let search: SearchSide | undefined;
  const searchSettings = config.profile === 'cluster' ? searchEnv(process.env) : {};
  if (query || searchSettings.esUrl) {
    try {
      search = await startSearch({
        profile: config.profile, log: c.resolve(EVENT_LOG), kv: c.resolve(KV_STORE), metrics, logger, nodeId: config.nodeId,
        ...(query ? { routing: query.routing } : {}), ...searchSettings,
      });
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'search did not start: the search op answers CHAT_INVALID');
    }
  }
  const logNotifier = new LogNotifier(logger, metrics);
  const push = providers.length ? new PushNotifier(pushStore, providers, { logger, metrics, batchMs: opts.pushProviders ? 50 : 2000 }) : undefined;
  const notifier: Notifier = { notify: async (userKey, n) => { await logNotifier.notify(userKey, n); await push?.notify(userKey, n); } };
  // messages per second for the heartbeat (the HPA's messages_per_second and the scale rule)
  const posts = new RateMeter(() => Date.now());
  const cpu = new CpuMeter();
  const rateGauge = metrics.gauge('messages_per_second', 'Messages posted through this node per second (1-minute rate), for the HPA');
  const edgeMetrics: import('../runtime/index.ts').Metrics = {
    counter: (name, help, labels) => {
      const c0 = metrics.counter(name, help, labels);
      if (name !== 'messages_sent_total') return c0;
      return { inc: (l, v = 1) => { c0.inc(l, v); posts.mark(v); } };
    },
    gauge: (...a) => metrics.gauge(...a),
    histogram: (...a) => metrics.histogram(...a),
  };
  const advisor = new ScaleAdvisor({ scaler: opts.scaler ?? new LogScaler(1, logger), clock: systemClock, logger, metrics });
  node = new ChorusNode({
    nodeId: config.nodeId,
    transport,
    kv: c.resolve(KV_STORE),
    log: c.resolve(EVENT_LOG),
    snapshots: c.resolve(SNAPSHOT_STORE),
    metrics: c.resolve(METRICS),
    logger,
    types: opts.types ?? chatActorTypes({ notifier: opts.notifier ?? notifier, ...(query ? { queryStore: query.queryStore } : {}), ...(search ? { search: search.search } : {}) }),
    region: config.region,
    weight: config.weight,
    url,
    askTimeoutMs: config.askTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    timing: { heartbeatMs: config.heartbeatMs, fenceAfterMs: config.fenceAfterMs, failureTimeoutMs: config.failureTimeoutMs, leaseMs: config.leaseMs },
    load: () => {
      const rate = posts.perSecond();
      rateGauge.set(rate);
      return { connections: edge?.connectionCount ?? 0, messagesPerSec: rate, cpuPct: cpu.percent() };
    },
    advisor,
  });
  edge = new ChatEdge(node, transport, signer, { ...opts.edge, metrics: edgeMetrics, logger });
  // files: local directory (embedded) or S3 (+ MinIO secondary); metadata in the SQL store
  const files = await startFiles({
    config, sql: ports.sql, pgUrl: process.env.CHORUS_PG_URL, secret: `${secret}:files`, publicUrl: () => url, metrics, logger, cache: query?.cache,
  }).catch((err) => (logger.error({ err: (err as Error).message }, 'files did not start: uploads are disabled'), undefined));
  const storageCosts = opts.storageCosts ?? (files ? () => files.costReport() : undefined);
  // the admin operations: one table, served over HTTP (/admin/<op>) and, in a cluster, over NATS
  let drainRequested: (() => void) | undefined;
  const admin = new AdminService({
    node, connections: () => edge?.connectionCount ?? 0, scale: () => advisor.explanation, drain: () => drainRequested?.(),
    ...(ports.describeLog ? { describeLog: () => ports.describeLog!() } : {}),
    ...(storageCosts ? { storage: storageCosts } : {}),
  }, signer);
  if (files) mountFilesApi(http, { node, signer, files }); // before the admin routes, which answer every other /admin/ path
  mountAdminHttp(http, admin);
  const adminNats = ports.nats ? await serveAdminOverNats(ports.nats.connection, admin, { prefix: ports.nats.prefix, logger }) : undefined;
  mountChatHttp(http, { node, edge, signer, devSignIn: config.devSignIn ?? false, publicUrl: () => url, region: config.region });
  mountPushApi(http, { signer, store: pushStore, ...(config.vapidPublicKey ? { vapidPublicKey: config.vapidPublicKey } : {}) });
  await node.start();
  logger.info({ url, profile: config.profile }, 'chorus node started');
  const closers = c.resolve<Array<() => Promise<void>>>(CLOSERS);
  let stopping: Promise<void> | undefined;
  const running = node;
  const runningEdge = edge;
  const stop = () => (stopping ??= (async () => {
    adminNats?.dispose();
    await runningEdge.close();
    await running.stop();
    await search?.close().catch(() => {});
    await query?.close().catch(() => {});
    await files?.close();
    await http.close();
    for (const close of closers.reverse()) await close().catch(() => {});
  })());
  const handle: RunningNode = {
    config, node: running, http, container: c, port, url, stop, edge: runningEdge, signer, files,
    async drain(onProgress) {
      await running.drain({ ...(onProgress ? { onProgress } : {}) });
      await stop();
      opts.onDrained?.();
    },
  };
  drainRequested = () => void handle.drain().catch((err) => logger.error({ err: (err as Error).message }, 'drain failed'));
  return handle;
}
