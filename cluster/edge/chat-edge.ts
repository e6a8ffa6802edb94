import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  COMMANDS, EDGE_COMMANDS, ID_PATTERN, LIMITS, channelSubject, presenceSubject, routeOf, userKey, userSubject, workspaceSubject, type CommandSpec,
} from '../../actors/protocol.ts';
import type { Presence } from '../../actors/events.ts';
import { CHAT_RATE_LIMITED } from '../../actors/errors.ts';
import {
  codec, toChorusError, ChorusError, silentLogger, noopMetrics,
  type Clock, type Disposable, type Logger, type Metrics, type Transport, type Counter, type Gauge, type Histogram,
} from '../../runtime/index.ts';
import type { ChorusNode } from '../chorus-node.ts';
import { AuthError, bearerOf, type TokenSigner } from './auth.ts';
import { CLOSE, EDGE_ERRORS, closeForProtocolError } from './close-codes.ts';
import { spreadOver } from './spread.ts';
import { DEFAULT_SESSION_LIMITS, Session, textFrame, type ChannelSubState, type PresenceWatch, type SessionLimits } from './session.ts';
import { TokenBucket } from './rate-limit.ts';

/** Settings of the edge. */
export interface EdgeOptions {
  /** Largest accepted frame in bytes. Default 64 KiB. */
  maxFrameBytes?: number;
  /** Most connections this node holds. Default 50,000 (the seed's per-server figure). */
  maxConnections?: number;
  /** Most connections of one user on this node. Default 20. */
  maxConnectionsPerUser?: number;
  /** Interval of WebSocket pings; a client that misses one is dropped. Default 30,000 ms. */
  pingIntervalMs?: number;
  /** Interval at which the edge tells user actors which sessions it still holds. Default 30,000 ms. */
  sessionRefreshMs?: number;
  /** Most sessions pinged, and session refreshes in flight, per slice of the periodic sweeps (see spreadOver). Default 500. */
  housekeepingSlice?: number;
  limits?: Partial<SessionLimits>;
}

/**
 * One transport subscription and the local sessions it feeds. For a channel
 * subject each session maps to its delivery state of that channel, so the
 * fan-out loop needs no per-session lookup.
 */
interface SubjectEntry { sub: Disposable; scope: 'channel' | 'user' | 'workspace' | 'presence'; sessions: Map<Session, ChannelSubState | undefined> }

/** Where a WebSocket's session is kept, so the socket listeners can be shared by every connection. */
const SESSION = Symbol('chorus.session');
type SocketWithSession = WebSocket & { [SESSION]?: Session };

/** Events a session holds per workspace while its membership is being checked (more are dropped). */
const HELD_EVENTS = 100;

/** Errors after which a gap read is simply tried again. */
const TEMPORARY = new Set(['CHORUS_ASK_TIMEOUT', 'CHORUS_NODE_UNAVAILABLE', 'CHORUS_NO_OWNER', 'CHORUS_NOT_OWNER', 'CHORUS_BACKEND']);

/** Ops the edge answers itself (not actor commands). */
const EDGE_OPS = new Set(['subscribe', 'unsubscribe', 'presenceSub', 'ping']);

/** Newly watched users one extra frame token pays for in a presenceSub (a full list of 500 costs 20 tokens besides its own). */
const PRESENCE_USERS_PER_TOKEN = 25;

/** A user's presence as a presenceSub reply lists it. */
interface PresenceState { user: string; presence: Presence }

/**
 * The thin WebSocket edge: authenticates the upgrade, validates every frame,
 * applies rate limits, forwards commands to the domain actors as the token's
 * user, and fans out channel events: one transport subscription per channel
 * with local sessions (the broker sends one copy per edge; the edge
 * serialises and frames each event once and writes that buffer to each
 * socket, coalescing what one socket gets in one loop turn into one write:
 * see Session.sendFrame). Per session and channel it
 * keeps the last message seq sent, so a client gets every message exactly
 * once and in order, across reconnects (`subscribe` with the last seq seen)
 * and across gaps (a missing seq triggers a catch-up read).
 */
export class ChatEdge {
  readonly wss: WebSocketServer;
  private readonly sessions = new Map<string, Session>();
  /** Open connections per user on this node (the per-user limit). */
  private readonly byUser = new Map<string, number>();
  /** Frame budget per user on this node, shared by its connections (kept while it has one open). */
  private readonly userBuckets = new Map<string, TokenBucket>();
  private readonly subjects = new Map<string, SubjectEntry>();
  private readonly o: Required<Omit<EdgeOptions, 'limits'>> & { limits: SessionLimits };
  private readonly logger: Logger;
  private readonly clock: Clock;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private refreshTimer: ReturnType<typeof setInterval> | undefined;
  private closing = false;
  private reconnectSub: Disposable | undefined;
  private refreshing = false;
  /** The clock as a function, shared by every session's rate limiter. */
  private readonly now: () => number;
  /** Socket listeners shared by every connection (one set per edge, not four closures per socket). */
  private readonly listeners: {
    message: (this: SocketWithSession, data: RawData, isBinary: boolean) => void;
    pong: (this: SocketWithSession) => void;
    close: (this: SocketWithSession) => void;
    error: (this: SocketWithSession, err: Error) => void;
  };
  private readonly m: {
    connections: Gauge; frames: Counter; sent: Counter; deliveries: Counter; latency: Histogram; closes: Counter; messages: Counter;
  };

