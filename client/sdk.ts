/**
 * The Chorus client SDK: one WebSocket to the edge the cluster picks (the
 * connect call), typed requests with replies, channel subscriptions that
 * survive reconnects without losing or repeating a message, and idempotent
 * posts (a retried post carries the same clientMsgId). Runs in browsers
 * (global WebSocket and fetch) and in Node.js (pass `WebSocket` from `ws`).
 * Imports nothing of the server.
 */

/** A WebSocket constructor: the browser's, or `ws` in Node.js. */
export type WebSocketCtor = new (url: string) => WebSocketLike;
/** The part of a WebSocket the SDK uses. */
export interface WebSocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** Options of `ChorusClient.connect`. */
export interface ChorusClientOptions {
  /** HTTP base URL of any node, e.g. http://127.0.0.1:8080, or several: the connect call tries them in turn. */
  baseUrl: string | readonly string[];
  /** A signed user token. */
  token: string;
  /** Default: globalThis.WebSocket. */
  WebSocket?: WebSocketCtor;
  /** Device label shown in the user's sessions. Default 'web'. */
  device?: string;
  /** Preferred region for the connect call. */
  region?: string;
  /** Reconnect after a drop, with backoff. Default true. */
  reconnect?: boolean;
  /** Reply timeout per request. Default 10,000 ms. */
  requestTimeoutMs?: number;
}

/** An error answered by the server: `{ code, message }`. */
export class ChorusClientError extends Error {
  constructor(readonly code: string, message: string, readonly details?: Record<string, unknown>) {
    super(message);
    this.name = 'ChorusClientError';
  }
}

/** A live event as the server sends it (`message`, `message_edited`, `reaction`, `typing`, `mention`, `presence`...). */
export interface ChorusEvent {
  type: string;
  ws?: string;
  ch?: string;
  seq?: number;
  [k: string]: unknown;
}

/** A channel subscription. */
export interface Subscription {
  readonly ws: string;
  readonly ch: string;
  /** Highest message seq delivered to the handler. */
  readonly lastSeq: number;
  unsubscribe(): Promise<void>;
}

interface Pending { resolve(v: unknown): void; reject(e: Error): void; timer: ReturnType<typeof setTimeout>; frame: string; retry: boolean }
interface SubState { ws: string; ch: string; lastSeq: number; handler: (e: ChorusEvent) => void; active: boolean }

