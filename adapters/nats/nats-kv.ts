import { retryJetStream, waitForLeader } from './retry.ts';
import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError, type Consumer, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { BackendError, BadMessageError, ChorusError, KvConflictError } from '../../runtime/errors.ts';
import type { KvBucket, KvEntry, KvEvent, KvStore } from '../../runtime/kv/kv.ts';
import { silentLogger, type Logger } from '../../runtime/metrics.ts';
import type { Disposable } from '../../runtime/transport/transport.ts';
import { connectNats } from './connect.ts';
import type { NatsOptions } from './options.ts';

/** Options of a NatsKv built on an existing connection. */
export interface NatsKvOptions {
  /** Replicas of buckets this store creates (an existing bucket keeps its own). Default 1; 3 in a cluster. */
  replicas?: number;
  /** Timeout of JetStream API calls and acknowledged writes, in ms. Default 5000. */
  apiTimeoutMs?: number;
  /**
   * Serve `get` from any replica (JetStream direct get). Faster, but a follower
   * may lag the leader, so a read right after an acknowledged write can be
   * stale. Default false: reads go to the stream leader, and the port's
   * read-your-writes holds.
   */
  allowDirect?: boolean;
  /**
   * Idle heartbeat of watch consumers, in ms. A watcher that hears nothing
   * from its consumer for 3 heartbeats reopens it, so this sets how fast a
   * watch recovers from a dead server. Default 1000.
   */
  watchHeartbeatMs?: number;
  /** Close the connection on `close()`. Default false: a shared connection stays open. */
  ownsConnection?: boolean;
  /** Where handler failures and watch recoveries go. Default: discarded. */
  logger?: Logger;
}

/** Bucket names NATS accepts. */
const BUCKET = /^[-\w]+$/;
/** One key token (NATS also allows '/'). */
const KEY_TOKEN = /^[-/=\w]+$/;
/** Header the KV client writes on deletes and purges. */
const KV_OPERATION = 'KV-Operation';

/**
 * The KvStore port over JetStream KV: one stream `KV_<bucket>` per bucket,
 * revisions are the stream's sequence numbers (strictly increasing per
 * bucket). `create` and `update` are compare-and-set on the key's last
 * sequence; a lost race is KvConflictError. A bucket's `ttlMs` is the
 * stream's max age: an entry disappears that long after its last write, and
 * on nats-server 2.9 no watcher hears about it.
 */
export class NatsKv implements KvStore {
  /** Connects with `opts` and returns a store that owns (and on close, closes) its connection; buckets get `opts.replicas`. */
  static async connect(opts: NatsOptions, deps: { logger?: Logger } = {}): Promise<NatsKv> {
    const nc = await connectNats(opts, deps);
    return new NatsKv(nc, { replicas: opts.replicas, apiTimeoutMs: opts.apiTimeoutMs, ownsConnection: true, ...(deps.logger ? { logger: deps.logger } : {}) });
  }

  private readonly js: JetStreamClient;
  private readonly kvm: Kvm;
  private readonly replicas: number;
  private readonly allowDirect: boolean;
  private readonly owns: boolean;
  private readonly logger: Logger;
  private readonly heartbeatMs: number;
  private readonly watchers = new Set<KvWatcher>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private connected = true;
  private closed = false;

  constructor(private readonly nc: NatsConnection, opts: NatsKvOptions = {}) {
    this.js = jetstream(nc, { timeout: opts.apiTimeoutMs ?? 5000 });
    this.kvm = new Kvm(this.js);
    this.replicas = opts.replicas ?? 1;
    this.allowDirect = opts.allowDirect ?? false;
    this.owns = opts.ownsConnection ?? false;
    this.logger = opts.logger ?? silentLogger;
    this.heartbeatMs = Math.max(opts.watchHeartbeatMs ?? 1000, 500);
  }

  /**
   * Opens the bucket, creating it when missing with `ttlMs` (default 0: no
   * expiry), `history` values kept per key (default 1, at most 64) and this
   * store's replicas. An existing bucket keeps its configuration.
   */
  async bucket(name: string, opts: { ttlMs?: number; history?: number } = {}): Promise<KvBucket> {
    if (this.closed) throw new BackendError('nats', 'kv store closed');
    if (!BUCKET.test(name)) throw new BadMessageError('bucket name must match [-_A-Za-z0-9]+', { bucket: name });
    const ttlMs = opts.ttlMs ?? 0;
    const history = opts.history ?? 1;
    if (!Number.isInteger(ttlMs) || ttlMs < 0) throw new RangeError(`ttlMs must be an integer >= 0 (got ${ttlMs})`);
    if (!Number.isInteger(history) || history < 1 || history > 64) throw new RangeError(`history must be an integer from 1 to 64 (got ${history})`);
    let kv: KV;
    try {
      kv = await retryJetStream(`bucket ${name}`, () => this.kvm.create(name, { replicas: this.replicas, history, ttl: ttlMs, allow_direct: this.allowDirect }));
      await waitForLeader(await jetstreamManager(this.nc), `KV_${name}`);
    } catch (err) {
      throw wrap(err, `open bucket ${name}`);
    }
    this.superviseWatchers();
    return new NatsKvBucket(name, kv, { js: this.js, isClosed: () => this.closed, stream: `KV_${name}`, logger: this.logger, heartbeatMs: this.heartbeatMs, watchers: this.watchers });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const w of [...this.watchers]) w.stop();
    this.watchers.clear();
    if (this.owns) {
      try {
        await this.nc.close();
      } catch (err) {
        throw wrap(err, 'close');
      }
    }
  }

  /** One timer checks every watcher's liveness; a reconnect makes them all reopen (their consumer may have died with the server). */
  private superviseWatchers(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.connected) return;
      const now = Date.now();
      for (const w of this.watchers) w.check(now, false);
    }, this.heartbeatMs);
    this.timer.unref();
    void (async () => {
      try {
        for await (const s of this.nc.status()) {
          if (s.type === 'disconnect') this.connected = false;
          else if (s.type === 'reconnect') {
            this.connected = true;
            const now = Date.now();
            for (const w of this.watchers) w.check(now, true);
          }
        }
      } catch {
        // ends with the connection
      }
    })();
  }
}

