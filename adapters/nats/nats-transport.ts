import { errors as natsErrors, headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { AskTimeoutError, BackendError, BadMessageError, NodeUnavailableError } from '../../runtime/errors.ts';
import { silentLogger, type Logger } from '../../runtime/metrics.ts';
import { checkSubject, type Disposable, type InboundHandler, type Transport } from '../../runtime/transport/transport.ts';
import { connectNats } from './connect.ts';
import type { NatsOptions } from './options.ts';

/** Header of the probe `listen` sends before it subscribes; listeners answer it and never pass it on. */
const PROBE_HEADER = 'Chorus-Probe';
const EMPTY = new Uint8Array(0);

/** Options of a NatsTransport built on an existing connection. */
export interface NatsTransportOptions {
  /** Subject prefix; node inboxes are `<prefix>.node.<nodeId>`. Default `'chorus'`. */
  prefix?: string;
  /** Name used in errors about this transport itself (e.g. after close). Default `'chorus'`. */
  name?: string;
  /** Close the connection on `close()`. Default false: a shared connection stays open. */
  ownsConnection?: boolean;
  /** How long `listen` waits for an answer to its probe (no answer: it listens anyway). Default 1000 ms. */
  probeTimeoutMs?: number;
  /** Where handler failures go. Default: discarded. */
  logger?: Logger;
}

/**
 * The Transport port over NATS core. A node listens on `<prefix>.node.<nodeId>`
 * (a plain subscription, no queue group: exactly one listener per node id);
 * `send` is a publish, `request` a NATS request whose "no responders" status
 * (503) becomes NodeUnavailableError at once instead of waiting for the
 * timeout. Payloads go through as the bytes NATS hands over (a view into the
 * read buffer, not a copy). Handlers never throw into the NATS client: a
 * throw is caught and logged.
 *
 * Subjects are checked at the call site (BadMessageError): no empty tokens,
 * no whitespace, wildcards only in `subscribe` (`*` as a whole token, `>`
 * only last). A closed transport drops `send`/`publish` (tell is
 * at-most-once), rejects `request`/`listen` and throws on `subscribe`, all
 * with NodeUnavailableError.
 */
export class NatsTransport implements Transport {
  /** Connects with `opts` and returns a transport that owns (and on close, closes) its connection. */
  static async connect(opts: NatsOptions, deps: { logger?: Logger } = {}): Promise<NatsTransport> {
    const nc = await connectNats(opts, deps);
    return new NatsTransport(nc, { prefix: opts.prefix, name: opts.name, ownsConnection: true, ...(deps.logger ? { logger: deps.logger } : {}) });
  }

  readonly name: string;
  private readonly nodePrefix: string;
  private readonly owns: boolean;
  private readonly probeTimeoutMs: number;
  private readonly logger: Logger;
  /** nodeId -> inbox subject, so the hot path builds no strings (bounded by the number of nodes). */
  private readonly inboxes = new Map<string, string>();
  private readonly listening = new Set<string>();
  private readonly subs = new Set<Subscription>();
  private readonly pending = new Set<(err: Error) => void>();
  private closed = false;

  constructor(private readonly nc: NatsConnection, opts: NatsTransportOptions = {}) {
    this.name = opts.name ?? 'chorus';
    this.nodePrefix = `${opts.prefix ?? 'chorus'}.node.`;
    this.owns = opts.ownsConnection ?? false;
    this.probeTimeoutMs = opts.probeTimeoutMs ?? 1000;
    this.logger = opts.logger ?? silentLogger;
    checkSubject(this.nodePrefix + 'x', false);
  }

  private readonly reconnectHandlers = new Set<() => void>();
  private watchingStatus = false;

  /** Calls `handler` after every reconnect of the NATS connection (subscriptions are restored by the client; messages published meanwhile were not delivered). */
  onReconnect(handler: () => void): Disposable {
    this.reconnectHandlers.add(handler);
    if (!this.watchingStatus) {
      this.watchingStatus = true;
      void (async () => {
        for await (const st of this.nc.status()) {
          if (st.type !== 'reconnect') continue;
          for (const h of [...this.reconnectHandlers]) {
            try {
              h();
            } catch (err) {
              this.logger.warn({ err: (err as Error).message }, 'reconnect handler failed');
            }
          }
        }
      })().catch(() => {});
    }
    return { dispose: () => void this.reconnectHandlers.delete(handler) };
  }

  /** The inbox subject of a node (`<prefix>.node.<nodeId>`). Throws BadMessageError for an id that is not one subject token. */
  inboxOf(nodeId: string): string {
    let s = this.inboxes.get(nodeId);
    if (s === undefined) {
      if (!isToken(nodeId)) throw new BadMessageError('node id must be one subject token: no dots, wildcards or whitespace', { nodeId });
      s = this.nodePrefix + nodeId;
      this.inboxes.set(nodeId, s);
    }
    return s;
  }

  async listen(nodeId: string, handler: InboundHandler): Promise<Disposable> {
    const subject = this.inboxOf(nodeId);
    if (this.closed) throw new NodeUnavailableError(this.name, 'transport closed');
    if (this.listening.has(nodeId)) throw new Error(`${nodeId} is already listening`);
    this.listening.add(nodeId);
    let sub: Subscription;
    try {
      await this.probe(subject, nodeId);
      if (this.closed) throw new NodeUnavailableError(this.name, 'transport closed');
      sub = this.nc.subscribe(subject, { callback: (err, msg) => this.onInbox(err, msg, handler) });
      // the listener is live at the server once listen resolves, so a request sent next finds it
      await this.nc.flush();
    } catch (err) {
      this.listening.delete(nodeId);
      throw this.wrap(err, `listen as ${nodeId}`);
    }
    this.subs.add(sub);
    return {
      dispose: () => {
        if (!this.subs.delete(sub)) return;
        this.listening.delete(nodeId);
        unsubscribe(sub);
      },
    };
  }

  send(nodeId: string, data: Uint8Array): void {
    const subject = this.inboxOf(nodeId);
    if (this.closed) return;
    try {
      this.nc.publish(subject, data);
    } catch (err) {
      this.publishFailed(err, subject);
    }
  }

  request(nodeId: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const subject = this.inboxOf(nodeId);
    if (this.closed) return Promise.reject(new NodeUnavailableError(this.name, 'transport closed'));
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.add(reject);
      this.nc.request(subject, data, { timeout: timeoutMs }).then(
        (m) => {
          this.pending.delete(reject);
          resolve(m.data);
        },
        (err: unknown) => {
          this.pending.delete(reject);
          reject(this.requestError(err, nodeId, timeoutMs));
        },
      );
    });
  }

  publish(subject: string, data: Uint8Array): void {
    checkSubject(subject, false);
    if (this.closed) return;
    try {
      this.nc.publish(subject, data);
    } catch (err) {
      this.publishFailed(err, subject);
    }
  }

  subscribe(subject: string, handler: (data: Uint8Array, subject: string) => void): Disposable {
    checkSubject(subject, true);
    if (this.closed) throw new NodeUnavailableError(this.name, 'transport closed');
    let sub: Subscription;
    try {
      sub = this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return void this.logger.warn({ err, subject }, 'nats subscription ended with an error');
          try {
            handler(msg.data, msg.subject);
          } catch (e) {
            this.logger.error({ err: e, subject }, 'subscription handler threw');
          }
        },
      });
    } catch (err) {
      throw this.wrap(err, `subscribe ${subject}`);
    }
    this.subs.add(sub);
    return {
      dispose: () => {
        if (this.subs.delete(sub)) unsubscribe(sub);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new NodeUnavailableError(this.name, 'transport closed');
    for (const reject of this.pending) reject(err);
    this.pending.clear();
    for (const sub of this.subs) unsubscribe(sub);
    this.subs.clear();
    this.listening.clear();
    if (this.owns) {
      try {
        await this.nc.close();
      } catch (e) {
        throw new BackendError('nats', `close: ${(e as Error)?.message ?? String(e)}`, { cause: e });
      }
    }
  }

  private onInbox(err: Error | null, msg: Msg, handler: InboundHandler): void {
    if (err) return void this.logger.warn({ err, subject: msg?.subject }, 'nats inbox subscription ended with an error');
    const h = msg.headers;
    const replyTo = msg.reply;
    if (h !== undefined && h.has(PROBE_HEADER)) {
      if (replyTo) this.tryPublish(replyTo, EMPTY);
      return;
    }
    try {
      handler(msg.data, replyTo ? this.replier(replyTo) : undefined);
    } catch (e) {
      this.logger.error({ err: e, subject: msg.subject }, 'node handler threw');
    }
  }

  private replier(replyTo: string): (data: Uint8Array) => void {
    let replied = false;
    return (data) => {
      if (replied) return;
      replied = true;
      this.tryPublish(replyTo, data);
    };
  }

  private tryPublish(subject: string, data: Uint8Array): void {
    try {
      this.nc.publish(subject, data);
    } catch (err) {
      // a reply after close, or oversized: the asker times out, as on a lost message
      this.logger.warn({ err, subject }, 'nats reply not sent');
    }
  }

  /** Answers whether somebody already listens as `nodeId`: a 503 "no responders" means the id is free. */
  private async probe(subject: string, nodeId: string): Promise<void> {
    const h: MsgHdrs = headers();
    h.set(PROBE_HEADER, '1');
    try {
      await this.nc.request(subject, EMPTY, { timeout: this.probeTimeoutMs, headers: h });
    } catch (err) {
      if (err instanceof natsErrors.RequestError && err.isNoResponders()) return;
      // no answer at all: most likely the connection is down right now, which proves nothing; go ahead
      if (err instanceof natsErrors.TimeoutError) return void this.logger.warn({ nodeId }, 'listen probe got no answer; listening anyway');
      throw err;
    }
    throw new Error(`${nodeId} is already listening`);
  }

  private requestError(err: unknown, nodeId: string, timeoutMs: number): Error {
    if (err instanceof natsErrors.RequestError && err.isNoResponders()) return new NodeUnavailableError(nodeId, 'no responders');
    if (err instanceof natsErrors.TimeoutError) return new AskTimeoutError(`node ${nodeId}`, timeoutMs);
    if (this.closed || isClosedError(err) || (err instanceof natsErrors.RequestError && err.message === 'connection closed')) {
      return new NodeUnavailableError(this.name, 'transport closed');
    }
    return this.wrap(err, `request to ${nodeId}`);
  }

  private publishFailed(err: unknown, subject: string): void {
    // tell and fan-out are at-most-once: a closed or draining connection loses the message, like a dead peer
    if (isClosedError(err)) return;
    throw this.wrap(err, `publish to ${subject}`);
  }

  private wrap(err: unknown, what: string): Error {
    if (err instanceof Error && 'code' in err && typeof (err as { code: unknown }).code === 'string' && (err as { code: string }).code.startsWith('CHORUS_')) return err;
    if (err instanceof Error && err.message.includes('already listening')) return err;
    if (isClosedError(err)) return new NodeUnavailableError(this.name, 'transport closed');
    return new BackendError('nats', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

function isClosedError(err: unknown): boolean {
  return err instanceof natsErrors.ClosedConnectionError || err instanceof natsErrors.DrainingConnectionError;
}

function unsubscribe(sub: Subscription): void {
  try {
    sub.unsubscribe();
  } catch {
    // already closed with its connection
  }
}

/** One subject token: non-empty, no dot, no wildcard, no whitespace. */
function isToken(t: string): boolean {
  if (t.length === 0) return false;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    // '.', '*', '>', space, tab, CR, LF, and other control characters
    if (c === 46 || c === 42 || c === 62 || c <= 32 || c === 127) return false;
  }
  return true;
}

export { checkSubject } from '../../runtime/transport/transport.ts';
