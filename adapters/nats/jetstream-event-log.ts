import { retryJetStream, waitForLeader } from './retry.ts';
import { createHash } from 'node:crypto';
import { nanos, nuid, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import {
  DeliverPolicy, DiscardPolicy, JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager, RetentionPolicy, StorageType,
  type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg, type StoredMsg,
} from '@nats-io/jetstream';
import { BackendError, LogConflictError } from '../../runtime/errors.ts';
import { checkLogical, checkPos, isApiError, wrap } from './jetstream-common.ts';
import type { AppendOptions, AppendRecord, AppendResult, EventLog, LogEntry } from '../../runtime/log/event-log.ts';
import type { Disposable } from '../../runtime/transport/transport.ts';

/** Where one logical stream lives: a JetStream stream name and the logical-name patterns that stream captures. */
export interface StreamPlacement {
  /** JetStream stream name ([A-Za-z0-9_-]). */
  readonly name: string;
  /** Logical-stream patterns (NATS wildcards allowed) the stream captures; the subject prefix is added. The same for every logical stream placed in it. */
  readonly filters: readonly string[];
}

/** Maps a logical stream (`channel.w1.c9`) to its JetStream stream. Must be deterministic and agree on every node. */
export type StreamOf = (logicalStream: string) => StreamPlacement;

const PLAIN_TOKEN = /^[A-Za-z0-9-]+$/;

/**
 * Default layout: one JetStream stream per first `depth` tokens (default 2,
 * i.e. per kind and workspace): `channel.w1.c9` -> `CHORUS_LOG_channel_w1`
 * capturing `channel.w1` and `channel.w1.>`. Names stay readable when the
 * tokens are `[A-Za-z0-9-]`; otherwise a hash of the tokens is appended so two
 * workspaces never share a stream name (`w_1` vs `w.1`).
 */
export function perWorkspace(opts: { namePrefix?: string; depth?: number } = {}): StreamOf {
  const namePrefix = opts.namePrefix ?? 'CHORUS_LOG';
  const depth = opts.depth ?? 2;
  if (!Number.isSafeInteger(depth) || depth < 1) throw new RangeError(`depth must be a positive integer, got ${depth}`);
  return (logical) => {
    const key = logical.split('.').slice(0, depth);
    const joined = key.join('.');
    const plain = key.every((t) => PLAIN_TOKEN.test(t));
    const readable = key.map((t) => t.replace(/[^A-Za-z0-9-]/g, '-')).join('_').slice(0, 64);
    const name = plain ? `${namePrefix}_${key.join('_')}` : `${namePrefix}_${readable}_${createHash('sha256').update(joined).digest('hex').slice(0, 10)}`;
    // a shorter logical name (fewer tokens than depth) gets a stream of its own that captures only itself
    return { name, filters: key.length < depth ? [joined] : [joined, `${joined}.>`] };
  };
}

/** Single-stream layout: every logical stream in one JetStream stream (`CHORUS_LOG` by default). */
export function singleStream(name = 'CHORUS_LOG'): StreamOf {
  return () => ({ name, filters: ['>'] });
}

/** Options of JetStreamEventLog; every field has a default. */
export interface JetStreamEventLogOptions {
  /** Subjects are `<subjectPrefix>.log.<logical stream>`. Default `chorus`. */
  readonly subjectPrefix?: string;
  /** Logical stream -> JetStream stream. Default `perWorkspace()`; `singleStream()` puts everything in one. */
  readonly streamOf?: StreamOf;
  /** Replicas of streams this log creates (3 in a cluster). Default 1. */
  readonly replicas?: number;
  /** JetStream dedup window of created streams. Dedup ids older than this are the actor's job (it keeps its own recent ids). Default 120 000 ms. */
  readonly duplicateWindowMs?: number;
  /** Age limit of records in created streams; 0 keeps them forever. Default 0. */
  readonly maxAgeMs?: number;
  /** Overall budget of one append or read including retries after timeouts or a leader election. Default 10 000 ms. */
  readonly operationTimeoutMs?: number;
  /** Timeout of one JetStream request. Default 2000 ms. */
  readonly requestTimeoutMs?: number;
  /**
   * Timeout of one publish attempt of an append (at most `requestTimeoutMs`).
   * While an R3 stream elects a new leader (4-7 s on nats-server 2.9 after its
   * leader died) a publish is never answered; only the next attempt can reach
   * the new leader, so a long attempt adds up to its whole length to the
   * stall. A retry carries the same msg id, so it is never stored twice.
   * Default 1000 ms.
   */
  readonly publishAttemptMs?: number;
  /** read() fetches up to this many records with direct gets (~0.3 ms each) before switching to an ordered consumer (~3 ms to set up, then ~0.015 ms a record). Default 8. */
  readonly directReadLimit?: number;
  /** How often a tail looks for new JetStream streams under its prefix (streams this instance creates are seen at once). Default 1000 ms. */
  readonly tailDiscoveryMs?: number;
  /** `close()` also closes the NATS connection. Default false: whoever connected closes it. */
  readonly closeConnection?: boolean;
  /** Told about tail failures (the tail retries). Default: ignore. */
  readonly onTailError?: (err: unknown) => void;
}

type Resolved = Required<Omit<JetStreamEventLogOptions, 'onTailError'>> & Pick<JetStreamEventLogOptions, 'onTailError'>;

function resolveOptions(o: JetStreamEventLogOptions): Readonly<Resolved> {
  const r: Resolved = {
    subjectPrefix: o.subjectPrefix ?? 'chorus',
    streamOf: o.streamOf ?? perWorkspace(),
    replicas: o.replicas ?? 1,
    duplicateWindowMs: o.duplicateWindowMs ?? 120_000,
    maxAgeMs: o.maxAgeMs ?? 0,
    operationTimeoutMs: o.operationTimeoutMs ?? 10_000,
    requestTimeoutMs: o.requestTimeoutMs ?? 2000,
    publishAttemptMs: o.publishAttemptMs ?? 1000,
    directReadLimit: o.directReadLimit ?? 8,
    tailDiscoveryMs: o.tailDiscoveryMs ?? 1000,
    closeConnection: o.closeConnection ?? false,
    onTailError: o.onTailError,
  };
  const problems: string[] = [];
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(r.subjectPrefix)) problems.push(`subjectPrefix must be literal subject tokens, got "${r.subjectPrefix}"`);
  if (![1, 3, 5].includes(r.replicas)) problems.push(`replicas must be 1, 3 or 5, got ${r.replicas}`);
  for (const k of ['duplicateWindowMs', 'operationTimeoutMs', 'requestTimeoutMs', 'publishAttemptMs', 'directReadLimit', 'tailDiscoveryMs'] as const) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 1) problems.push(`${k} must be a positive integer, got ${String(r[k])}`);
  }
  if (!Number.isSafeInteger(r.maxAgeMs) || r.maxAgeMs < 0) problems.push(`maxAgeMs must be a non-negative integer, got ${r.maxAgeMs}`);
  if (typeof r.streamOf !== 'function') problems.push('streamOf must be a function');
  if (problems.length) throw new RangeError(`JetStreamEventLog options: ${problems.join('; ')}`);
  return Object.freeze(r);
}