class NatsKvBucket implements KvBucket {
  constructor(
    readonly name: string,
    private readonly kv: KV,
    private readonly ctx: WatchContext & { readonly stream: string },
  ) {}

  async get(key: string): Promise<KvEntry | null> {
    checkKey(key);
    try {
      const e = await this.kv.get(key);
      // a delete leaves a marker entry; TTL expiry leaves nothing
      if (e === null || e.operation !== 'PUT') return null;
      return { key, value: e.value, revision: e.revision };
    } catch (err) {
      throw wrap(err, `get ${this.name}/${key}`);
    }
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    try {
      return await this.kv.put(key, value);
    } catch (err) {
      throw wrap(err, `put ${this.name}/${key}`);
    }
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    try {
      // the client retries over a delete marker itself, so only a live value conflicts
      return await this.kv.create(key, value);
    } catch (err) {
      throw wrap(err, `create ${this.name}/${key}`, key, 'already exists');
    }
  }

  async update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    checkKey(key);
    // revision 0 would mean "create" to JetStream; no entry has it, so it conflicts, as in memory
    if (!Number.isInteger(expectedRevision) || expectedRevision <= 0) throw new KvConflictError(key, `expected revision ${expectedRevision}, found another`);
    try {
      return await this.kv.update(key, value, expectedRevision);
    } catch (err) {
      throw wrap(err, `update ${this.name}/${key}`, key, `expected revision ${expectedRevision}, found another`);
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    try {
      await this.kv.delete(key);
    } catch (err) {
      throw wrap(err, `delete ${this.name}/${key}`);
    }
  }

  async keys(): Promise<string[]> {
    try {
      const out: string[] = [];
      for await (const k of await this.kv.keys()) out.push(k);
      return out;
    } catch (err) {
      throw wrap(err, `keys ${this.name}`);
    }
  }

  /**
   * Delivers the last value of every matching key (deleted keys are skipped,
   * as they do not exist), then every change in order. Events arrive
   * asynchronously; a throwing handler is logged and the watch goes on.
   * See KvWatcher for how it survives the loss of a server.
   */
  async watch(filter: string, handler: (e: KvEvent) => void): Promise<Disposable> {
    checkKey(filter, true);
    if (this.ctx.isClosed()) throw new BackendError('nats', 'kv store closed');
    const w = new KvWatcher(this.ctx, this.name, filter, handler);
    try {
      await w.start();
    } catch (err) {
      w.stop();
      throw wrap(err, `watch ${this.name}/${filter}`);
    }
    return { dispose: () => w.stop() };
  }
}

/** What a bucket's watchers share with their store. */
interface WatchContext {
  readonly js: JetStreamClient;
  isClosed(): boolean;
  readonly logger: Logger;
  readonly heartbeatMs: number;
  readonly watchers: Set<KvWatcher>;
}

/**
 * One watch: an ordered pull consumer on `$KV.<bucket>.<filter>` that starts
 * with the last value per key and then follows every write.
 *
 * Why not the client's `kv.watch()`: its ordered push consumer sends idle
 * heartbeats every 30 s and recreates itself only after two are missed, and
 * when the server holding the (R1, in-memory) consumer is killed, the
 * client's recovery asks that dead consumer for its info and waits forever.
 * Here a consumer that shows no sign of life (no message, heartbeat or
 * pull status) for three heartbeats, or a reconnect of the client, makes the
 * watcher open a fresh consumer from the revision after the last one it
 * delivered. Nothing is repeated or reordered, and every key ends at its
 * latest value; a key written several times during the gap may show only its
 * latest value (the bucket keeps `history` values per key). Recovery takes
 * about 3 x `heartbeatMs` after a server dies, plus any leader election.
 */
