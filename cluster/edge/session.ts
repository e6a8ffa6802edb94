import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { TokenBucket } from './rate-limit.ts';

/** Delivery state of one channel for one session: what it has seen and whether it is catching up. */
export interface ChannelSubState {
  readonly ws: string;
  readonly ch: string;
  readonly subject: string;
  /** Highest message seq sent to the client, gapless from where it subscribed. */
  lastSeq: number;
  /** While true, live events wait in `buffer` (a catch-up read is in flight). */
  catchingUp: boolean;
  /** Live events held back during a catch-up or a gap; allocated only when one is. */
  buffer: unknown[] | undefined;
}

/** The users one session watches the presence of in one workspace (see ChatEdge.presenceSub). */
export interface PresenceWatch {
  users: Set<string>;
  /** Presence reads in flight; while any is, live presence events wait in `held`. */
  reads: number;
  /** The latest held presence frame per user. */
  held: Map<string, Buffer> | undefined;
}

/** Limits of one connection. */
export interface SessionLimits {
  /** Frames per second (token bucket refill) and burst. Default 20/s, burst 60. */
  framesPerSecond: number;
  frameBurst: number;
  /**
   * Flood close: refused frames the connection may accumulate, one forgiven
   * per `1/framesPerSecond` (a second token bucket, of refusals); past it the
   * connection is closed 1008. A client that sends far over its rate is
   * closed whether or not a frame slips through between refusals; one a
   * little over it (under 2x) keeps getting EDGE_RATE_LIMITED. Default 200.
   */
  floodCloseAfter: number;
  /** Asks in flight per connection. Default 64. */
  maxInFlight: number;
  /** Send buffer bound in bytes; above it the client is a slow consumer and is closed. Default 4 MiB. */
  maxBufferedBytes: number;
  /** Channel subscriptions per connection. Default 500. */
  maxSubscriptions: number;
  /**
   * Frames per second and burst of one user over all its connections on the
   * node (a second bucket, shared). Default 3 x framesPerSecond and 3 x
   * frameBurst (60/s, burst 180): three busy connections, not twenty.
   */
  userFramesPerSecond: number;
  userFrameBurst: number;
  /** Live channel events one session may hold back while a catch-up read runs; over it the client is a slow consumer (4008). Default 10,000. */
  maxHeldEvents: number;
}

/** Defaults of SessionLimits. */
export const DEFAULT_SESSION_LIMITS: Readonly<SessionLimits> = Object.freeze({
  framesPerSecond: 20, frameBurst: 60, floodCloseAfter: 200, maxInFlight: 64, maxBufferedBytes: 4 * 1024 * 1024, maxSubscriptions: 500,
  userFramesPerSecond: 60, userFrameBurst: 180, maxHeldEvents: 10_000,
});

/**
 * A server-to-client WebSocket text frame (FIN, opcode 1, unmasked, no
 * extension bits), header and UTF-8 payload in one buffer. Built once per
 * event and written as is to every socket that gets it: one UTF-8 encoding
 * and one allocation per event instead of one per socket (what
 * `WebSocket.Sender.frame` plus a socket write would do for each).
 */
export function textFrame(text: string): Buffer {
  const len = Buffer.byteLength(text);
  const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const b = Buffer.allocUnsafe(hdr + len);
  b[0] = 0x81;
  if (len < 126) b[1] = len;
  else if (len < 65536) {
    b[1] = 126;
    b.writeUInt16BE(len, 2);
  } else {
    b[1] = 127;
    b.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    b.writeUInt32BE(len >>> 0, 6);
  }
  b.write(text, hdr, 'utf8');
  return b;
}

/**
 * Node's HTTP server arms an idle timer on every socket it accepts
 * (`server.timeout`, see cluster/http-server.ts); ws clears it on upgrade
 * with `setTimeout(0)`, but net.Socket keeps the cleared Timeout and its
 * bound callback under an internal symbol for the socket's life: about 200
 * bytes per connection. A WebSocket never gets that timer back (heartbeats
 * close dead ones), so the reference is dropped. The symbol is looked up once
 * by its description; if a Node.js version names it otherwise, nothing is done.
 */
let timeoutSymbol: symbol | null | undefined;
function dropIdleTimer(raw: Socket): void {
  if (timeoutSymbol === undefined) timeoutSymbol = Object.getOwnPropertySymbols(raw).find((x) => x.description === 'timeout') ?? null;
  if (timeoutSymbol === null) return;
  const holder = raw as unknown as Record<symbol, { _idleTimeout?: number } | null | undefined>;
  // only a cleared timer (-1): one still armed would mean ws did not clear it, and then it is not ours to drop
  if (holder[timeoutSymbol]?._idleTimeout === -1) holder[timeoutSymbol] = null;
}