  constructor(
    private readonly node: ChorusNode,
    private readonly transport: Transport,
    private readonly signer: TokenSigner,
    opts: EdgeOptions & { metrics?: Metrics; logger?: Logger; clock?: Clock } = {},
  ) {
    this.o = {
      maxFrameBytes: opts.maxFrameBytes ?? 64 * 1024,
      maxConnections: opts.maxConnections ?? 50_000,
      maxConnectionsPerUser: opts.maxConnectionsPerUser ?? 20,
      pingIntervalMs: opts.pingIntervalMs ?? 30_000,
      sessionRefreshMs: opts.sessionRefreshMs ?? 30_000,
      housekeepingSlice: opts.housekeepingSlice ?? 500,
      limits: { ...DEFAULT_SESSION_LIMITS, ...opts.limits },
    };
    if (!Number.isSafeInteger(this.o.housekeepingSlice) || this.o.housekeepingSlice < 1) throw new RangeError(`EdgeOptions.housekeepingSlice must be a positive integer, got ${this.o.housekeepingSlice}`);
    // the per-user budget follows the per-connection one unless set: three busy connections' worth
    this.o.limits.userFramesPerSecond = opts.limits?.userFramesPerSecond ?? 3 * this.o.limits.framesPerSecond;
    this.o.limits.userFrameBurst = opts.limits?.userFrameBurst ?? 3 * this.o.limits.frameBurst;
    this.logger = (opts.logger ?? silentLogger).child({ component: 'edge' });
    this.clock = opts.clock ?? { now: Date.now } as Clock;
    const clock = this.clock;
    this.now = () => clock.now();
    const edge = this;
    this.listeners = {
      message(data, isBinary) { const s = this[SESSION]; if (s) edge.onFrame(s, data, isBinary); },
      pong() { const s = this[SESSION]; if (s) s.alive = true; },
      close() { const s = this[SESSION]; if (s) edge.onClose(s); },
      // ws reports oversized frames and protocol errors here, then closes
      error(err) { edge.logger.debug({ session: this[SESSION]?.id, err: err.message }, 'socket error'); },
    };
    const m = opts.metrics ?? noopMetrics;
    this.m = {
      connections: m.gauge('websocket_connections_active', 'Open WebSocket connections on this node'),
      frames: m.counter('chorus_edge_frames_total', 'Client frames by outcome', ['outcome']),
      sent: m.counter('messages_sent_total', 'Messages posted and acknowledged through this edge'),
      deliveries: m.counter('chorus_fanout_deliveries_total', 'Event frames written to sockets'),
      latency: m.histogram('chorus_message_latency_seconds', 'Post accepted by the channel actor to frame written at the edge', [], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]),
      closes: m.counter('chorus_edge_closes_total', 'Connections closed by the edge, by reason code', ['code']),
      messages: m.counter('chorus_edge_messages_total', 'Chat messages posted through this edge'),
    };
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.o.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
    this.reconnectSub = transport.onReconnect?.(() => this.resyncAll());
    this.pingTimer = setInterval(() => this.pingAll(), this.o.pingIntervalMs);
    this.pingTimer.unref();
    this.refreshTimer = setInterval(() => void this.refreshSessions(), this.o.sessionRefreshMs);
    this.refreshTimer.unref();
  }

  /** After the transport reconnects: every channel of every session reads what it may have missed. */
  private resyncAll(): void {
    for (const s of this.sessions.values()) {
      for (const st of s.chans.values()) if (!st.catchingUp) this.fillGap(s, st);
      if (s.presence) for (const [ws, w] of s.presence) this.resendPresence(s, ws, w);
    }
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.sessions.size;
  }
  /** Transport subscriptions held for fan-out now. */
  get subjectCount(): number {
    return this.subjects.size;
  }

  /** Handles an HTTP upgrade on /ws: authenticates, then hands the socket to ws. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const refuse = (status: number, code: string, message: string) => {
      socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 503 ? 'Service Unavailable' : 'Forbidden'}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ code, message })}`);
      this.m.closes.inc({ code });
    };
    if (this.closing) return refuse(503, EDGE_ERRORS.EDGE_SHUTDOWN, 'node is shutting down');
    let claims;
    try {
      claims = this.signer.verify(bearerOf(req.headers, url));
      if (claims.kind !== 'user') throw new AuthError('AUTH_FORBIDDEN', 'not a user token');
    } catch (err) {
      const e = toChorusError(err);
      return refuse(401, e.code, e.message);
    }
    if (this.sessions.size >= this.o.maxConnections) return refuse(503, EDGE_ERRORS.EDGE_TOO_MANY_CONNECTIONS, 'node is at its connection limit');
    if ((this.byUser.get(claims.sub) ?? 0) >= this.o.maxConnectionsPerUser) return refuse(403, EDGE_ERRORS.EDGE_TOO_MANY_CONNECTIONS, 'too many connections for this user');
    const device = (url.searchParams.get('device') ?? 'web').replace(/[^A-Za-z0-9 _.-]/g, '').slice(0, 64) || 'web';
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, claims, device));
  }

  private onConnection(socket: WebSocket, claims: ReturnType<TokenSigner['verify']>, device: string): void {
    const id = randomBytes(9).toString('base64url').replace(/[^A-Za-z0-9_-]/g, '_');
    const s = new Session(id, socket, claims.sub, claims.ws, device, this.o.limits, this.now);
    s.expiresAtMs = this.signer.expiresAtMs(claims);
    this.sessions.set(id, s);
    this.byUser.set(s.user, (this.byUser.get(s.user) ?? 0) + 1);
    if (!this.userBuckets.has(s.user)) this.userBuckets.set(s.user, new TokenBucket(this.o.limits.userFrameBurst, this.o.limits.userFramesPerSecond, this.now));
    this.m.connections.inc();
    const ws = socket as SocketWithSession;
    ws[SESSION] = s;
    ws.on('pong', this.listeners.pong);
    ws.on('message', this.listeners.message);
    ws.on('close', this.listeners.close);
    ws.on('error', this.listeners.error);
    // ws closes a socket whose frames break the protocol (invalid UTF-8, too big) without a reason: close first, with one
    (socket as unknown as { _receiver?: { prependListener?(e: 'error', l: (err: Error & { code?: string }) => void): void } })._receiver
      ?.prependListener?.('error', (err) => { const c = closeForProtocolError(err.code); s.close(c.code, c.reason); });
    s.send(JSON.stringify({ type: 'hello', session: id, user: s.user, node: this.node.nodeId, workspaces: claims.ws }));
    // a token names workspaces, but only membership lets events through: held until the user actor confirms it
    for (const ws of claims.ws) if (ws !== '*') this.ensureWorkspace(s, ws, false);
  }

  /**
   * First use of a workspace by a session: receive its user and workspace
   * events and tell the user actor about the session. `member` says whether
   * membership is proven (an op in that workspace succeeded); if not, the
   * session's events of that workspace are held (at most HELD_EVENTS) until
   * the user actor accepts the session, which it does for members only, and
   * dropped with the subscriptions if it refuses: a token that names a
   * workspace (a removed member's, a '*'-less grant) reads none of its events.
   */
  private ensureWorkspace(s: Session, ws: string, member = true): void {
    if (s.workspaces.includes(ws)) {
      if (member) this.releaseHeld(s, ws);
      return;
    }
    s.workspaces = s.workspaces.concat(ws);
    if (!member) (s.held ??= new Map()).set(ws, []);
    this.joinSubject(userSubject(ws, s.user), s);
    this.joinSubject(workspaceSubject(ws), s);
    const opened = this.askUser(ws, s.user, { op: 'sessionOpened', by: s.user, ws, sessionId: s.id, node: this.node.nodeId, device: s.device });
    if (!member) {
      void opened.then((r) => {
        if (s.closed || !s.held?.has(ws)) return;
        if (r === undefined) this.leaveWorkspace(s, ws); // refused (not a member) or failed: no events
        else this.releaseHeld(s, ws);
      });
    }
  }

  /** Membership proven: the held events of `ws` go out in order and later ones flow. */
  private releaseHeld(s: Session, ws: string): void {
    const held = s.held?.get(ws);
    if (!held) return;
    s.held!.delete(ws);
    if (s.held!.size === 0) s.held = undefined; // a Map per connection otherwise, kept empty for its life
    for (const f of held) s.sendFrame(f);
  }

  /** The session gets nothing more of `ws`: channels, user and workspace events. */
  private leaveWorkspace(s: Session, ws: string): void {
    this.dropWorkspace(s, ws);
    s.held?.delete(ws);
    if (s.held?.size === 0) s.held = undefined;
    if (s.workspaces.includes(ws)) s.workspaces = s.workspaces.filter((w) => w !== ws).slice(); // (filter's result has room for 16 more)
    this.leaveSubject(userSubject(ws, s.user), s);
    this.leaveSubject(workspaceSubject(ws), s);
  }

  private onClose(s: Session): void {
    s.closed = true;
    if (!this.sessions.delete(s.id)) return;
    this.m.connections.dec();
    const n = (this.byUser.get(s.user) ?? 1) - 1;
    if (n > 0) this.byUser.set(s.user, n);
    else {
      this.byUser.delete(s.user);
      this.userBuckets.delete(s.user);
    }
    for (const st of s.chans.values()) this.leaveSubject(st.subject, s);
    for (const ws of s.workspaces) {
      this.leaveSubject(userSubject(ws, s.user), s);
      this.leaveSubject(workspaceSubject(ws), s);
    }
    if (s.presence) for (const ws of [...s.presence.keys()]) this.unwatch(s, ws, undefined);
    s.chans.clear();
    if (!this.closing) for (const ws of s.workspaces) this.askUser(ws, s.user, { op: 'sessionClosed', by: s.user, ws, sessionId: s.id });
  }

  /** Tells a user actor about its sessions; never rejects (a failure is logged at debug and resolves undefined). */
  private askUser(ws: string, user: string, msg: Record<string, unknown>): Promise<unknown> {
    const spec = (EDGE_COMMANDS as Record<string, CommandSpec>)[msg.op as string]!;
    const parsed = spec.schema.safeParse(msg);
    if (!parsed.success) return Promise.resolve();
    const route = routeOf(msg.op as 'sessionOpened', { by: user, ws });
    return this.node.ref(route.type, route.key).ask(parsed.data).then((r) => r ?? null, (err) => this.logger.debug({ err: (err as Error).message }, 'session update failed'));
  }

  // ---- frames ------------------------------------------------------------

  private onFrame(s: Session, data: RawData, isBinary: boolean): void {
    if (s.closed) return;
    if (Date.now() > s.expiresAtMs) return this.expire(s); // wall-clock time, as the token's exp
    if (isBinary) {
      this.m.frames.inc({ outcome: 'binary' });
      return this.reject(s, undefined, EDGE_ERRORS.EDGE_BAD_FRAME, 'binary frames are not accepted; send JSON text');
    }
    // parsed before the rate check (a frame is at most maxFrameBytes), so a refused request is answered with its id
    const connLimited = !s.bucket.take();
    const userBucket = this.userBuckets.get(s.user);
    const userLimited = !connLimited && userBucket !== undefined && !userBucket.take();
    const limited = connLimited || userLimited;
    if (limited && !(s.flood ??= new TokenBucket(this.o.limits.floodCloseAfter, this.o.limits.framesPerSecond, this.now)).take()) {
      this.m.frames.inc({ outcome: 'rate_limited' });
      this.m.closes.inc({ code: EDGE_ERRORS.EDGE_FLOOD });
      return s.close(CLOSE.POLICY, 'flooding: too many frames over the rate limit');
    }
    let frame: unknown;
    try {
      // ws has checked UTF-8 validity of text frames already (it closes with 1007 otherwise)
      frame = JSON.parse(data.toString());
    } catch {
      this.m.frames.inc({ outcome: 'bad_json' });
      return this.reject(s, undefined, EDGE_ERRORS.EDGE_BAD_FRAME, 'frame is not valid JSON');
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      this.m.frames.inc({ outcome: 'bad_frame' });
      return this.reject(s, undefined, EDGE_ERRORS.EDGE_BAD_FRAME, 'frame must be a JSON object with an "op"');
    }
    const f = frame as Record<string, unknown>;
    const id = typeof f.id === 'string' || typeof f.id === 'number' ? (String(f.id).length <= 64 ? f.id : undefined) : undefined;
    if (typeof f.op !== 'string') {
      this.m.frames.inc({ outcome: 'bad_frame' });
      return this.reject(s, id, EDGE_ERRORS.EDGE_BAD_FRAME, 'frame has no "op" string');
    }
    if (limited) {
      this.m.frames.inc({ outcome: 'rate_limited' });
      if (userLimited) return this.reject(s, id, CHAT_RATE_LIMITED, 'too many frames from this user (all connections)', { retryAfterMs: userBucket!.retryAfterMs() });
      return this.reject(s, id, EDGE_ERRORS.EDGE_RATE_LIMITED, 'too many frames', { retryAfterMs: s.bucket.retryAfterMs() });
    }
    if (s.inFlight >= this.o.limits.maxInFlight) {
      this.m.frames.inc({ outcome: 'rate_limited' });
      return this.reject(s, id, EDGE_ERRORS.EDGE_RATE_LIMITED, `more than ${this.o.limits.maxInFlight} requests in flight`, { retryAfterMs: 100 });
    }
    s.inFlight++;
    this.dispatch(s, f.op, f).then(
      (result) => {
        this.m.frames.inc({ outcome: 'ok' });
        s.send(JSON.stringify({ type: 'reply', id, ok: true, result: result ?? null }));
      },
      (err) => {
        const e = toChorusError(err);
        this.m.frames.inc({ outcome: e.code });
        s.send(JSON.stringify({ type: 'reply', id, ok: false, error: e.toJSON() }));
      },
    ).finally(() => { s.inFlight--; });
  }

  /** The session's token expired: closed 4001 (the client reconnects with a fresh token). */
  private expire(s: Session): void {
    this.m.closes.inc({ code: 'AUTH_EXPIRED' });
    s.close(CLOSE.UNAUTHORIZED, 'token expired: reconnect with a fresh token');
  }

  private reject(s: Session, id: unknown, code: string, message: string, details?: Record<string, unknown>): void {
    const error = { code, message, ...(details ? { details } : {}) };
    s.send(JSON.stringify(id !== undefined ? { type: 'reply', id, ok: false, error } : { type: 'error', error }));
  }

  private async dispatch(s: Session, op: string, f: Record<string, unknown>): Promise<unknown> {
    if (EDGE_OPS.has(op)) {
      if (op === 'ping') return { pong: this.clock.now() };
      const ws = typeof f.ws === 'string' ? f.ws : '';
      const ch = typeof f.ch === 'string' ? f.ch : '';
      if (op === 'unsubscribe') return this.unsubscribe(s, ws, ch);
      if (op === 'presenceSub') return this.presenceSub(s, ws, f.users);
      const seq = typeof f.seq === 'number' && Number.isSafeInteger(f.seq) && f.seq >= 0 ? f.seq : undefined;
      return this.subscribe(s, ws, ch, seq);
    }
    const spec = Object.hasOwn(COMMANDS, op) ? (COMMANDS as Record<string, CommandSpec>)[op] : undefined;
    if (!spec) throw new ChorusError(EDGE_ERRORS.EDGE_UNKNOWN_OP, `unknown op ${JSON.stringify(op.slice(0, 40))}`);
    // `by` comes from the token, never from the frame
    const parsed = spec.schema.safeParse({ ...f, by: s.user });
    if (!parsed.success) throw new ChorusError('CHORUS_BAD_MESSAGE', `invalid ${op}: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || op}: ${i.message}`).join('; ')}`);
    const cmd = parsed.data as { by: string; ws: string; ch?: string; user?: string };
    if (op !== 'createWorkspace') this.checkWorkspaceClaim(s, cmd.ws);
    const route = routeOf(op as 'post', cmd);
    const result = await this.node.ref(route.type, route.key).ask(cmd);
    this.ensureWorkspace(s, cmd.ws);
    if (op === 'post') {
      this.m.messages.inc();
      this.m.sent.inc();
    }
    return result;
  }

  /** The token's coarse workspace filter ('*' = any; the actors check membership either way). */
  private checkWorkspaceClaim(s: Session, ws: string): void {
    if (!s.wsClaims.includes(ws) && !s.wsClaims.includes('*')) throw new AuthError('AUTH_FORBIDDEN', `token does not grant workspace ${ws}`);
  }

  // ---- subscriptions and fan-out ----------------------------------------

  private async subscribe(s: Session, ws: string, ch: string, seq: number | undefined): Promise<unknown> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(ws) || !/^[A-Za-z0-9_-]{1,64}$/.test(ch)) throw new ChorusError('CHORUS_BAD_MESSAGE', 'subscribe needs ws and ch ids');
    this.checkWorkspaceClaim(s, ws);
    const key = `${ws}.${ch}`;
    if (!s.chans.has(key) && s.chans.size >= this.o.limits.maxSubscriptions) throw new ChorusError(EDGE_ERRORS.EDGE_TOO_MANY_SUBSCRIPTIONS, `at most ${this.o.limits.maxSubscriptions} channel subscriptions per connection`);
    const subject = channelSubject(ws, ch);
    let st = s.chans.get(key);
    if (!st) {
      st = { ws, ch, subject, lastSeq: seq ?? 0, catchingUp: true, buffer: undefined };
      s.chans.set(key, st);
      this.joinSubject(subject, s, st);
    } else {
      st.catchingUp = true;
      if (seq !== undefined) st.lastSeq = seq;
    }
    try {
      // subscribed first, read second: nothing published in between is missed
      const first = await this.node.ref('channel', key).ask<SinceResult>(
        seq === undefined ? { op: 'channelInfo', by: s.user, ws, ch } : { op: 'since', by: s.user, ws, ch, seq },
      );
      // the channel said yes: the user may see this workspace's events too
      this.ensureWorkspace(s, ws);
      if (seq === undefined) {
        st.lastSeq = (first as unknown as { latestSeq?: number }).latestSeq ?? 0;
        setImmediate(() => this.finishCatchUp(s, st)); // after the reply is written
        return { subscribed: true, latestSeq: st.lastSeq, info: first };
      }
      const result = await this.catchUpFrom(s, st, first);
      return { subscribed: true, latestSeq: st.lastSeq, ...result };
    } catch (err) {
      // not allowed (or not reachable): no subscription
      s.chans.delete(key);
      this.leaveSubject(subject, s);
      throw err;
    }
  }

  private unsubscribe(s: Session, ws: string, ch: string): unknown {
    const st = s.chans.get(`${ws}.${ch}`);
    if (st) {
      s.chans.delete(`${ws}.${ch}`);
      this.leaveSubject(st.subject, s);
    }
    return { unsubscribed: true };
  }

  /** Applies a since() answer (and further pages) to the session state; returns what the client gets in the reply. */
  private async catchUpFrom(s: Session, st: ChannelSubState, first: SinceResult): Promise<{ messages: unknown[]; updates: unknown[]; resync?: boolean }> {
    const messages: unknown[] = [];
    const updates: unknown[] = [];
    let page: SinceResult | undefined = first;
    let resync = false;
    for (let i = 0; page && i < 50; i++) {
      for (const m of page.messages ?? []) {
        if (m.seq > st.lastSeq) {
          messages.push(m);
          st.lastSeq = m.seq;
        }
      }
      updates.push(...(page.updates ?? []));
      resync ||= !!page.resync;
      if (!page.hasMore && !page.more) break;
      page = await this.node.ref('channel', `${st.ws}.${st.ch}`).ask<SinceResult>({ op: 'since', by: s.user, ws: st.ws, ch: st.ch, seq: st.lastSeq });
    }
    // after the reply (or catchup frame) that carries these messages has been written: it is sent from a promise callback, which runs before this
    setImmediate(() => this.finishCatchUp(s, st));
    return { messages, updates, ...(resync ? { resync } : {}) };
  }

  /** Ends a catch-up: live events buffered meanwhile are delivered through the normal gap logic. */
  private finishCatchUp(s: Session, st: ChannelSubState): void {
    st.catchingUp = false;
    const buffered = st.buffer;
    st.buffer = undefined;
    if (buffered) for (const e of buffered) if (this.deliverChannel(s, st, e as ChannelEventLike, undefined)) this.m.deliveries.inc();
  }

  /** A gap in a session's seqs: read what is missing, send it as a catch-up frame, then resume live delivery. */
  private fillGap(s: Session, st: ChannelSubState): void {
    st.catchingUp = true;
    this.node.ref('channel', `${st.ws}.${st.ch}`).ask<SinceResult>({ op: 'since', by: s.user, ws: st.ws, ch: st.ch, seq: st.lastSeq })
      .then((page) => this.catchUpFrom(s, st, page))
      .then((r) => { if (r.messages.length || r.updates.length) s.send(JSON.stringify({ type: 'catchup', ws: st.ws, ch: st.ch, ...r })); })
      .catch((err) => {
        const e = toChorusError(err);
        if (TEMPORARY.has(e.code) && !s.closed && s.chans.get(`${st.ws}.${st.ch}`) === st) {
          // the channel is moving or its node is down: try again shortly, keep buffering
          setTimeout(() => { if (!s.closed && s.chans.get(`${st.ws}.${st.ch}`) === st) this.fillGap(s, st); }, 250).unref();
          return;
        }
        // lost access (removed): stop delivering this channel to the session
        s.chans.delete(`${st.ws}.${st.ch}`);
        this.leaveSubject(st.subject, s);
        s.send(JSON.stringify({ type: 'unsubscribed', ws: st.ws, ch: st.ch, error: e.toJSON() }));
      });
  }

  /** Adds a session to a subject's local sessions (subscribing on first use); `st` is its state for a channel subject. */
  private joinSubject(subject: string, s: Session, st?: ChannelSubState): void {
    let e = this.subjects.get(subject);
    if (!e) {
      const scope = subject.startsWith('chorus.chan.') ? 'channel' : subject.startsWith('chorus.user.') ? 'user' : subject.startsWith('chorus.presence.') ? 'presence' : 'workspace';
      const entry: SubjectEntry = { sub: undefined as unknown as Disposable, scope, sessions: new Map() };
      entry.sub = this.transport.subscribe(subject, (data) => this.onPublished(entry, data));
      this.subjects.set(subject, (e = entry));
    }
    e.sessions.set(s, st);
  }

  private leaveSubject(subject: string, s: Session): void {
    const e = this.subjects.get(subject);
    if (!e) return;
    e.sessions.delete(s);
    if (e.sessions.size === 0) {
      this.subjects.delete(subject);
      void e.sub.dispose();
    }
  }

  private onPublished(entry: SubjectEntry, data: Uint8Array): void {
    let event: ChannelEventLike;
    try {
      event = codec.decode(data) as ChannelEventLike;
    } catch {
      return;
    }
    if (typeof event !== 'object' || event === null) return;
    // one serialisation and one framed buffer per event, shared by every local socket
    const scope = entry.scope;
    const out: Outgoing = { scope, event, frame: undefined };
    let delivered = 0;
    if (scope === 'channel') {
      if (event.type === 'message' && typeof event.message?.ts === 'number') this.m.latency.observe(Math.max(0, this.clock.now() - event.message.ts) / 1000);
      // (a member leaving removes itself from the map while it is iterated: allowed for Maps)
      for (const [s, st] of entry.sessions) if (st && this.deliverChannel(s, st, event, out)) delivered++;
    } else if (scope === 'presence') {
      for (const s of entry.sessions.keys()) {
        const w = s.presence?.get(event.ws);
        if (!w) continue;
        // during a read only the latest state per user matters: held by user, so never more than the list
        if (w.held) w.held.set(event.user ?? '', frameOf(out));
        else if (s.sendFrame(frameOf(out))) delivered++;
      }
    } else {
      for (const s of entry.sessions.keys()) {
        const held = s.held?.get(event.ws);
        if (held) {
          if (held.length < HELD_EVENTS) held.push(frameOf(out));
          continue;
        }
        // removed: this event is the last the session gets of the workspace (channels and events stop)
        if (event.type === 'removed_from_workspace') this.leaveWorkspace(s, event.ws);
        else if (event.type === 'member_removed' && event.user === s.user) {
          this.dropWorkspace(s, event.ws);
          this.leaveSubject(workspaceSubject(event.ws), s);
        }
        if (s.sendFrame(frameOf(out))) delivered++;
      }
    }
    if (delivered) this.m.deliveries.inc(undefined, delivered);
  }

  /** Applies the session's seq logic to a channel event; true when a frame was written. */
  private deliverChannel(s: Session, st: ChannelSubState, e: ChannelEventLike, out: Outgoing | undefined): boolean {
    if (st.catchingUp) {
      (st.buffer ??= []).push(e);
      if (st.buffer.length > this.o.limits.maxHeldEvents) s.close(CLOSE.SLOW_CONSUMER, 'slow consumer: catch-up backlog over the limit');
      return false;
    }
    if (e.type === 'message') {
      const seq = e.seq ?? 0;
      if (seq <= st.lastSeq) return false; // already sent (catch-up overlap or a duplicate publish)
      if (seq > st.lastSeq + 1) {
        (st.buffer ??= []).push(e);
        this.fillGap(s, st);
        return false;
      }
      st.lastSeq = seq;
    }
    const sent = s.sendFrame(frameOf(out ?? { scope: 'channel', event: e, frame: undefined }));
    if (e.type === 'member_left' && e.user === s.user) {
      s.chans.delete(`${st.ws}.${st.ch}`);
      this.leaveSubject(st.subject, s);
    }
    return sent;
  }

  private dropWorkspace(s: Session, ws: string): void {
    for (const [key, st] of s.chans) {
      if (st.ws !== ws) continue;
      s.chans.delete(key);
      this.leaveSubject(st.subject, s);
    }
    this.unwatch(s, ws, undefined);
  }

  // ---- presence ------------------------------------------------------------

  /**
   * `presenceSub`: the users whose presence changes this session receives
   * in `ws`, replacing the list watched there (`[]` stops it), like Slack's
   * presence_sub. Presence is not broadcast to a workspace: a client names
   * the users it shows. The reply carries the current presence of the users
   * newly watched (read from their user actors, which refuse a caller who is
   * not a workspace member); their events that arrive during that read are
   * held and sent after the reply, so the client ends on the latest state.
   */
  private async presenceSub(s: Session, ws: string, users: unknown): Promise<unknown> {
    if (!ID_PATTERN.test(ws) || !Array.isArray(users) || !users.every((u) => typeof u === 'string' && ID_PATTERN.test(u) && u !== '__proto__')) {
      throw new ChorusError('CHORUS_BAD_MESSAGE', 'presenceSub needs ws and users, an array of user ids');
    }
    const wanted = new Set(users as string[]);
    if (wanted.size > LIMITS.presenceUsers) throw new ChorusError(EDGE_ERRORS.EDGE_TOO_MANY_SUBSCRIPTIONS, `at most ${LIMITS.presenceUsers} users per presenceSub`);
    this.checkWorkspaceClaim(s, ws);
    const w = s.presence?.get(ws);
    const added = [...wanted].filter((u) => !w?.users.has(u));
    // each newly watched user costs a read of its actor: a large list pays for it in frame tokens
    const cost = Math.floor(added.length / PRESENCE_USERS_PER_TOKEN);
    if (cost > 0 && !s.bucket.take(cost)) throw new ChorusError(EDGE_ERRORS.EDGE_RATE_LIMITED, 'presenceSub: too many users watched too fast', { retryAfterMs: s.bucket.retryAfterMs(cost) });
    const watch = this.watch(s, ws, wanted);
    try {
      const presence = await this.readPresence(s, ws, watch, added);
      if (added.length > 0) this.ensureWorkspace(s, ws); // the user actors said yes: membership proven (not by an empty list)
      return { ws, presence };
    } catch (err) {
      // not a member (or not reachable): nothing of this call stays watched
      if (s.presence?.get(ws) === watch) this.unwatch(s, ws, added);
      throw err;
    }
  }

  /** Sets the users a session watches in `ws` (the watch keeps `users`), joining and leaving their presence subjects. */
  private watch(s: Session, ws: string, users: Set<string>): PresenceWatch {
    let w = s.presence?.get(ws);
    if (!w) (s.presence ??= new Map()).set(ws, (w = { users: new Set(), reads: 0, held: undefined }));
    for (const u of w.users) if (!users.has(u)) this.leaveSubject(presenceSubject(ws, u), s);
    for (const u of users) if (!w.users.has(u)) this.joinSubject(presenceSubject(ws, u), s);
    w.users = users;
    if (w.users.size === 0) this.unwatch(s, ws, undefined);
    return w;
  }

  /** Stops watching `users` in `ws` (all of them when undefined). */
  private unwatch(s: Session, ws: string, users: readonly string[] | undefined): void {
    const w = s.presence?.get(ws);
    if (!w) return;
    for (const u of users ?? [...w.users]) {
      if (w.users.delete(u)) this.leaveSubject(presenceSubject(ws, u), s);
    }
    if (w.users.size > 0) return;
    s.presence!.delete(ws);
    if (s.presence!.size === 0) s.presence = undefined;
  }

  /**
   * Reads the presence of `users` (as the session's user, so the user actors
   * check membership), holding the watch's live events meanwhile; the held
   * events go out after whatever the caller sends in this turn with the
   * result (a reply is sent from a promise callback, before setImmediate).
   */
  private async readPresence(s: Session, ws: string, w: PresenceWatch, users: readonly string[]): Promise<PresenceState[]> {
    if (users.length === 0) return [];
    w.reads++;
    w.held ??= new Map();
    try {
      return await Promise.all(users.map((user) =>
        this.node.ref('user', userKey(ws, user)).ask<PresenceState>({ op: 'getPresence', by: s.user, ws, user })));
    } finally {
      setImmediate(() => {
        if (--w.reads > 0 || !w.held) return;
        const held = w.held;
        w.held = undefined;
        if (!s.closed && s.presence?.get(ws) === w) for (const f of held.values()) s.sendFrame(f);
      });
    }
  }

  /** After the transport reconnected (presence events may have been lost): every watched user's presence again, as events. */
  private resendPresence(s: Session, ws: string, w: PresenceWatch): void {
    this.readPresence(s, ws, w, [...w.users]).then(
      (states) => { for (const p of states) s.send(JSON.stringify({ type: 'event', scope: 'presence', event: { type: 'presence', ws, ...p } })); },
      (err) => this.logger.debug({ err: (err as Error).message }, 'presence re-read failed'),
    );
  }

  // ---- housekeeping -----------------------------------------------------

  /**
   * Pings every socket (and drops those that missed the last ping) in
   * small slices spread over half the ping interval (see spreadOver): a
   * ping is a write system call and its pong a read, and 50,000 of them in
   * one turn would stall the node for a second or more (long enough for its
   * membership lease to lapse).
   */
  private pingAll(): void {
    void spreadOver([...this.sessions.values()], this.o.housekeepingSlice, this.o.pingIntervalMs, () => this.closing, (batch) => {
      for (const s of batch) {
        if (s.closed) continue;
        if (Date.now() > s.expiresAtMs) {
          this.expire(s);
          continue;
        }
        if (!s.alive) {
          s.socket.terminate();
          continue;
        }
        s.alive = false;
        try {
          s.socket.ping();
        } catch {
          /* closed meanwhile */
        }
      }
    });
  }

  /**
   * Tells each user actor which sessions this node still holds, with at
   * most `housekeepingSlice` asks in flight (not one ask per user at once,
   * which queues tens of thousands of actor turns behind live traffic), in
   * slices spread over half the refresh interval (see spreadOver): asks to
   * local actors resolve in microtasks, so slices that only awaited their
   * asks ran back to back in one macrotask (10,000 users: a 300 ms stall of
   * every socket every 30 s, the fan-out bench's p99 when a phase met it).
   * A refresh still running when the next is due is not started twice.
   */
  private async refreshSessions(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const perUserWs = new Map<string, string[]>();
      for (const s of this.sessions.values()) {
        for (const ws of s.workspaces) {
          const k = `${ws} ${s.user}`;
          const list = perUserWs.get(k);
          if (list) list.push(s.id);
          else perUserWs.set(k, [s.id]);
        }
      }
      await spreadOver([...perUserWs], this.o.housekeepingSlice, this.o.sessionRefreshMs, () => this.closing, (batch) =>
        Promise.all(batch.map(([k, ids]) => {
          const [ws, user] = k.split(' ') as [string, string];
          return this.askUser(ws, user, { op: 'sessionsRefresh', by: user, ws, node: this.node.nodeId, sessionIds: ids });
        })));
    } finally {
      this.refreshing = false;
    }
  }

  /** Closes every connection with "going away" (clients reconnect elsewhere) and stops. */
  async close(): Promise<void> {
    this.closing = true;
    await this.reconnectSub?.dispose();
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    for (const s of [...this.sessions.values()]) s.close(CLOSE.GOING_AWAY, 'node shutting down; reconnect');
    for (const e of this.subjects.values()) await e.sub.dispose();
    this.subjects.clear();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}

/** An event on its way to local sockets: its frame is built on first use, then shared. */
interface Outgoing { scope: string; event: unknown; frame: Buffer | undefined }

function frameOf(o: Outgoing): Buffer {
  return (o.frame ??= textFrame(JSON.stringify({ type: 'event', scope: o.scope, event: o.event })));
}

/** The shape of events the edge looks at (the rest passes through untouched). */
interface ChannelEventLike {
  type: string;
  ws: string;
  ch?: string;
  seq?: number;
  user?: string;
  message?: { ts?: number };
}

/** The part of the channel's `since` answer the edge uses. */
interface SinceResult {
  messages?: Array<{ seq: number }>;
  updates?: unknown[];
  latestSeq?: number;
  more?: boolean;
  /** The channel's name for "there is another page". */
  hasMore?: boolean;
  resync?: boolean;
}