class KvWatcher {
  private readonly subject: string;
  private readonly prefixLen: number;
  private consumer: Consumer | undefined;
  private messages: ConsumerMessages | undefined;
  /** Delete markers at or below this revision were there before the watch: deleted keys, not changes. */
  private before = 0;
  /** Last revision delivered to the handler. */
  private last = 0;
  private lastSign = Date.now();
  private restarting = false;
  private stopped = false;

  constructor(
    private readonly ctx: WatchContext & { readonly stream: string },
    private readonly bucket: string,
    private readonly filter: string,
    private readonly handler: (e: KvEvent) => void,
  ) {
    this.subject = `$KV.${bucket}.${filter}`;
    this.prefixLen = `$KV.${bucket}.`.length;
  }

  async start(): Promise<void> {
    const jsm = await this.ctx.js.jetstreamManager(false);
    this.before = (await jsm.streams.info(this.ctx.stream)).state.last_seq;
    await this.open();
    this.ctx.watchers.add(this);
  }

  /** Called by the store's timer every heartbeat, and on reconnect with `force`. */
  check(now: number, force: boolean): void {
    if (this.stopped || this.restarting) return;
    if (force || now - this.lastSign > 3 * this.ctx.heartbeatMs) void this.restart();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.ctx.watchers.delete(this);
    this.close();
  }

  private async open(): Promise<void> {
    const c = await this.ctx.js.consumers.get(this.ctx.stream, this.last > 0
      ? { filter_subjects: this.subject, opt_start_seq: this.last + 1 }
      : { filter_subjects: this.subject, deliver_policy: DeliverPolicy.LastPerSubject });
    if (this.stopped) {
      void c.delete().catch(() => {});
      return;
    }
    const msgs = await c.consume({ max_messages: 256, expires: 2 * this.ctx.heartbeatMs, callback: (m) => this.onMessage(m) });
    if (this.stopped) {
      msgs.stop();
      void c.delete().catch(() => {});
      return;
    }
    this.consumer = c;
    this.messages = msgs;
    this.lastSign = Date.now();
    void this.follow(msgs);
  }

  private async follow(msgs: ConsumerMessages): Promise<void> {
    try {
      for await (const n of msgs.status()) {
        switch (n.type) {
          case 'heartbeat': case 'debug': case 'discard': case 'flow_control': case 'ordered_consumer_recreated':
            this.lastSign = Date.now();
            break;
          default:
            break;
        }
      }
    } catch {
      // the status iterator ends with its consumer
    }
  }

  private onMessage(m: JsMsg): void {
    if (this.stopped) return;
    this.lastSign = Date.now();
    const revision = m.seq;
    if (revision <= this.last) return;
    this.last = revision;
    const op = m.headers?.get(KV_OPERATION);
    const del = op === 'DEL' || op === 'PURGE';
    if (del && revision <= this.before) return;
    const key = m.subject.substring(this.prefixLen);
    // a copy: m.data is a view into the connection's read buffer, and handlers keep values (placement tables)
    const ev: KvEvent = del ? { op: 'del', key, value: undefined, revision } : { op: 'put', key, value: m.data.slice(), revision };
    try {
      this.handler(ev);
    } catch (err) {
      this.ctx.logger.error({ err, bucket: this.bucket, key }, 'kv watch handler threw');
    }
  }

  private async restart(): Promise<void> {
    this.restarting = true;
    try {
      this.ctx.logger.warn({ bucket: this.bucket, filter: this.filter, from: this.last + 1 }, 'kv watch consumer silent or client reconnected: reopening');
      for (let attempt = 0; !this.stopped; attempt++) {
        this.close();
        try {
          await this.open();
          return;
        } catch (err) {
          this.ctx.logger.debug({ err, bucket: this.bucket, attempt }, 'kv watch reopen failed');
          await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** attempt, 1000)).unref());
        }
      }
    } finally {
      this.restarting = false;
    }
  }

  private close(): void {
    this.messages?.stop();
    this.messages = undefined;
    // the ordered consumer is an in-memory R1 ephemeral: deleting it is a courtesy, the server drops it when idle anyway
    void this.consumer?.delete().catch(() => {});
    this.consumer = undefined;
  }
}

/** Keys are dot-separated tokens of [-/=_A-Za-z0-9]; a watch filter may also use `*` tokens and a last `>`. */
function checkKey(key: string, filter = false): void {
  const tokens = typeof key === 'string' && key.length > 0 ? key.split('.') : [''];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (KEY_TOKEN.test(t)) continue;
    if (filter && (t === '*' || (t === '>' && i === tokens.length - 1))) continue;
    throw new BadMessageError(filter ? 'invalid kv watch filter' : 'invalid kv key', { key });
  }
}

const CONFLICT_CODES: ReadonlySet<number> = new Set([JetStreamApiCodes.StreamWrongLastSequence, JetStreamApiCodes.StreamWrongLastSequenceUnknown]);

function wrap(err: unknown, what: string, key?: string, conflict?: string): ChorusError {
  if (err instanceof ChorusError) return err;
  if (key !== undefined && conflict !== undefined && err instanceof JetStreamApiError && CONFLICT_CODES.has(err.code)) {
    return new KvConflictError(key, conflict);
  }
  return new BackendError('nats', `kv ${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