/** The parts of ws's WebSocket internals that decide whether a frame may be written under it (ws 8). */
interface WsInternals { _socket?: Socket; _sender?: { _queue?: unknown[]; _state?: number } }

/**
 * Sockets corked in this turn of the event loop; uncorked together from one
 * setImmediate, so every frame a socket gets in one loop iteration (a reply
 * and the event it caused, several events of a busy channel) leaves in one
 * write system call. Most of a delivery's cost is that call.
 */
const corked: Session[] = [];
let flushScheduled = false;
function flushCorked(): void {
  flushScheduled = false;
  for (let i = 0; i < corked.length; i++) corked[i]!.uncork();
  corked.length = 0;
}

/** One authenticated WebSocket connection. */
export class Session {
  readonly chans = new Map<string, ChannelSubState>();
  /**
   * Workspaces this session has used (user actor told, user and workspace
   * subjects joined); usually one. Replaced, never grown in place: an array
   * grown by push keeps room for 16 more, and an edge holds a session per
   * connection.
   */
  workspaces: readonly string[] = [];
  readonly bucket: TokenBucket;
  inFlight = 0;
  /** Refused frames not yet forgiven (see SessionLimits.floodCloseAfter); made on the first refusal. */
  flood: TokenBucket | undefined;
  /** When the token stops being valid (ms, leeway included); the edge closes the session 4001 after it. */
  expiresAtMs = Number.POSITIVE_INFINITY;
  /** Events held per workspace until the session's membership there is confirmed (see ChatEdge.ensureWorkspace). */
  held: Map<string, Buffer[]> | undefined;
  /** Users whose presence the session watches, per workspace (`presenceSub`); made on first use. */
  presence: Map<string, PresenceWatch> | undefined;
  alive = true;
  closed = false;
  /** The TCP socket under `socket`, written to directly (see `sendFrame`); undefined if ws's internals are not as expected. */
  private readonly raw: Socket | undefined;
  private isCorked = false;

  /**
   * @param wsClaims the workspaces the token grants (`'*'` = any)
   * @param now the edge's clock, shared by its sessions
   */
  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    readonly user: string,
    readonly wsClaims: readonly string[],
    readonly device: string,
    readonly limits: SessionLimits,
    now: () => number,
  ) {
    this.bucket = new TokenBucket(limits.frameBurst, limits.framesPerSecond, now);
    const raw = (socket as unknown as WsInternals)._socket;
    this.raw = raw && typeof raw.write === 'function' && typeof raw.cork === 'function' ? raw : undefined;
    if (raw) dropIdleTimer(raw);
  }

  /**
   * Sends a text frame unless the client is not keeping up; returns false
   * when the session was closed as a slow consumer instead.
   */
  send(text: string): boolean {
    return this.sendFrame(textFrame(text), text);
  }

  /**
   * Sends a frame built by `textFrame` (shared by every session that gets the
   * same event). The frame goes straight to the TCP socket, corked until the
   * end of this loop iteration: ws would re-encode the text and write header
   * and payload for each socket. That is safe while ws's sender has nothing
   * queued, which holds without permessage-deflate (the edge turns it off)
   * and Blob payloads (never sent); otherwise the frame goes through
   * `socket.send`, in order behind what ws queued. Frames written either
   * way count in `socket.bufferedAmount`, so the slow-consumer bound holds.
   */
  sendFrame(frame: Buffer, text?: string): boolean {
    if (this.closed) return false;
    const socket = this.socket;
    if (socket.bufferedAmount > this.limits.maxBufferedBytes) {
      this.close(4008, 'slow consumer: send buffer over the limit');
      return false;
    }
    if (socket.readyState !== 1) return true; // closing: ws drops data frames too
    const raw = this.raw;
    const sender = (socket as unknown as WsInternals)._sender;
    if (raw === undefined || sender?._state !== 0 || sender._queue?.length) {
      socket.send(text ?? frame.subarray(frame[1]! < 126 ? 2 : frame[1] === 126 ? 4 : 10).toString('utf8'));
      return true;
    }
    if (!this.isCorked) {
      this.isCorked = true;
      raw.cork();
      corked.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushCorked);
      }
    }
    raw.write(frame);
    return true;
  }

  /** @internal Ends this loop iteration's coalescing (see `corked`). */
  uncork(): void {
    if (!this.isCorked) return;
    this.isCorked = false;
    this.raw!.uncork();
  }

  /** Closes with a code and reason (once). */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket.close(code, reason.slice(0, 120));
    } catch {
      this.socket.terminate();
    }
  }
}