const MSG_ID = 'Nats-Msg-Id';

/**
 * JetStream dedups by Nats-Msg-Id across a whole JetStream stream (a
 * workspace), but the port scopes dedup ids to one logical stream, so the id
 * on the wire is `<logical> <encoded dedup id>` (a logical name has no space).
 * Appends without a dedup id still carry a generated `~<nuid>`, so that a
 * retry after a lost ack cannot store the record twice.
 */
function wireMsgId(logical: string, dedupId: string | undefined): string {
  return dedupId === undefined ? `~${nuid.next()}` : `${logical} ${encodeURIComponent(dedupId)}`;
}

function dedupIdOf(h: MsgHdrs | undefined): string | undefined {
  const id = h?.get(MSG_ID);
  if (!id) return undefined;
  const sp = id.indexOf(' ');
  return sp < 0 ? undefined : decodeURIComponent(id.slice(sp + 1));
}

/** Failures where another attempt may succeed: timeouts, no responders (leader election, reconnect), 503s. */
function isTransient(err: unknown): boolean {
  const name = (err as Error | null)?.name;
  if (name === 'TimeoutError' || name === 'NoResponders' || name === 'RequestError' || name === 'JetStreamNotEnabled') return true;
  return err instanceof JetStreamApiError && err.status === 503;
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * EventLog port on NATS JetStream (the cluster profile). See
 * adapters/nats/README-log.md for the stream layout. Positions are JetStream
 * stream sequences: strictly increasing per logical stream, not dense.
 *
 * - append: one publish with `Nats-Msg-Id` (dedup) and
 *   `Nats-Expected-Last-Subject-Sequence` (fencing; 0 = no message yet). The
 *   server checks dedup before fencing, like the port. Retries transient
 *   failures within `operationTimeoutMs` with the same msg id, so a lost ack never
 *   stores twice; a retry whose first attempt was stored returns that
 *   position (`duplicate: true` when the caller gave a dedup id).
 * - read: the stream leader's last position for the subject, then direct gets
 *   (`next_by_subj`, any replica) for small reads and an ordered consumer for
 *   the rest; a replica that lags falls back to the leader.
 * - tail: one ordered consumer per JetStream stream under the prefix,
 *   rediscovered every `tailDiscoveryMs`; the handler is never called
 *   concurrently, even across streams.
 */
export class JetStreamEventLog implements EventLog {
  private readonly opts: Readonly<Resolved>;
  private readonly js: JetStreamClient;
  private jsmP: Promise<JetStreamManager> | undefined;
  private readonly ensured = new Map<string, Promise<void>>();
  /** Streams known to exist: appends to them skip the await on `ensured`. */
  private readonly ready = new Set<string>();
  /** Streams seen to exist with a leader: MSG.GET is safe on them (see `readable`). */
  private readonly readableStreams = new Set<string>();
  private readonly placements = new Map<string, StreamPlacement>();
  private readonly tails = new Set<JsTail>();
  private closed = false;

  constructor(private readonly nc: NatsConnection, options: JetStreamEventLogOptions = {}) {
    this.opts = resolveOptions(options);
    this.js = jetstream(nc, { timeout: this.opts.requestTimeoutMs });
  }

  private jsm(): Promise<JetStreamManager> {
    this.jsmP ??= jetstreamManager(this.nc, { timeout: this.opts.requestTimeoutMs }).catch((err) => {
      this.jsmP = undefined;
      throw err;
    });
    return this.jsmP;
  }

  /** The subject a logical stream is stored under. */
  subjectOf(logical: string): string {
    return `${this.opts.subjectPrefix}.log.${logical}`;
  }

  private placement(logical: string): StreamPlacement {
    let p = this.placements.get(logical);
    if (p) return p;
    p = this.opts.streamOf(logical);
    if (!/^[A-Za-z0-9_-]+$/.test(p.name)) throw new TypeError(`streamOf("${logical}") gave an invalid JetStream stream name "${p.name}"`);
    if (this.placements.size >= 10_000) this.placements.clear(); // a bounded memo of the hot streams, not a directory
    this.placements.set(logical, p);
    return p;
  }

  /** Creates the JetStream stream once per process (an existing stream is used as it is configured). */
  private ensureStream(p: StreamPlacement): Promise<void> {
    let e = this.ensured.get(p.name);
    if (!e) {
      e = this.createStream(p);
      this.ensured.set(p.name, e);
      e.then(() => {
        this.ready.add(p.name);
        for (const t of this.tails) t.discoverSoon();
      }, () => this.ensured.delete(p.name));
    }
    return e;
  }

  private async createStream(p: StreamPlacement): Promise<void> {
    await retryJetStream(`stream ${p.name}`, () => this.createStreamOnce(p));
    await waitForLeader(await this.jsm(), p.name);
  }

  private async createStreamOnce(p: StreamPlacement): Promise<void> {
    const jsm = await this.jsm();
    try {
      await jsm.streams.info(p.name);
      return;
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
    }
    try {
      await jsm.streams.add({
        name: p.name,
        subjects: p.filters.map((f) => `${this.opts.subjectPrefix}.log.${f}`),
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        num_replicas: this.opts.replicas,
        allow_direct: true,
        duplicate_window: nanos(this.opts.duplicateWindowMs),
        max_age: nanos(this.opts.maxAgeMs),
      });
    } catch (err) {
      // another node created it between our info and add
      if (!isApiError(err, 10058)) throw err;
    }
  }

  append(stream: string, record: AppendRecord, opts: AppendOptions = {}): Promise<AppendResult> {
    checkLogical(stream);
    if (!(record?.data instanceof Uint8Array)) throw new TypeError('record.data must be a Uint8Array');
    if (record.dedupId !== undefined && typeof record.dedupId !== 'string') throw new TypeError('record.dedupId must be a string');
    const expected = opts.expectedLastPos;
    if (expected !== undefined) checkPos('expectedLastPos', expected);
    if (this.closed) return Promise.reject(new BackendError('jetstream', 'the event log is closed'));
    const placement = this.placement(stream);
    // copy now: the caller may reuse its buffer while we wait for the stream
    return this.publish(stream, placement, record.data.slice(), record.dedupId, expected);
  }

  private async publish(stream: string, placement: StreamPlacement, data: Uint8Array, dedupId: string | undefined, expected: number | undefined): Promise<AppendResult> {
    const subject = this.subjectOf(stream);
    const msgID = wireMsgId(stream, dedupId);
    const deadline = Date.now() + this.opts.operationTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        if (!this.ready.has(placement.name)) await this.ensureStream(placement);
        const ack = await this.js.publish(subject, data, {
          msgID,
          timeout: Math.max(100, Math.min(this.opts.requestTimeoutMs, this.opts.publishAttemptMs, deadline - Date.now())),
          ...(expected !== undefined ? { expect: { lastSubjectSequence: expected } } : {}),
        });
        // a duplicate of our own generated id is our first attempt's ack, not someone else's record
        return { pos: ack.seq, duplicate: dedupId !== undefined && ack.duplicate };
      } catch (err) {
        if (isApiError(err, JetStreamApiCodes.StreamWrongLastSequence) || isApiError(err, JetStreamApiCodes.StreamWrongLastSequenceUnknown)) {
          const m = /wrong last sequence: (\d+)/.exec((err as Error).message);
          throw new LogConflictError(stream, expected ?? 0, m ? Number(m[1]) : undefined);
        }
        if (isTransient(err) && Date.now() + 50 < deadline && !this.closed) {
          // "No responders" is what an R3 stream answers while it elects a new
          // leader (seconds on 2.9): keep publishing. Checking the stream here
          // would cost JetStream API calls that time out during the election.
          await delay(Math.min(500, 25 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2));
          continue;
        }
        if ((err as Error)?.name === 'JetStreamNotEnabled' || (err as Error)?.name === 'NoResponders') {
          // still nobody after the whole budget: the stream may be gone; the next append checks (and recreates) it
          this.ensured.delete(placement.name);
          this.ready.delete(placement.name);
        }
        throw wrap(`append to ${stream}`, err);
      }
    }
  }

  /**
   * Whether stream `name` exists, waiting for its leader the first time:
   * nats-server 2.9.10 crashes (nil dereference in jsMsgGetRequest) when a
   * STREAM.MSG.GET reaches a stream another node is creating (seen in the
   * two-node fan-out bench: one node reads a workspace's new stream while
   * the other creates it); STREAM.INFO does not. Once per stream and process.
   */
  private async readable(name: string): Promise<boolean> {
    if (this.ready.has(name) || this.readableStreams.has(name)) return true;
    try {
      await waitForLeader(await this.jsm(), name);
    } catch (err) {
      if (isApiError(err, JetStreamApiCodes.StreamNotFound)) return false;
      throw err;
    }
    if (this.readableStreams.size >= 10_000) this.readableStreams.clear(); // a bounded memo, like `placements`
    this.readableStreams.add(name);
    return true;
  }

  /** The stream leader's view (MSG.GET, not a direct get a lagging replica could answer): what fencing compares against. */
  private async leaderLastPos(name: string, subject: string): Promise<number> {
    if (!(await this.readable(name))) return 0;
    const jsm = await this.jsm();
    try {
      const m = await jsm.streams.getMessage(name, { last_by_subj: subject });
      return m ? m.seq : 0;
    } catch (err) {
      if (isApiError(err, JetStreamApiCodes.StreamNotFound)) return 0;
      throw err;
    }
  }

  async lastPos(stream: string): Promise<number> {
    checkLogical(stream);
    try {
      return await this.leaderLastPos(this.placement(stream).name, this.subjectOf(stream));
    } catch (err) {
      throw wrap(`lastPos ${stream}`, err);
    }
  }

  async read(stream: string, afterPos: number, limit = 1000): Promise<LogEntry[]> {
    checkLogical(stream);
    checkPos('afterPos', afterPos);
    checkPos('limit', limit);
    if (limit === 0) return [];
    const { name } = this.placement(stream);
    const subject = this.subjectOf(stream);
    const deadline = Date.now() + this.opts.operationTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.readOnce(stream, name, subject, afterPos, limit);
      } catch (err) {
        if (isTransient(err) && Date.now() + 50 < deadline && !this.closed) {
          await delay(Math.min(1000, 25 * 2 ** Math.min(attempt, 6)));
          continue;
        }
        throw wrap(`read ${stream}`, err);
      }
    }
  }

  private async readOnce(stream: string, name: string, subject: string, afterPos: number, limit: number): Promise<LogEntry[]> {
    const last = await this.leaderLastPos(name, subject);
    if (last <= afterPos) return [];
    const jsm = await this.jsm();
    const out: LogEntry[] = [];
    let seq = afterPos;
    const directOne = async (): Promise<boolean> => {
      const q = { next_by_subj: subject, seq: seq + 1 };
      // a lagging replica answers "not found" for a record the leader has: ask the leader then
      const m = (await jsm.direct.getMessage(name, q)) ?? (await jsm.streams.getMessage(name, q));
      if (!m) return false; // removed by limits since we looked
      out.push(storedToEntry(stream, m));
      seq = m.seq;
      return true;
    };
    // small reads (an actor replaying the few records after its snapshot): a direct get per record
    while (out.length < limit && seq < last && out.length < this.opts.directReadLimit) if (!(await directOne())) return out;
    if (out.length < limit && seq < last) {
      try {
        await this.readWithConsumer(stream, name, subject, seq, last, limit - out.length, out);
      } catch (err) {
        // consumers need the meta leader and a live placement; direct gets only need one replica
        if (!isTransient(err)) throw err;
      }
      seq = out.length ? out[out.length - 1]!.pos : afterPos;
      while (out.length < limit && seq < last) if (!(await directOne())) return out;
    }
    return out;
  }

  /** Larger reads: one ordered consumer from `afterSeq + 1`, stopping at `last` or `want` records. */
  private async readWithConsumer(stream: string, name: string, subject: string, afterSeq: number, last: number, want: number, out: LogEntry[]): Promise<void> {
    const consumer = await this.js.consumers.get(name, { filter_subjects: subject, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 });
    let got = 0;
    try {
      const iter = await consumer.fetch({ max_messages: want, expires: Math.max(1000, this.opts.requestTimeoutMs) });
      for await (const m of iter) {
        out.push(jsMsgToEntry(stream, m));
        if (++got >= want || m.seq >= last) {
          iter.stop();
          break;
        }
      }
    } finally {
      // ordered consumers linger for 5 minutes on the server unless deleted
      consumer.delete().catch(() => undefined);
    }
  }

  async tail(streamPrefix: string, afterPos: number, handler: (e: LogEntry) => Promise<void> | void): Promise<Disposable> {
    if (typeof streamPrefix !== 'string' || /[\s*>]/.test(streamPrefix)) throw new TypeError(`streamPrefix must be a string without spaces, '*' or '>', got ${String(streamPrefix)}`);
    checkPos('afterPos', afterPos);
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    if (this.closed) throw new BackendError('jetstream', 'the event log is closed');
    // the NATS filter covers the prefix's complete tokens; the rest of the prefix is matched here
    const dot = streamPrefix.lastIndexOf('.');
    const filter = dot > 0 ? `${this.opts.subjectPrefix}.log.${streamPrefix.slice(0, dot)}.>` : `${this.opts.subjectPrefix}.log.>`;
    const ctx: TailContext = { js: this.js, jsm: () => this.jsm(), opts: this.opts, logicalOf: (subject) => subject.slice(this.opts.subjectPrefix.length + '.log.'.length) };
    const t = new JsTail(ctx, streamPrefix, filter, afterPos, handler, () => this.tails.delete(t));
    this.tails.add(t);
    try {
      await t.discover();
    } catch (err) {
      await t.stop();
      throw wrap(`tail ${streamPrefix}`, err);
    }
    t.start();
    return { dispose: () => t.stop() };
  }

  /** Stops tails; closes the connection when `closeConnection` is set. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.tails].map((t) => t.stop()));
    if (this.opts.closeConnection && !this.nc.isClosed()) await this.nc.close();
  }
}

function storedToEntry(stream: string, m: StoredMsg): LogEntry {
  const dedupId = dedupIdOf(m.header);
  return { stream, pos: m.seq, data: new Uint8Array(m.data), ts: m.time.getTime(), ...(dedupId !== undefined ? { dedupId } : {}) };
}

function jsMsgToEntry(stream: string, m: JsMsg): LogEntry {
  const dedupId = dedupIdOf(m.headers);
  return { stream, pos: m.seq, data: new Uint8Array(m.data), ts: Math.floor(m.info.timestampNanos / 1e6), ...(dedupId !== undefined ? { dedupId } : {}) };
}

/** What a tail needs from its log. */
interface TailContext {
  readonly js: JetStreamClient;
  jsm(): Promise<JetStreamManager>;
  readonly opts: Readonly<Resolved>;
  /** `<prefix>.log.channel.w1.c9` -> `channel.w1.c9` */
  logicalOf(subject: string): string;
}

