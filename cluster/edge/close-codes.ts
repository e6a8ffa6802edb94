/**
 * The one place that maps failures to WebSocket close codes. 4000-4999 are
 * application codes (RFC 6455 7.4.2); the reason text is always set.
 */
export const CLOSE = Object.freeze({
  /** Normal close (client or server said goodbye). */
  NORMAL: 1000,
  /** The node is shutting down or draining; reconnect (through /api/connect). */
  GOING_AWAY: 1001,
  /** The client broke the WebSocket protocol (bad opcode, unmasked frame, reserved bits). */
  PROTOCOL_ERROR: 1002,
  /** Frame was not valid UTF-8 / not JSON text. */
  INVALID_DATA: 1007,
  /** Hostile or abusive behaviour (flooding past the hard limit). */
  POLICY: 1008,
  /** Frame larger than the limit. */
  TOO_BIG: 1009,
  /** Unexpected server fault. */
  INTERNAL: 1011,
  /** Token missing, forged, expired or revoked (also sent as HTTP 401 before the upgrade). */
  UNAUTHORIZED: 4001,
  /** The client could not keep up: its send buffer passed the bound. */
  SLOW_CONSUMER: 4008,
  /** Too many connections for this user or this node. */
  TOO_MANY_CONNECTIONS: 4029,
});

/** Close code for an error code that ends a connection. */
export function closeCodeFor(code: string): number {
  if (code.startsWith('AUTH_')) return CLOSE.UNAUTHORIZED;
  switch (code) {
    case 'EDGE_SLOW_CONSUMER': return CLOSE.SLOW_CONSUMER;
    case 'EDGE_FLOOD': return CLOSE.POLICY;
    case 'EDGE_TOO_MANY_CONNECTIONS': return CLOSE.TOO_MANY_CONNECTIONS;
    case 'EDGE_SHUTDOWN': return CLOSE.GOING_AWAY;
    default: return CLOSE.INTERNAL;
  }
}

/**
 * Close code and reason for a protocol error the ws library found in a
 * client's frames (its `WS_ERR_*` code). ws closes such a socket itself, with
 * the right code but no reason; the edge closes first with this one, so every
 * close says why.
 */
export function closeForProtocolError(wsErrCode: string | undefined): { code: number; reason: string } {
  switch (wsErrCode) {
    case 'WS_ERR_INVALID_UTF8': return { code: CLOSE.INVALID_DATA, reason: 'invalid UTF-8 in a text frame' };
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
    case 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH': return { code: CLOSE.TOO_BIG, reason: 'frame over the size limit' };
    case 'WS_ERR_TOO_MANY_BUFFERED_PARTS': return { code: CLOSE.POLICY, reason: 'message in too many fragments' };
    default: return { code: CLOSE.PROTOCOL_ERROR, reason: `WebSocket protocol error (${wsErrCode ?? 'unknown'})` };
  }
}

/** Edge error codes (frames and closes). */
export const EDGE_ERRORS = Object.freeze({
  EDGE_BAD_FRAME: 'EDGE_BAD_FRAME',
  EDGE_UNKNOWN_OP: 'EDGE_UNKNOWN_OP',
  EDGE_RATE_LIMITED: 'EDGE_RATE_LIMITED',
  EDGE_FLOOD: 'EDGE_FLOOD',
  EDGE_SLOW_CONSUMER: 'EDGE_SLOW_CONSUMER',
  EDGE_TOO_MANY_CONNECTIONS: 'EDGE_TOO_MANY_CONNECTIONS',
  EDGE_SHUTDOWN: 'EDGE_SHUTDOWN',
  EDGE_TOO_MANY_SUBSCRIPTIONS: 'EDGE_TOO_MANY_SUBSCRIPTIONS',
});
