import type { WebSocket } from 'ws';
import type { TokenClaims } from './auth.ts';
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
  buffer: unknown[];
}

/** Limits of one connection. */
export interface SessionLimits {
  /** Frames per second (token bucket refill) and burst. Default 20/s, burst 60. */
  framesPerSecond: number;
  frameBurst: number;
  /** Over this many rejected frames in a row the connection is closed (flood). Default 200. */
  floodCloseAfter: number;
  /** Asks in flight per connection. Default 64. */
  maxInFlight: number;
  /** Send buffer bound in bytes; above it the client is a slow consumer and is closed. Default 4 MiB. */
  maxBufferedBytes: number;
  /** Channel subscriptions per connection. Default 500. */
  maxSubscriptions: number;
}

/** Defaults of SessionLimits. */
export const DEFAULT_SESSION_LIMITS: Readonly<SessionLimits> = Object.freeze({
  framesPerSecond: 20, frameBurst: 60, floodCloseAfter: 200, maxInFlight: 64, maxBufferedBytes: 4 * 1024 * 1024, maxSubscriptions: 500,
});

/** One authenticated WebSocket connection. */
export class Session {
  readonly chans = new Map<string, ChannelSubState>();
  /** Subjects of user and workspace events this session receives. */
  readonly personal = new Set<string>();
  /** Workspaces this session has used (user actor told, personal subjects joined). */
  readonly workspaces = new Set<string>();
  readonly bucket: TokenBucket;
  inFlight = 0;
  rejectedInARow = 0;
  alive = true;
  closed = false;

  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    readonly claims: TokenClaims,
    readonly device: string,
    readonly limits: SessionLimits,
    now: () => number,
  ) {
    this.bucket = new TokenBucket(limits.frameBurst, limits.framesPerSecond, now);
  }

  get user(): string {
    return this.claims.sub;
  }

  /**
   * Sends a text frame unless the client is not keeping up; returns false
   * when the session was closed as a slow consumer instead.
   */
  send(frame: string): boolean {
    if (this.closed) return false;
    if (this.socket.bufferedAmount > this.limits.maxBufferedBytes) {
      this.close(4008, 'slow consumer: send buffer over the limit');
      return false;
    }
    this.socket.send(frame);
    return true;
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