/** One tail: an ordered consumer per JetStream stream whose subjects overlap the filter, handler calls serialised across them. */
class JsTail {
  private readonly consumers = new Map<string, { iter?: ConsumerMessages; loop: Promise<void> }>();
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private handling = false;
  private discovering: Promise<void> | undefined;

  constructor(
    private readonly ctx: TailContext,
    private readonly prefix: string,
    private readonly filter: string,
    private readonly afterPos: number,
    private readonly handler: (e: LogEntry) => Promise<void> | void,
    private readonly onStop: () => void,
  ) {}

  start(): void {
    const every = this.ctx.opts.tailDiscoveryMs;
    this.timer = setInterval(() => this.discoverSoon(), every);
    this.timer.unref();
  }

  discoverSoon(): void {
    if (this.stopped || this.discovering) return;
    this.discovering = this.discover()
      .catch((err) => this.ctx.opts.onTailError?.(err))
      .finally(() => { this.discovering = undefined; });
  }

  /** Lists the JetStream streams whose subjects overlap the filter and starts a consumer on each new one. */
  async discover(): Promise<void> {
    const jsm = await this.ctx.jsm();
    const names: string[] = [];
    for await (const n of jsm.streams.names(this.filter)) names.push(n);
    for (const name of names) if (!this.stopped && !this.consumers.has(name)) this.follow(name);
  }

