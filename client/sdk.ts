/**
 * The Chorus client SDK: one WebSocket to the edge the cluster picks (the
 * connect call), typed requests with replies, channel subscriptions that
 * survive reconnects without losing or repeating a message, and idempotent
 * posts (a retried post carries the same clientMsgId). Runs in browsers
 * (global WebSocket and fetch) and in Node.js (pass `WebSocket` from `ws`).
 * Imports nothing of the server.
 *
 * Delivery order does not depend on the order frames arrive in: a live
 * message past a missing seq waits (with what follows it) until the missing
 * ones arrive in a subscribe reply or catch-up frame, or, failing that, the
 * SDK reads them with `since`; a catch-up of a full page reads on. Frames are
 * paced under the edge's per-connection rate limit (see `maxFramesPerSecond`).
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
  /**
   * HTTP base URL of any node, e.g. http://127.0.0.1:8080, or several: the
   * connect call tries them in turn; or a function returning the current list
   * (asked again on every connect call, e.g. from service discovery), so a
   * client outlives every node it first knew of.
   */
  baseUrl: string | readonly string[] | (() => readonly string[]);
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
  /**
   * Open the WebSocket to this edge (ws://host:port/ws) directly, skipping the
   * connect call (tests, or a client pinned to one edge). Reconnects go to
   * the same edge.
   */
  edgeUrl?: string;
  /**
   * Client-side pacing of frames: at most this many per second (default 20)
   * after a burst of `frameBurst` (default 50), so the edge's per-connection
   * limit (20/s, burst 60) is never hit. The edge answers a frame over its
   * limit with an error that carries no request id, so without pacing such a
   * request would only time out. Frames over the budget wait, in order.
   */
  maxFramesPerSecond?: number;
  frameBurst?: number;
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

/** A user's presence as `presenceSub` answers it. */
export interface PresenceState { user: string; presence: 'online' | 'away' | 'offline' }

/** An uploaded file as the files API describes it. */
export interface FileInfo {
  id: string;
  ws: string;
  ch: string;
  uploader: string;
  name: string;
  type: string;
  size: number;
  sha256: string;
  created: number;
}

/** One page of `search`: hits newest or best first; `highlights` are [start, end) ranges of `text`. */
export interface SearchResultPage {
  hits: Array<{ ch: string; seq: number; user: string; ts: number; text: string; parent?: number; editedAt?: number; hasFile: boolean; highlights: Array<[number, number]> }>;
  next?: string;
}

/** A channel subscription. */
export interface Subscription {
  readonly ws: string;
  readonly ch: string;
  /** Highest message seq delivered to the handler. */
  readonly lastSeq: number;
  unsubscribe(): Promise<void>;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
  frame: string;
  /** Sent again after a reconnect. */
  retry: boolean;
  /** Sent again after a transient error reply (retriable requests, and subscribes). */
  resendOnError: boolean;
  /** Transient server errors answered so far (retriable requests are sent again after them). */
  attempts: number;
  /** The last of those errors: what the caller gets if time runs out. */
  lastError?: ChorusClientError;
}

/**
 * Server errors after which a retriable request (a write with a clientMsgId,
 * stored once however often it is sent, or a read) is sent again: the
 * cluster was moving or busy (docs/errors.md: "retry with the same
 * clientMsgId").
 */
const TRANSIENT = new Set(['CHORUS_ASK_TIMEOUT', 'CHORUS_NODE_UNAVAILABLE', 'CHORUS_NOT_OWNER', 'CHORUS_NO_OWNER']);
interface SubState {
  ws: string;
  ch: string;
  /** Highest message seq delivered to the handler. */
  lastSeq: number;
  handler: (e: ChorusEvent) => void;
  active: boolean;
  /** A subscribe request is in flight: live events wait in `held` until its reply says where we are. */
  syncing: boolean;
  /** Live events not delivered yet, in arrival order: while syncing, or behind a missing seq. */
  held: ChorusEvent[];
  /** Fetches the missing seqs itself if the gap is not filled in time. */
  gapTimer?: ReturnType<typeof setTimeout> | undefined;
  /** A `since` read of the client's own is in flight. */
  reading?: boolean;
}

