/**
 * RedisCacheStore: the shared cache level (L2) of the query side on Redis
 * with ioredis. It has the shape of cluster/query's CacheStore (structurally:
 * adapters do not import cluster/).
 *
 * - Values: `SET <prefix>v:<key> <bytes> PX <ttl>`; each key is also filed in
 *   a set per tag (`SADD <prefix>t:<tag> <key>`, the set living as long as the
 *   longest TTL put in it).
 * - `invalidateTags`: one Lua script per call deletes every key of each tag
 *   and the tag sets, atomically.
 * - Invalidations between nodes: PUBLISH on `<prefix>invalidate`, received on
 *   a second connection (a subscribed connection cannot run commands).
 * - Failure: commands fail fast while Redis is unreachable (no offline queue,
 *   `commandTimeoutMs` per command); `up` is false between the connection's
 *   'close' and its next 'ready'; ioredis reconnects by itself with back-off
 *   (`retryStrategy`, capped at 2 s), resubscribing the subscriber. The
 *   caller (TieredCache) skips L2 while it is down, and logs the transitions.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { noopMetrics, silentLogger, type Logger, type Metrics } from '../../runtime/metrics.ts';
import type { Disposable } from '../../runtime/transport/transport.ts';

/** Options of RedisCacheStore; every field but `url` has a default. */
export interface RedisCacheStoreOptions {
  /** `redis://host:port/db`. */
  readonly url: string;
  /** Prefix of every key and of the channel. Default 'chorus:cache:'. */
  readonly prefix?: string;
  /** Per-command timeout. Default 250 ms. */
  readonly commandTimeoutMs?: number;
  /** Longest reconnect back-off. Default 2000 ms. */
  readonly maxReconnectDelayMs?: number;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
}

const INVALIDATE = `
local n = 0
for _, tag in ipairs(KEYS) do
  local ks = redis.call('SMEMBERS', tag)
  for i = 1, #ks, 500 do
    redis.call('DEL', unpack(ks, i, math.min(i + 499, #ks)))
  end
  n = n + #ks
  redis.call('DEL', tag)
end
return n`;

/** The L2 cache on Redis. */
export class RedisCacheStore {
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly prefix: string;
  private readonly channel: string;
  private readonly handlers: Array<(up: boolean) => void> = [];
  private readonly subscribers = new Set<(m: Uint8Array) => void>();
  private isUp = false;
  private closed = false;
  private readonly logger: Logger;
  private readonly upGauge;

  constructor(opts: RedisCacheStoreOptions) {
    if (typeof opts.url !== 'string' || !/^rediss?:\/\//.test(opts.url)) throw new TypeError(`url must be a redis:// URL, got ${String(opts.url)}`);
    this.prefix = opts.prefix ?? 'chorus:cache:';
    this.channel = `${this.prefix}invalidate`;
    this.logger = opts.logger ?? silentLogger;
    const maxDelay = opts.maxReconnectDelayMs ?? 2000;
    const base: RedisOptions = {
      lazyConnect: true,
      commandTimeout: opts.commandTimeoutMs ?? 250,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(maxDelay, 50 * 2 ** Math.min(times, 6)),
      reconnectOnError: () => true,
    };
    this.cmd = new Redis(opts.url, { ...base, enableOfflineQueue: false });
    // the subscriber queues its SUBSCRIBE until connected, and resubscribes after a reconnect
    this.sub = new Redis(opts.url, { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true });
    this.upGauge = (opts.metrics ?? noopMetrics).gauge('chorus_redis_up', '1 while the Redis cache connection is ready');
    this.cmd.on('ready', () => this.setUp(true));
    this.cmd.on('close', () => this.setUp(false));
    this.cmd.on('end', () => this.setUp(false));
    // ioredis emits 'error' on every failed connection attempt; without a listener Node would throw
    this.cmd.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'redis cache connection error'));
    this.sub.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'redis cache subscriber error'));
    this.sub.on('messageBuffer', (ch: Buffer, msg: Buffer) => {
      if (ch.toString() !== this.channel) return;
      const bytes = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      for (const s of this.subscribers) s(bytes);
    });
  }

  /**
   * Connects both connections; resolves even when Redis is unreachable
   * (the store then starts `up: false` and keeps reconnecting).
   */
  async connect(): Promise<this> {
    await Promise.all([
      this.cmd.connect().catch((err: Error) => this.logger.warn({ err: err.message }, 'redis cache unreachable at start; will keep trying')),
      this.sub.connect().catch(() => undefined),
    ]);
    await this.sub.subscribe(this.channel).catch(() => undefined);
    return this;
  }

  get up(): boolean {
    return this.isUp && this.cmd.status === 'ready';
  }

  private setUp(up: boolean): void {
    if (this.closed || up === this.isUp) return;
    this.isUp = up;
    this.upGauge.set(up ? 1 : 0);
    if (up) this.logger.info({}, 'redis cache connected');
    else this.logger.warn({}, 'redis cache connection lost');
    for (const h of this.handlers) h(up);
  }

  async get(key: string): Promise<Uint8Array | null> {
    const b = await this.cmd.getBuffer(`${this.prefix}v:${key}`);
    return b ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : null;
  }

  async set(key: string, value: Uint8Array, ttlMs: number, tags: readonly string[]): Promise<void> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be positive, got ${ttlMs}`);
    const k = `${this.prefix}v:${key}`;
    const ttl = Math.ceil(ttlMs);
    const m = this.cmd.multi().set(k, Buffer.from(value.buffer, value.byteOffset, value.byteLength), 'PX', ttl);
    for (const t of tags) {
      const tk = `${this.prefix}t:${t}`;
      m.sadd(tk, k);
      // the tag set lives at least as long as its longest member ("GT": only ever extended)
      m.pexpire(tk, ttl, 'GT');
      m.pexpire(tk, ttl, 'NX');
    }
    const res = await m.exec();
    const failed = res?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  async invalidateTags(tags: readonly string[]): Promise<void> {
    if (!tags.length) return;
    await this.cmd.eval(INVALIDATE, tags.length, ...tags.map((t) => `${this.prefix}t:${t}`));
  }

  async publish(message: Uint8Array): Promise<void> {
    await this.cmd.publish(this.channel, Buffer.from(message.buffer, message.byteOffset, message.byteLength));
  }

  async subscribe(handler: (message: Uint8Array) => void): Promise<Disposable> {
    this.subscribers.add(handler);
    return { dispose: () => void this.subscribers.delete(handler) };
  }

  onHealth(handler: (up: boolean) => void): void {
    this.handlers.push(handler);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cmd.disconnect();
    this.sub.disconnect();
  }
}