let counter = 0;
/** A client message id: unique per client (time, counter, randomness). */
export function newClientMsgId(): string {
  return `${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A connection to Chorus. */
export class ChorusClient {
  /** Session info from the server's hello. */
  hello: { session: string; user: string; node: string } | undefined;
  private socket: WebSocketLike | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly subs = new Map<string, SubState>();
  private readonly listeners = new Set<(e: ChorusEvent) => void>();
  private nextId = 1;
  private closedByUser = false;
  private attempt = 0;
  private readonly WS: WebSocketCtor;

  private constructor(private readonly o: ChorusClientOptions) {
    const ctor = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!ctor) throw new TypeError('no WebSocket implementation: pass `WebSocket` from the ws package');
    this.WS = ctor;
  }

  /** Asks the cluster which edge to use, connects, and waits for the server's hello. */
  static async connect(o: ChorusClientOptions): Promise<ChorusClient> {
    const c = new ChorusClient(o);
    await c.open();
    return c;
  }

  /** Receives every event that is not for a channel subscription (user and workspace events). */
  onEvent(fn: (e: ChorusEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Sends one command; resolves with the result or rejects with a ChorusClientError. */
  request<T = unknown>(op: string, params: Record<string, unknown> = {}, opts: { retry?: boolean } = {}): Promise<T> {
    const id = this.nextId++;
    const frame = JSON.stringify({ ...params, op, id });
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ChorusClientError('CLIENT_TIMEOUT', `${op} got no reply in time`));
      }, this.o.requestTimeoutMs ?? 10_000);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, frame, retry: !!opts.retry });
      if (this.socket?.readyState === 1) this.socket.send(frame);
      // else: sent on (re)connect if retry, else failed on close
    });
  }

  /** Posts a message; retried across reconnects with the same clientMsgId, so it is stored once. */
  post(ws: string, ch: string, text: string, opts: { parent?: number; clientMsgId?: string } = {}): Promise<{ seq: number }> {
    return this.request('post', { ws, ch, text, clientMsgId: opts.clientMsgId ?? newClientMsgId(), ...(opts.parent ? { parent: opts.parent } : {}) }, { retry: true });
  }

  /**
   * Subscribes to a channel. With `seq` (the last seq seen, e.g. from local
   * storage) the missed messages are delivered first. Every message reaches
   * `handler` exactly once, in seq order, across reconnects.
   */
  async subscribe(ws: string, ch: string, handler: (e: ChorusEvent) => void, opts: { seq?: number } = {}): Promise<Subscription> {
    const st: SubState = { ws, ch, lastSeq: opts.seq ?? 0, handler, active: true };
    const key = `${ws}.${ch}`;
    this.subs.set(key, st);
    try {
      await this.resubscribe(st, opts.seq !== undefined);
    } catch (err) {
      this.subs.delete(key);
      throw err;
    }
    return {
      ws, ch,
      get lastSeq() { return st.lastSeq; },
      unsubscribe: async () => {
        st.active = false;
        this.subs.delete(key);
        await this.request('unsubscribe', { ws, ch }).catch(() => {});
      },
    };
  }

  /** Closes for good (no reconnect). */
  close(): void {
    this.closedByUser = true;
    this.socket?.close(1000, 'bye');
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ChorusClientError('CLIENT_CLOSED', 'client closed'));
      this.pending.delete(id);
    }
  }

  private async resubscribe(st: SubState, withSeq: boolean): Promise<void> {
    const r = await this.request<{ latestSeq: number; messages?: Array<{ seq: number }>; updates?: ChorusEvent[] }>('subscribe', { ws: st.ws, ch: st.ch, ...(withSeq ? { seq: st.lastSeq } : {}) });
    if (!withSeq) st.lastSeq = r.latestSeq;
    this.applyCatchUp(st, r.messages ?? [], r.updates ?? []);
  }

  private applyCatchUp(st: SubState, messages: Array<{ seq: number }>, updates: ChorusEvent[]): void {
    for (const m of messages) {
      if (m.seq <= st.lastSeq) continue;
      st.lastSeq = m.seq;
      st.handler({ type: 'message', ws: st.ws, ch: st.ch, seq: m.seq, message: m });
    }
    for (const u of updates) st.handler(u);
  }

  private baseIndex = 0;

  /** The connect call, against each known base URL in turn until one answers. */
  private async connectCall(): Promise<{ url: string }> {
    const bases = (typeof this.o.baseUrl === 'string' ? [this.o.baseUrl] : this.o.baseUrl).map((b) => b.replace(/\/$/, ''));
    const q = this.o.region ? `?region=${encodeURIComponent(this.o.region)}` : '';
    let last: Error | undefined;
    for (let i = 0; i < bases.length; i++) {
      const base = bases[(this.baseIndex + i) % bases.length]!;
      try {
        const res = await fetch(`${base}/api/connect${q}`, { method: 'POST', headers: { authorization: `Bearer ${this.o.token}` } });
        const body = (await res.json()) as { url?: string; code?: string; message?: string };
        if (res.ok && body.url) {
          this.baseIndex = (this.baseIndex + i) % bases.length;
          return { url: body.url };
        }
        last = new ChorusClientError(body.code ?? 'CLIENT_CONNECT', body.message ?? `connect call failed (${res.status})`);
        if (res.status === 401 || res.status === 403) throw last;
      } catch (err) {
        if (err instanceof ChorusClientError && (err.code.startsWith('AUTH_'))) throw err;
        last = err as Error;
      }
    }
    throw last ?? new ChorusClientError('CLIENT_CONNECT', 'no base URL');
  }

  private async open(): Promise<void> {
    const body = await this.connectCall();
    const url = `${body.url}?token=${encodeURIComponent(this.o.token)}&device=${encodeURIComponent(this.o.device ?? 'web')}`;
    await new Promise<void>((resolve, reject) => {
      const sock = new this.WS(url);
      this.socket = sock;
      let helloSeen = false;
      sock.onmessage = (ev) => {
        const frame = JSON.parse(String(ev.data)) as { type: string; [k: string]: unknown };
        if (frame.type === 'hello' && !helloSeen) {
          helloSeen = true;
          this.hello = frame as unknown as ChorusClient['hello'];
          this.attempt = 0;
          resolve();
          return;
        }
        this.onFrame(frame);
      };
      sock.onclose = (ev) => {
        if (!helloSeen) reject(new ChorusClientError('CLIENT_CONNECT', `connection closed before hello: ${ev.code} ${ev.reason}`));
        else this.onDrop(ev);
      };
      sock.onerror = () => { /* onclose follows */ };
    });
    // after a reconnect: resend retriable requests, resubscribe from the last seq seen
    for (const p of this.pending.values()) if (p.retry) this.socket!.send(p.frame);
    for (const st of this.subs.values()) if (st.active) void this.resubscribe(st, true).catch((e) => st.handler({ type: 'subscription_error', ws: st.ws, ch: st.ch, error: String(e) }));
  }

  private onDrop(ev: { code: number; reason: string }): void {
    for (const [id, p] of this.pending) {
      if (p.retry) continue;
      clearTimeout(p.timer);
      p.reject(new ChorusClientError('CLIENT_DISCONNECTED', `connection lost (${ev.code} ${ev.reason})`));
      this.pending.delete(id);
    }
    for (const l of this.listeners) l({ type: 'disconnected', code: ev.code, reason: ev.reason });
    if (this.closedByUser || this.o.reconnect === false || ev.code === 4001) return;
    const delay = Math.min(100 * 2 ** this.attempt++, 5000) * (0.5 + Math.random() / 2);
    setTimeout(() => {
      this.open().then(
        () => { for (const l of this.listeners) l({ type: 'reconnected' }); },
        () => this.onDrop({ code: 1006, reason: 'reconnect failed' }),
      );
    }, delay);
  }

  private onFrame(f: { type: string; [k: string]: unknown }): void {
    if (f.type === 'reply') {
      const p = this.pending.get(f.id as number);
      if (!p) return;
      this.pending.delete(f.id as number);
      clearTimeout(p.timer);
      if (f.ok) p.resolve(f.result);
      else {
        const e = f.error as { code: string; message: string; details?: Record<string, unknown> };
        p.reject(new ChorusClientError(e.code, e.message, e.details));
      }
      return;
    }
    if (f.type === 'event') {
      const e = f.event as ChorusEvent;
      const st = f.scope === 'channel' && e.ch ? this.subs.get(`${e.ws}.${e.ch}`) : undefined;
      if (st) {
        if (e.type === 'message') {
          if ((e.seq ?? 0) <= st.lastSeq) return;
          st.lastSeq = e.seq!;
        }
        st.handler(e);
        return;
      }
      for (const l of this.listeners) l(e);
      return;
    }
    if (f.type === 'catchup') {
      const st = this.subs.get(`${f.ws}.${f.ch}`);
      if (st) this.applyCatchUp(st, (f.messages as Array<{ seq: number }>) ?? [], (f.updates as ChorusEvent[]) ?? []);
      return;
    }
    for (const l of this.listeners) l(f as ChorusEvent);
  }
}