/** A catch-up page this long may have more behind it (the server's page size): the client reads on. */
const FULL_PAGE = 200;

/** How long a gap in live delivery may stay open (waiting for the edge's catch-up) before the client reads it itself. */
const GAP_WAIT_MS = 1500;

let counter = 0;
/** A client message id: unique per client (time, counter, randomness). */
export function newClientMsgId(): string {
  return `${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A connection to Chorus. */
export class ChorusClient {
  /** Session info from the server's hello. */
  hello: { session: string; user: string; node: string; workspaces?: string[] } | undefined;
  private socket: WebSocketLike | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly subs = new Map<string, SubState>();
  /** Users watched per workspace (`presenceSub`), watched again after a reconnect. */
  private readonly watched = new Map<string, readonly string[]>();
  private readonly listeners = new Set<(e: ChorusEvent) => void>();
  private nextId = 1;
  /** Frames waiting for the pacing budget, in order. */
  private outbox: string[] = [];
  private tokens: number;
  private refilledAt = Date.now();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private closedByUser = false;
  private attempt = 0;
  private readonly WS: WebSocketCtor;

  private constructor(private readonly o: ChorusClientOptions) {
    const ctor = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!ctor) throw new TypeError('no WebSocket implementation: pass `WebSocket` from the ws package');
    this.WS = ctor;
    this.tokens = o.frameBurst ?? 50;
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

  /**
   * Sends one command; resolves with the result or rejects with a
   * ChorusClientError. `retry`: the command is safe to send again (a write
   * with a clientMsgId, a read): it is resent after a reconnect, and after a
   * transient server error (CHORUS_ASK_TIMEOUT, CHORUS_NODE_UNAVAILABLE,
   * CHORUS_NOT_OWNER, CHORUS_NO_OWNER) with a back-off, until the request
   * timeout, when the caller gets the last such error.
   */
  request<T = unknown>(op: string, params: Record<string, unknown> = {}, opts: { retry?: boolean } = {}): Promise<T> {
    return this.send<T>(op, params, !!opts.retry, !!opts.retry);
  }

  /** `request` with the two resend rules apart: after a reconnect (`retry`), after a transient error reply (`resendOnError`). */
  private send<T>(op: string, params: Record<string, unknown>, retry: boolean, resendOnError: boolean): Promise<T> {
    const id = this.nextId++;
    const frame = JSON.stringify({ ...params, op, id });
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.pending.get(id);
        this.pending.delete(id);
        reject(p?.lastError ?? new ChorusClientError('CLIENT_TIMEOUT', `${op} got no reply in time`));
      }, this.o.requestTimeoutMs ?? 10_000);
      const open = this.socket?.readyState === 1;
      if (!open && !retry) {
        // not connected (a reconnect is under way, or closed): fail now rather than at the timeout
        clearTimeout(timer);
        reject(new ChorusClientError(this.closedByUser ? 'CLIENT_CLOSED' : 'CLIENT_DISCONNECTED', `${op}: not connected`));
        return;
      }
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, frame, retry, resendOnError, attempts: 0 });
      if (open) this.transmit(frame);
      // else (retriable): sent on (re)connect
    });
  }

  /**
   * Searches the messages the caller can read in workspace `ws` (syntax in
   * docs/search.md: words, "phrases", in:, from:, before:/after:/on:, has:file).
   * Pass the page's `next` as `cursor` for the following page (same query and order).
   */
  search(ws: string, query: string, opts: { order?: 'newest' | 'relevance'; limit?: number; cursor?: string } = {}): Promise<SearchResultPage> {
    return this.request('search', { ws, query, ...opts });
  }

  /** Posts a message (with `files`: ids from `uploadFile` to this channel); retried across reconnects with the same clientMsgId, so it is stored once. */
  post(ws: string, ch: string, text: string, opts: { parent?: number; clientMsgId?: string; files?: string[] } = {}): Promise<{ seq: number }> {
    return this.request('post', {
      ws, ch, text, clientMsgId: opts.clientMsgId ?? newClientMsgId(), ...(opts.parent ? { parent: opts.parent } : {}), ...(opts.files?.length ? { files: opts.files } : {}),
    }, { retry: true });
  }

  /**
   * Uploads a file to a channel (POST /api/files; the caller must be a member)
   * and resolves to its record; attach it with `post(..., { files: [id] })`.
   * `sha256` (lower-case hex) is computed from `data` when not given, which
   * reads a Blob into memory: pass it (and a ReadableStream) for large files.
   */
  async uploadFile(ws: string, ch: string, file: {
    name: string; type: string; data: Uint8Array | Blob | ReadableStream<Uint8Array>; sha256?: string; size?: number;
  }): Promise<FileInfo> {
    let sha = file.sha256;
    if (!sha) {
      if (file.data instanceof ReadableStream) throw new TypeError('uploadFile: pass sha256 with a ReadableStream');
      const bytes = file.data instanceof Uint8Array ? file.data : new Uint8Array(await file.data.arrayBuffer());
      const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
      sha = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
    }
    const q = new URLSearchParams({ ws, ch, name: file.name });
    const headers: Record<string, string> = { authorization: `Bearer ${this.o.token}`, 'content-type': file.type, 'x-chorus-sha256': sha };
    if (file.size !== undefined) headers['content-length'] = String(file.size);
    const res = await fetch(`${this.httpBase()}/api/files?${q}`, {
      method: 'POST', headers, body: file.data as unknown as Blob, ...(file.data instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit);
    const body = (await res.json().catch(() => ({}))) as { file?: FileInfo; code?: string; message?: string; details?: Record<string, unknown> };
    if (!res.ok || !body.file) throw new ChorusClientError(body.code ?? 'CLIENT_HTTP', body.message ?? `upload failed with HTTP ${res.status}`, body.details);
    return body.file;
  }

  /** A short-lived download link of a file (GET /api/files/:id; the caller must be able to read its channel). */
  async fileUrl(id: string): Promise<{ url: string; expiresAt: number; file: FileInfo }> {
    const res = await fetch(`${this.httpBase()}/api/files/${encodeURIComponent(id)}?redirect=0`, { headers: { authorization: `Bearer ${this.o.token}` } });
    const body = (await res.json().catch(() => ({}))) as { url?: string; expiresAt?: number; file?: FileInfo; code?: string; message?: string };
    if (!res.ok || !body.url) throw new ChorusClientError(body.code ?? 'CLIENT_HTTP', body.message ?? `HTTP ${res.status}`);
    return { url: body.url, expiresAt: body.expiresAt!, file: body.file! };
  }

  /** The HTTP base of the edge this client uses (its WebSocket's node when known). */
  private httpBase(): string {
    if (this.o.edgeUrl) return this.o.edgeUrl.replace(/^ws/, 'http').replace(/\/ws\/?$/, '');
    return this.bases()[0]!;
  }

  /** The base URLs as of now, without trailing slashes. */
  private bases(): string[] {
    const b = this.o.baseUrl;
    const list = typeof b === 'string' ? [b] : typeof b === 'function' ? b() : b;
    if (!list.length) throw new ChorusClientError('CLIENT_CONNECT', 'no base URL to connect to');
    return list.map((u) => u.replace(/\/$/, ''));
  }

  /**
   * Subscribes to a channel. With `seq` (the last seq seen, e.g. from local
   * storage) the missed messages are delivered first. Every message reaches
   * `handler` exactly once, in seq order, across reconnects.
   */
  async subscribe(ws: string, ch: string, handler: (e: ChorusEvent) => void, opts: { seq?: number } = {}): Promise<Subscription> {
    const st: SubState = { ws, ch, lastSeq: opts.seq ?? 0, handler, active: true, syncing: false, held: [] };
    const key = `${ws}.${ch}`;
    const prev = this.subs.get(key);
    if (prev) this.retire(prev); // subscribing again replaces the earlier handler
    this.subs.set(key, st);
    try {
      await this.resubscribe(st, opts.seq !== undefined);
    } catch (err) {
      this.retire(st);
      if (this.subs.get(key) === st) this.subs.delete(key);
      throw err;
    }
    return {
      ws, ch,
      get lastSeq() { return st.lastSeq; },
      unsubscribe: async () => {
        this.retire(st);
        if (this.subs.get(key) === st) this.subs.delete(key);
        await this.request('unsubscribe', { ws, ch }).catch(() => {});
      },
    };
  }

  /**
   * Watches the presence of `users` in `ws`, replacing the list watched
   * there (`[]` stops it): presence is not broadcast to a workspace, a client
   * names the users it shows. Resolves with the current presence of the
   * users newly watched; later changes arrive as `presence` events (onEvent).
   * After a reconnect the list is watched again and every watched user's
   * presence is emitted as a `presence` event.
   */
  async presenceSub(ws: string, users: readonly string[]): Promise<PresenceState[]> {
    if (users.length) this.watched.set(ws, [...users]);
    else this.watched.delete(ws);
    return this.watch(ws, users);
  }

  /** Sends a presenceSub (a read: sent again after a transient error, not after a reconnect, which watches anew). */
  private async watch(ws: string, users: readonly string[]): Promise<PresenceState[]> {
    return (await this.send<{ presence: PresenceState[] }>('presenceSub', { ws, users }, false, true)).presence;
  }

  /** True while the socket is open (between a hello and a drop). */
  get connected(): boolean {
    return this.socket?.readyState === 1;
  }

  /** Closes for good (no reconnect). */
  close(): void {
    this.closedByUser = true;
    for (const st of this.subs.values()) clearTimeout(st.gapTimer);
    this.outbox = [];
    clearTimeout(this.flushTimer);
    this.socket?.close(1000, 'bye');
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ChorusClientError('CLIENT_CLOSED', 'client closed'));
      this.pending.delete(id);
    }
  }

  private async resubscribe(st: SubState, withSeq: boolean): Promise<void> {
    st.syncing = true;
    try {
      // a read: sent again after a transient error; not after a reconnect, which subscribes again itself
      const r = await this.send<{ latestSeq: number; messages?: Array<{ seq: number }>; updates?: ChorusEvent[] }>('subscribe', { ws: st.ws, ch: st.ch, ...(withSeq ? { seq: st.lastSeq } : {}) }, false, true);
      if (!withSeq) st.lastSeq = Math.max(st.lastSeq, r.latestSeq);
      st.syncing = false;
      this.applyCatchUp(st, r.messages ?? [], r.updates ?? []);
      if ((r.messages?.length ?? 0) >= FULL_PAGE) this.readOn(st);
    } finally {
      st.syncing = false;
    }
  }

  /**
   * Subscribes again from the last seq seen (after a reconnect, or when the
   * edge dropped the subscription for a temporary reason). A temporary
   * failure (the channel's node died, a timeout) is retried with back-off for
   * as long as the subscription lives and the socket is up (a reconnect
   * starts over); a permanent one (access lost) ends it with a
   * `subscription_error` event. Without the retry, a subscription whose
   * resubscribe met a node failure stayed silent for good.
   */
  private keepSubscribed(st: SubState, attempt = 0): void {
    if (!st.active || this.closedByUser) return;
    this.resubscribe(st, true).catch((e: unknown) => {
      const code = (e as { code?: string })?.code ?? '';
      const current = st.active && this.subs.get(`${st.ws}.${st.ch}`) === st;
      if (/^(AUTH_|CHAT_NOT_MEMBER|CHAT_FORBIDDEN|CHAT_NOT_FOUND|CLIENT_CLOSED)/.test(code) || !current) {
        if (current) {
          this.retire(st);
          this.subs.delete(`${st.ws}.${st.ch}`);
        }
        st.handler({ type: 'subscription_error', ws: st.ws, ch: st.ch, error: String(e) });
        return;
      }
      if (!this.connected) return; // the reconnect subscribes again
      const wait = Math.min(5000, 200 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random() / 2);
      setTimeout(() => { if (this.connected) this.keepSubscribed(st, attempt + 1); }, wait);
    });
  }

  /**
   * Missed messages (a subscribe reply, a catch-up frame, or the client's own
   * `since` read): delivered in seq order, then the updates, then whatever
   * live events were held behind them.
   */
  private applyCatchUp(st: SubState, messages: Array<{ seq: number }>, updates: ChorusEvent[]): void {
    if (!st.active) return;
    const later: ChorusEvent[] = [];
    for (const m of [...messages].sort((a, b) => a.seq - b.seq)) {
      if (m.seq <= st.lastSeq) continue;
      const e: ChorusEvent = { type: 'message', ws: st.ws, ch: st.ch, seq: m.seq, message: m };
      if (m.seq > st.lastSeq + 1 || later.length) later.push(e); // a hole even here: wait like a live event would
      else {
        st.lastSeq = m.seq;
        st.handler(e);
      }
    }
    for (const u of updates) st.handler(u);
    st.held.unshift(...later);
    this.drain(st);
  }

  /** A live channel event: delivered now if it is next in seq order, else held until the gap is filled. */
  private onLive(st: SubState, e: ChorusEvent): void {
    st.held.push(e);
    this.drain(st);
  }

  /**
   * Delivers held events in arrival order while message seqs follow on from
   * `lastSeq`; stops at a missing seq (the edge sends the missing messages in
   * a catch-up frame, which may even arrive after later live events; if it
   * does not come in time the client reads them itself).
   */
  private drain(st: SubState): void {
    if (st.syncing || !st.active) return;
    while (st.held.length) {
      const e = st.held[0]!;
      if (e.type === 'message') {
        const seq = e.seq ?? 0;
        if (seq > st.lastSeq + 1) {
          st.gapTimer ??= setTimeout(() => this.fillGap(st), GAP_WAIT_MS);
          return;
        }
        st.held.shift();
        if (seq <= st.lastSeq) continue; // already delivered (catch-up overlap)
        st.lastSeq = seq;
      } else st.held.shift();
      st.handler(e);
    }
    clearTimeout(st.gapTimer);
    st.gapTimer = undefined;
  }

  /** Sends a frame now if the pacing budget allows, else queues it (in order) until it does. */
  private transmit(frame: string): void {
    this.outbox.push(frame);
    this.flush();
  }

  private flush(): void {
    const rate = this.o.maxFramesPerSecond ?? 20;
    const burst = this.o.frameBurst ?? 50;
    const now = Date.now();
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) / 1000) * rate);
    this.refilledAt = now;
    while (this.outbox.length && this.tokens >= 1 && this.socket?.readyState === 1) {
      this.tokens -= 1;
      this.socket.send(this.outbox.shift()!);
    }
    if (this.outbox.length && this.socket?.readyState === 1 && !this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        this.flush();
      }, Math.ceil(((1 - this.tokens) / rate) * 1000));
    }
  }

  private retire(st: SubState): void {
    st.active = false;
    st.held = [];
    clearTimeout(st.gapTimer);
    st.gapTimer = undefined;
  }

  /** The gap was not filled in time: read what is missing with `since`. */
  private fillGap(st: SubState): void {
    st.gapTimer = undefined;
    if (!st.active || !st.held.length || this.closedByUser || (!this.connected && this.o.reconnect === false)) return;
    if (!this.connected || st.syncing) {
      // a reconnect's resubscribe will fill it; look again later
      st.gapTimer = setTimeout(() => this.fillGap(st), GAP_WAIT_MS);
      return;
    }
    this.readOn(st);
  }

  /** Reads what follows `lastSeq` with `since`, page after page, and delivers it in order. */
  private readOn(st: SubState): void {
    if (!st.active || st.reading || this.closedByUser) return;
    st.reading = true;
    const from = st.lastSeq;
    this.request<{ messages?: Array<{ seq: number }>; updates?: ChorusEvent[]; hasMore?: boolean }>('since', { ws: st.ws, ch: st.ch, seq: from }).then(
      (r) => {
        st.reading = false;
        this.applyCatchUp(st, r.messages ?? [], r.updates ?? []);
        if (r.hasMore && st.lastSeq > from) this.readOn(st);
      },
      () => {
        st.reading = false;
        if (st.held.length && st.active) st.gapTimer ??= setTimeout(() => this.fillGap(st), GAP_WAIT_MS);
      },
    );
  }

  private baseIndex = 0;

  /** The connect call, against each known base URL in turn until one answers. */
  private async connectCall(): Promise<{ url: string }> {
    const bases = this.bases();
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
    const body = this.o.edgeUrl ? { url: this.o.edgeUrl } : await this.connectCall();
    const url = `${body.url}?token=${encodeURIComponent(this.o.token)}&device=${encodeURIComponent(this.o.device ?? 'web')}`;
    await new Promise<void>((resolve, reject) => {
      const sock = new this.WS(url);
      this.socket = sock;
      let helloSeen = false;
      sock.onmessage = (ev) => {
        if (this.closedByUser || this.socket !== sock) return; // nothing is delivered after close()
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
    for (const p of this.pending.values()) if (p.retry) this.transmit(p.frame);
    for (const st of this.subs.values()) this.keepSubscribed(st);
    for (const [ws, users] of this.watched) {
      this.watch(ws, users).then(
        (states) => { for (const p of states) for (const l of this.listeners) l({ type: 'presence', ws, ...p }); },
        () => { /* the next reconnect tries again; meanwhile presence may be stale */ },
      );
    }
  }

  private onDrop(ev: { code: number; reason: string }): void {
    this.outbox = [];
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
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
      const id = f.id as number;
      const p = this.pending.get(id);
      if (!p) return;
      const e = f.ok ? undefined : f.error as { code: string; message: string; details?: Record<string, unknown> };
      if (e && p.resendOnError && TRANSIENT.has(e.code)) {
        // the same frame again after a back-off, until the request's own timeout (then the caller gets this error)
        p.lastError = new ChorusClientError(e.code, e.message, e.details);
        const delay = Math.min(1000, 50 * 2 ** p.attempts++);
        setTimeout(() => { if (this.pending.get(id) === p && this.socket?.readyState === 1) this.transmit(p.frame); }, delay);
        return;
      }
      this.pending.delete(id);
      clearTimeout(p.timer);
      if (!e) p.resolve(f.result);
      else p.reject(new ChorusClientError(e.code, e.message, e.details));
      return;
    }
    if (f.type === 'event') {
      const e = f.event as ChorusEvent;
      const st = f.scope === 'channel' && e.ch ? this.subs.get(`${e.ws}.${e.ch}`) : undefined;
      if (st) {
        this.onLive(st, e);
        return;
      }
      for (const l of this.listeners) l(e);
      return;
    }
    if (f.type === 'catchup') {
      const st = this.subs.get(`${f.ws}.${f.ch}`);
      if (st) {
        const messages = (f.messages as Array<{ seq: number }>) ?? [];
        this.applyCatchUp(st, messages, (f.updates as ChorusEvent[]) ?? []);
        if (messages.length >= FULL_PAGE) this.readOn(st);
      }
      return;
    }
    if (f.type === 'unsubscribed') {
      // the edge stopped delivering a channel: for good when access was lost, else (a timeout) subscribe again from where we are
      const st = this.subs.get(`${f.ws}.${f.ch}`);
      const code = (f.error as { code?: string } | undefined)?.code ?? '';
      if (st?.active && !/^(AUTH_|CHAT_NOT_MEMBER|CHAT_FORBIDDEN|CHAT_NOT_FOUND)/.test(code)) {
        setTimeout(() => {
          if (st.active && this.subs.get(`${st.ws}.${st.ch}`) === st && this.connected) this.keepSubscribed(st);
        }, 200);
      }
    }
    for (const l of this.listeners) l(f as ChorusEvent);
  }
}