  private follow(name: string): void {
    const slot: { iter?: ConsumerMessages; loop: Promise<void> } = { loop: Promise.resolve() };
    this.consumers.set(name, slot);
    slot.loop = this.consume(name, slot).finally(() => {
      // ended on its own (stream deleted, error): let discovery pick it up again
      if (this.consumers.get(name) === slot) this.consumers.delete(name);
    });
  }

  private async consume(name: string, slot: { iter?: ConsumerMessages }): Promise<void> {
    const { js, opts, logicalOf } = this.ctx;
    let next = this.afterPos + 1;
    let failures = 0;
    while (!this.stopped) {
      try {
        const consumer = await js.consumers.get(name, { filter_subjects: this.filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: next });
        const iter = await consumer.consume({ max_messages: 256 });
        slot.iter = iter;
        if (this.stopped) iter.stop();
        for await (const m of iter) {
          if (this.stopped) break;
          const logical = logicalOf(m.subject);
          if (logical.startsWith(this.prefix)) await this.deliver(jsMsgToEntry(logical, m));
          next = m.seq + 1;
          failures = 0;
        }
        consumer.delete().catch(() => undefined);
        if (this.stopped) return;
      } catch (err) {
        if (this.stopped) return;
        if (isApiError(err, JetStreamApiCodes.StreamNotFound)) return;
        opts.onTailError?.(err);
      }
      await delay(Math.min(5000, 50 * 2 ** Math.min(++failures, 6)));
    }
  }

  /** Calls the handler for one record, after the previous call of any of this tail's consumers; retries it on failure (at least once). */
  private deliver(e: LogEntry): Promise<void> {
    const run = async () => {
      let failures = 0;
      while (!this.stopped) {
        this.handling = true;
        try {
          await this.handler(e);
          return;
        } catch (err) {
          this.ctx.opts.onTailError?.(err);
        } finally {
          this.handling = false;
        }
        await delay(Math.min(5000, 50 * 2 ** Math.min(++failures, 6)));
      }
    };
    this.chain = this.chain.then(run, run);
    return this.chain;
  }

  /**
   * Stops every consumer: no handler call starts after this. Resolves when
   * their loops have ended, or at once when called from inside the handler
   * (waiting there would deadlock).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    for (const c of this.consumers.values()) c.iter?.stop();
    const loops = Promise.allSettled([...this.consumers.values()].map((c) => c.loop)).then(() => this.onStop());
    if (!this.handling) await loops;
  }
}
